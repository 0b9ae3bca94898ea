package aggregator_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/aggregator"
	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// Drill: a cooperative rebalance while a member consumes. Two aggregators
// run in this test process (so that `go test -race` sees both); records
// stream in while the second joins and then leaves, which assigns
// partitions to the first (franz-go runs Assigned on its own goroutine)
// while its poll loop applies and flushes. Under -race a state shared
// without care fails the test; the counts are exact either way.
func TestDrillRebalanceWhileConsuming(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	cfg := config.Default()
	cfg.Kafka.Brokers = []string{s.Broker.Addr}
	cfg.ClickHouse.Addr = s.CH.TCPAddr
	cfg.Aggregator.FlushInterval = 10 * time.Millisecond
	cfg.Aggregator.BatchRecords = 500
	cfg.Aggregator.SessionTimeout = 3 * time.Second
	cfg.Aggregator.ShutdownTimeout = 10 * time.Second
	cfg.Kafka.TopicCheckInterval = 500 * time.Millisecond
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// start runs an aggregator until ctx ends; assigned is closed when it
	// is first given partitions.
	start := func(ctx context.Context) (wait func(), assigned <-chan struct{}) {
		conn, err := clickhouse.Open(cfg.ClickHouse)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan struct{})
		var once sync.Once
		onAssigned := kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			if len(parts[cfg.Kafka.Topic]) > 0 {
				once.Do(func() { close(got) })
			}
		})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			if err := aggregator.New(cfg, schemas.Products, conn, log).Run(ctx, onAssigned); err != nil {
				t.Errorf("aggregator: %v", err)
			}
		}()
		return wg.Wait, got
	}
	ctxA, stopA := context.WithCancel(context.Background())
	waitA, _ := start(ctxA)
	dir := t.TempDir()
	files := []string{testenv.Gen(t, dir, "big.ndjson", "--rows", "300000", "--rename-rate", "0.3", "--names", "50", "--seed", "5")}
	done := s.StartPush(t, files[0])
	// A second member joins and leaves, again and again, while the first
	// consumes: each time it leaves, its partitions are assigned to the
	// first in the middle of its polls and flushes.
	for range 4 {
		ctxB, stopB := context.WithCancel(context.Background())
		waitB, assignedB := start(ctxB)
		// Stopped while it still prepares, B would fail with the
		// cancellation, and take part in no rebalance.
		select {
		case <-assignedB:
		case <-time.After(time.Minute):
			stopB()
			waitB()
			t.Fatal("the second aggregator was given no partition within a minute")
		}
		time.Sleep(1500 * time.Millisecond)
		stopB()
		waitB()
	}
	done()
	want := testenv.LastWrites(t, files...)
	s.CheckAgg(t, testenv.NameCounts(want))
	stopA()
	waitA()
}
