package aggregator_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

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

	start := func(ctx context.Context) (wait func()) {
		conn, err := clickhouse.Open(cfg.ClickHouse)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			if err := aggregator.New(cfg, schemas.Products, conn, log).Run(ctx); err != nil {
				t.Errorf("aggregator: %v", err)
			}
		}()
		return wg.Wait
	}
	ctxA, stopA := context.WithCancel(context.Background())
	waitA := start(ctxA)
	dir := t.TempDir()
	files := []string{testenv.Gen(t, dir, "big.ndjson", "--rows", "300000", "--rename-rate", "0.3", "--names", "50", "--seed", "5")}
	done := s.StartPush(t, files[0])
	// A second member joins and leaves, again and again, while the first
	// consumes: each time it leaves, its partitions are assigned to the
	// first in the middle of its polls and flushes.
	for range 4 {
		ctxB, stopB := context.WithCancel(context.Background())
		waitB := start(ctxB)
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
