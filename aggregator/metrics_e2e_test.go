package aggregator_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// A push, as the aggregator's /metrics tells it: every record taken, the
// state holding each distinct key once, no lag, no data waiting; after a
// restart the state is rebuilt from ClickHouse to the same size.
func TestMetrics(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	// A fixed port: the address must stay across the restart below.
	a := s.Service(t, "aggregator", fmt.Sprintf("SKUFLOW_AGGREGATOR_METRICS_ADDR=127.0.0.1:%d", testenv.FreePort(t)))
	file := testenv.Gen(t, t.TempDir(), "metrics.ndjson", "--rows", "30000", "--dup-rate", "0.1", "--rename-rate", "0.2", "--names", "300", "--seed", "21")
	rows := float64(lines(t, file))
	distinct := float64(len(testenv.LastWrites(t, file)))
	s.PushWait(t, file)

	url := a.MetricsURL(t)
	products := []string{"type", "products"}
	// The keys are set at each write; the push's end was written before
	// the commit it waited for.
	m := testenv.ScrapeMetrics(t, url, nil)
	if got := m.Get(t, "skuflow_aggregator_keys", products...); got != distinct {
		t.Errorf("keys %v, want %v distinct skus", got, distinct)
	}
	if got := m.Get(t, "skuflow_records_consumed_total", products...); got != rows {
		t.Errorf("consumed %v, want %v", got, rows)
	}
	if got := m.Get(t, "skuflow_consumed_bytes_total", products...); got <= 0 {
		t.Errorf("consumed %v bytes", got)
	}
	groups := float64(s.Count(t, "SELECT count() FROM skuflow.product_counts FINAL"))
	if got := m.Get(t, "skuflow_aggregate_rows_written_total", products...); got < groups {
		t.Errorf("%v rows written, fewer than the %v (partition, name) rows product_counts holds", got, groups)
	}
	if got := m.Get(t, "skuflow_aggregator_rebuild_duration_seconds_count", products...); got < 1 {
		t.Errorf("no rebuild timed: %v", got)
	}
	if got := m.Get(t, "skuflow_backing_off", products...); got != 0 {
		t.Errorf("backing off: %v", got)
	}
	testenv.WaitMetrics(t, url, 10*time.Second, "lag 0 on 6 partitions and data age 0", func(m testenv.Metrics) bool {
		sum, n := m.Sum("skuflow_consumer_lag_records", products...)
		return n == 6 && sum == 0 && m.Get(t, "skuflow_data_age_seconds", products...) == 0
	})

	// Restarted, it loads every key from ClickHouse and reads nothing
	// again.
	a.Stop(t)
	a.Start(t)
	testenv.WaitMetrics(t, url, time.Minute, "the state rebuilt", func(m testenv.Metrics) bool {
		return m.Get(t, "skuflow_aggregator_keys", products...) == distinct &&
			m.Get(t, "skuflow_aggregator_rebuild_duration_seconds_count", products...) >= 1
	})
	if got := testenv.ScrapeMetrics(t, url, nil).Get(t, "skuflow_records_consumed_total", products...); got != 0 {
		t.Errorf("%v records read again after the restart", got)
	}
}

func lines(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}
