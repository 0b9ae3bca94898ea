package aggregator

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/schemas"
)

// BenchmarkStateApply measures applying records to a partition's state and
// the memory the state holds per sku (names drawn from 10,000).
func BenchmarkStateApply(b *testing.B) {
	skus := make([][]byte, b.N)
	names := make([][]byte, 10000)
	for i := range names {
		names[i] = fmt.Appendf(nil, "First Last %d", i)
	}
	for i := range skus {
		skus[i] = fmt.Appendf(nil, "word-word-%x", i)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	p := newPartition(newNames())
	for i := range b.N {
		p.apply(skus[i], names[i%len(names)], uint64(i))
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "state-B/sku")
	runtime.KeepAlive(p)
}

// BenchmarkAdd is the per-record path of a running aggregator: decode the
// record's value, validate it, and apply it to its partition's state (a
// twentieth of the records rename an earlier sku).
func BenchmarkAdd(b *testing.B) {
	const n = 1 << 16
	recs := make([]*kgo.Record, n)
	size := 0
	for i := range recs {
		sku := i
		if i%20 == 19 {
			sku = i / 2
		}
		recs[i] = &kgo.Record{Partition: int32(i % 6), Value: fmt.Appendf(nil,
			`{"sku":"word-word-%x","name":"First Last %d","description":"Community lead stone best often budget. Plant deal tax evidence floor."}`, sku, i%10000)}
		size += len(recs[i].Value)
	}
	a := New(config.Default(), schemas.Products, nil, slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	b.SetBytes(int64(size / n))
	i := 0
	for b.Loop() {
		r := recs[i%n]
		r.Offset = int64(i) // offsets grow, as on the topic
		a.Add(r)
		i++
	}
}
