package aggregator

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkStateApply measures applying records to a partition's state and
// the memory the state holds per sku (names drawn from 10,000).
func BenchmarkStateApply(b *testing.B) {
	skus := make([]string, b.N)
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("First Last %d", i)
	}
	for i := range skus {
		skus[i] = fmt.Sprintf("word-word-%x", i)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	p := newPartition(newNames(), 0)
	for i := range b.N {
		p.apply(skus[i], names[i%len(names)], int64(i))
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "state-B/sku")
	runtime.KeepAlive(p)
}
