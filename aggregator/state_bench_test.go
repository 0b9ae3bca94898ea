package aggregator

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/kafka"
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
	p := productsPlan.newPartition()
	groups := make([][]byte, 1)
	for i := range b.N {
		groups[0] = names[i%len(names)]
		p.apply(skus[i], groups, nil, uint64(i))
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "state-B/sku")
	runtime.KeepAlive(p)
	runtime.KeepAlive(skus) // else freed before the second reading, and taken off the state
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
		key := fmt.Appendf(nil, "word-word-%x", sku)
		recs[i] = &kgo.Record{Key: key, Partition: kafka.PartitionOf(key, 6), Value: fmt.Appendf(nil,
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
	b.StopTimer()
	if a.stats.Skipped > 0 {
		b.Fatalf("%d records skipped: the benchmark measures the wrong path", a.stats.Skipped)
	}
}

// BenchmarkBytesPerKey reports the memory an aggregator's state holds per
// key (heap after GC, 1,000,000 keys over the default 6 partitions, every
// record through Add as from the topic) for each shipped type: products
// (sku, counted by name out of 10,000), events (key (id, ts), no
// aggregate: what an aggregator would hold, though none is run for it)
// and plays (identity key <sha256>/<offset>, summed by (song, date) over
// rows/20 songs and 7 dates). Run it with
// `go test -run '^$' -bench BytesPerKey -benchtime 1x ./aggregator/`.
func BenchmarkBytesPerKey(b *testing.B) {
	const keys = 1000000
	file := strings.Repeat("3f", 32)
	start := time.Date(2019, 4, 23, 17, 25, 43, 111e6, time.UTC)
	for _, tc := range []struct {
		schema *schemas.Schema
		record func(rng *rand.Rand, i int, key, value []byte) ([]byte, []byte)
	}{
		{schemas.Products, func(rng *rand.Rand, i int, key, value []byte) ([]byte, []byte) {
			key = fmt.Appendf(key, "word-word-%x", i)
			value = fmt.Appendf(value, `{"sku":%q,"name":"First Last %d","description":"Community lead stone best often budget."}`, key, rng.IntN(10000))
			return key, value
		}},
		{events, func(rng *rand.Rand, i int, key, value []byte) ([]byte, []byte) {
			id, ts := strconv.Itoa(10000+rng.IntN(90000)), start.Add(time.Duration(i)*time.Millisecond).Format("2006-01-02 15:04:05.000")
			key = fmt.Appendf(key, `[%q,%q]`, id, ts)
			value = fmt.Appendf(value, `{"id":%q,"data":"ABCD","ts":%q}`, id, ts)
			return key, value
		}},
		{plays, func(rng *rand.Rand, i int, key, value []byte) ([]byte, []byte) {
			key = schemas.IdentityKey(key, file, int64(i)*37)
			value = fmt.Appendf(value, `{"song":"Golden Hour %d","date":"2023-01-0%d","plays":%d}`, rng.IntN(keys/20), 1+rng.IntN(7), rng.IntN(20))
			return key, value
		}},
	} {
		b.Run(tc.schema.Name, func(b *testing.B) {
			for b.Loop() {
				rng := rand.New(rand.NewPCG(1, 2))
				a := New(config.Default(), tc.schema, nil, slog.New(slog.DiscardHandler))
				before := heapAfterGC()
				r := &kgo.Record{}
				for i := range keys {
					r.Key, r.Value = tc.record(rng, i, r.Key[:0], r.Value[:0])
					r.Partition, r.Offset = kafka.PartitionOf(r.Key, 6), int64(i)
					a.Add(r)
				}
				after := heapAfterGC()
				if a.stats.Skipped > 0 {
					b.Fatalf("%d records skipped", a.stats.Skipped)
				}
				held := 0
				for _, p := range a.parts {
					held += p.keys.len()
				}
				if held != keys {
					b.Fatalf("%d keys held, want %d", held, keys)
				}
				b.ReportMetric(float64(after-before)/keys, "B/key")
				runtime.KeepAlive(a)
			}
		})
	}
}

func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
