package aggregator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/schemas"
)

// franz-go calls Assigned on its own goroutine (AdjustFetchOffsetsFn)
// while the poll loop adds records and flushes: under -race, any state the
// two share without care fails this test (before the fix it was the
// partitions map, written by Assigned and read by Add and Flush).
func TestAssignedWhileTheLoopRuns(t *testing.T) {
	cfg := config.Default()
	a := New(cfg, schemas.Products, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.load = func(_ context.Context, parts []int32) (map[int32]*loaded, error) {
		out := map[int32]*loaded{}
		for _, p := range parts {
			st := a.plan.newPartition()
			st.applyName([]byte(fmt.Sprint("s", p)), []byte("N"), 1)
			st.reconcile(storedCounts(nil), 0)
			out[p] = &loaded{state: st}
		}
		return out, nil
	}
	// Flush writes nothing when there is nothing to write: keep it so.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 2000 {
			p := int32(i % 6)
			if _, err := a.Assigned(context.Background(), map[int32]kgo.Offset{p: kgo.NewOffset().At(0)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 20000 {
		sku := fmt.Sprint("k", i%300)
		p := kafka.PartitionOf([]byte(sku), cfg.Kafka.Partitions)
		a.Add(&kgo.Record{Partition: p, Offset: int64(i), Key: []byte(sku), Value: []byte(`{"sku":"` + sku + `","name":"X"}`)})
		if i%100 == 0 {
			a.Drop(nil)
			a.NextDue(true)
		}
	}
	wg.Wait()
	if a.stats.Applied == 0 {
		t.Fatal("nothing applied: the test proves nothing")
	}
}
