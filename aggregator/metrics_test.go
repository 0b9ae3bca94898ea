package aggregator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/internal/metrics"
	"skuflow/schemas"
)

// gauge returns the products series of gauge name as the registry serves it.
func gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == "products" {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{type=products}", name)
	return 0
}

// The state's size follows loads and drops; the data age is measured from
// the oldest record taken since the last write, of the partitions still
// owned.
func TestKeysAndOldest(t *testing.T) {
	cfg := config.Default()
	a := New(cfg, schemas.Products, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.load = func(_ context.Context, parts []int32) (map[int32]*loaded, error) {
		out := map[int32]*loaded{}
		for _, p := range parts {
			st := a.plan.newPartition()
			for i := range 10 {
				st.applyName(fmt.Appendf(nil, "loaded-%d-%d", p, i), []byte("N"), 1)
			}
			st.reconcile(storedCounts(nil), 0)
			out[p] = &loaded{state: st}
		}
		return out, nil
	}
	if _, err := a.Assigned(context.Background(), map[int32]kgo.Offset{0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(0)}); err != nil {
		t.Fatal(err)
	}
	a.install()
	if got := gauge(t, "skuflow_aggregator_keys"); got != 20 {
		t.Fatalf("keys %v after loading two partitions of 10", got)
	}

	t0 := time.Unix(1_700_000_000, 0)
	add := func(sku string, ts time.Time) int32 {
		p := kafka.PartitionOf([]byte(sku), cfg.Kafka.Partitions)
		a.Add(&kgo.Record{Partition: p, Offset: 1, Key: []byte(sku), Timestamp: ts, Value: []byte(`{"sku":"` + sku + `","name":"X"}`)})
		return p
	}
	// Two skus on different partitions, the later one first.
	pLate := add("a", t0.Add(time.Minute))
	var pEarly int32
	for i := 0; ; i++ {
		sku := fmt.Sprint("b", i)
		if kafka.PartitionOf([]byte(sku), cfg.Kafka.Partitions) != pLate {
			pEarly = add(sku, t0)
			break
		}
	}
	a.Due(time.Now(), false)
	if got := a.oldest.Load(); got != t0.UnixNano() {
		t.Fatalf("oldest %v, want %v", time.Unix(0, got), t0)
	}
	a.Drop([]int32{pEarly})
	if got := a.oldest.Load(); got != t0.Add(time.Minute).UnixNano() {
		t.Fatalf("oldest %v after the partition of the earlier record went", time.Unix(0, got))
	}
	want := 1.0 // "a"
	for _, p := range []int32{0, 1} {
		if _, ok := a.parts[p]; ok {
			want += 10
		}
	}
	if got := gauge(t, "skuflow_aggregator_keys"); got != want {
		t.Fatalf("keys %v after a drop, want %v", got, want)
	}
}
