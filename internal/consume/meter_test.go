package consume

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/metrics"
	"skuflow/internal/retry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// value returns the value of the series of metric name with labels (name,
// value pairs), as the registry serves it, and whether there is one.
func value(t *testing.T, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// get is value for a series that must be there.
func get(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := value(t, name, labels...)
	if !ok {
		t.Fatalf("no series %s %v", name, labels)
	}
	return v
}

// Lag is exported per partition as the high watermark less the next offset
// of the last fetch, and a partition no longer owned has no series.
func TestLagGauges(t *testing.T) {
	m := NewMeter("lag_test")
	l := Lag{Meter: m}
	recs := func(offsets ...int64) []*kgo.Record {
		var out []*kgo.Record
		for _, o := range offsets {
			out = append(out, &kgo.Record{Offset: o})
		}
		return out
	}
	l.Track(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{Partition: 0, HighWatermark: 100, Records: recs(10, 11, 12)}})
	l.Track(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{Partition: 3, HighWatermark: 5, Records: recs(4)}})
	lag := func(p string) float64 {
		return get(t, "skuflow_consumer_lag_records", "type", "lag_test", "partition", p)
	}
	if got := lag("0"); got != 87 {
		t.Fatalf("lag of partition 0: %v, want 100-13", got)
	}
	if got := lag("3"); got != 0 {
		t.Fatalf("lag of partition 3: %v, want 0", got)
	}
	// A failed fetch says nothing; an empty one, that nothing waits.
	l.Track(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{Partition: 0, Err: errors.New("down"), HighWatermark: 1000}})
	if got := lag("0"); got != 87 {
		t.Fatalf("lag after a failed fetch: %v", got)
	}
	l.Track(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{Partition: 0, HighWatermark: 200, Records: recs(199)}})
	if got := lag("0"); got != 0 {
		t.Fatalf("lag once caught up: %v", got)
	}
	l.Forget([]int32{0})
	if _, ok := value(t, "skuflow_consumer_lag_records", "type", "lag_test", "partition", "0"); ok {
		t.Fatal("partition 0's lag is still served after it went")
	}
	if _, ok := value(t, "skuflow_consumer_lag_records", "type", "lag_test", "partition", "3"); !ok {
		t.Fatal("partition 3's lag went with partition 0's")
	}
	l.Forget([]int32{3})

	// Without a meter, nothing is measured and nothing fails.
	var bare Lag
	bare.Track(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{Partition: 1, HighWatermark: 9, Records: recs(1)}})
	bare.Forget([]int32{1})
}

// Retries are counted by operation, and the type is backing off while any
// of its retries waits, however many at once.
func TestBackoffHook(t *testing.T) {
	m := NewMeter("backoff_test")
	backingOff := func() float64 { return get(t, "skuflow_backing_off", "type", "backoff_test") }
	retries := func(op string) float64 { return get(t, "skuflow_retries_total", "type", "backoff_test", "op", op) }
	b := m.Backoff("insert", retry.Backoff{Min: 50 * time.Millisecond, Max: 50 * time.Millisecond})
	if b.Hook == nil {
		t.Fatal("no hook")
	}
	// The series are there, at 0, before anything failed.
	if backingOff() != 0 || retries("insert") != 0 {
		t.Fatal("not at 0 at the start")
	}
	// Two operations failing at once; one recovers first.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for _, op := range []string{"insert", "load"} {
		wg.Add(1)
		b := m.Backoff(op, retry.Backoff{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond})
		go func() {
			defer wg.Done()
			_ = retry.Forever(context.Background(), b, quiet, op, func(error) bool { return true }, func(context.Context) error {
				select {
				case <-release:
					if op == "insert" {
						return nil
					}
					time.Sleep(100 * time.Millisecond)
					return nil
				default:
					return errors.New("down")
				}
			})
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for retries("insert") < 3 || retries("load") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("retries: insert %v, load %v", retries("insert"), retries("load"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := backingOff(); got != 1 {
		t.Fatalf("backing off %v while two operations retry", got)
	}
	close(release)
	wg.Wait()
	if got := backingOff(); got != 0 {
		t.Fatalf("backing off %v once both went through", got)
	}
	// A zero backoff is the default, hook kept; a nil meter adds none.
	if b := m.Backoff("x", retry.Backoff{}); b.Min != retry.Default.Min || b.Hook == nil {
		t.Fatalf("zero backoff: %+v", b)
	}
	var none *Meter
	if b := none.Backoff("x", retry.Backoff{}); b.Hook != nil || b.Min != retry.Default.Min {
		t.Fatalf("nil meter: %+v", b)
	}
}

func TestAge(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		oldest int64
		want   float64
	}{
		{0, 0},
		{-5, 0},
		{now.Add(-2500 * time.Millisecond).UnixNano(), 2.5},
		{now.Add(time.Second).UnixNano(), 0}, // a producer's clock ahead
	} {
		if got := Age(c.oldest, now); got != c.want {
			t.Errorf("Age(%d) = %v, want %v", c.oldest, got, c.want)
		}
	}
	for _, c := range [][3]int64{{0, 0, 0}, {0, 5, 5}, {5, 0, 5}, {3, 5, 3}, {5, 3, 3}, {-1, 4, 4}} {
		if got := Earlier(c[0], c[1]); got != c[2] {
			t.Errorf("Earlier(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

// The data age follows its source while watched, without anything else
// happening (a service stuck in a retry), and at once on RefreshAge.
func TestWatchAge(t *testing.T) {
	m := NewMeter("age_test")
	age := func() float64 { return get(t, "skuflow_data_age_seconds", "type", "age_test") }
	var mu sync.Mutex
	oldest := time.Now().Add(-time.Minute).UnixNano()
	stop := m.WatchAge(func() int64 { mu.Lock(); defer mu.Unlock(); return oldest })
	defer stop()
	first := age()
	if first < 60 || first > 70 {
		t.Fatalf("age %v, want about 60", first)
	}
	time.Sleep(ageTick + ageTick/2)
	if got := age(); got < first+0.9 {
		t.Fatalf("age %v after a tick, was %v: not kept current", got, first)
	}
	mu.Lock()
	oldest = 0
	mu.Unlock()
	m.RefreshAge()
	if got := age(); got != 0 {
		t.Fatalf("age %v with nothing waiting", got)
	}
	stop()
	stop() // harmless twice
}

func TestConsumed(t *testing.T) {
	m := NewMeter("consumed_test")
	m.Consumed(3, 120)
	m.Consumed(0, 0)
	if got := get(t, "skuflow_records_consumed_total", "type", "consumed_test"); got != 3 {
		t.Fatalf("records %v", got)
	}
	if got := get(t, "skuflow_consumed_bytes_total", "type", "consumed_test"); got != 120 {
		t.Fatalf("bytes %v", got)
	}
	var none *Meter
	none.Consumed(1, 1)
	none.RefreshAge()
	none.WatchAge(func() int64 { return 1 })()
}

// Refresh counts the records the broker gained since the last fetch, so
// that the lag rises while nothing is polled (a member stuck retrying an
// insert), for the partitions polled and no others.
func TestLagRefreshFromBroker(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "lagged"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(partition int32, n int) {
		t.Helper()
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: "lagged", Partition: partition, Value: []byte("v")}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 4)
	produce(1, 2)

	l := Lag{Meter: NewMeter("refresh_test")}
	lag := func(p string) float64 {
		return get(t, "skuflow_consumer_lag_records", "type", "refresh_test", "partition", p)
	}
	// Partition 0 polled to its end.
	l.Track(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{Partition: 0, HighWatermark: 4,
		Records: []*kgo.Record{{Offset: 2}, {Offset: 3}}}})
	if got := lag("0"); got != 0 {
		t.Fatalf("lag after the fetch: %v", got)
	}
	produce(0, 7)
	adm := kadm.NewClient(cl)
	if err := l.Refresh(ctx, adm, "lagged"); err != nil {
		t.Fatal(err)
	}
	if got := lag("0"); got != 7 {
		t.Fatalf("lag of partition 0 from the broker: %v, want the 7 records produced since", got)
	}
	if _, ok := value(t, "skuflow_consumer_lag_records", "type", "refresh_test", "partition", "1"); ok {
		t.Fatal("partition 1, never polled, has a lag series")
	}
	// Forgotten, it stays forgotten.
	l.Forget([]int32{0})
	if err := l.Refresh(ctx, adm, "lagged"); err != nil {
		t.Fatal(err)
	}
	if _, ok := value(t, "skuflow_consumer_lag_records", "type", "refresh_test", "partition", "0"); ok {
		t.Fatal("partition 0's lag came back after it went")
	}

	// WatchLag does the same on its own, every tick.
	l.Track(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{Partition: 1, HighWatermark: 2,
		Records: []*kgo.Record{{Offset: 1}}}})
	stop := l.WatchLag(ctx, cl, "lagged")
	defer stop()
	produce(1, 5)
	for deadline := time.Now().Add(10 * time.Second); lag("1") != 5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("lag of partition 1 after the watch: %v, want 5", lag("1"))
		}
	}
	stop()
	l.Forget([]int32{1})
}
