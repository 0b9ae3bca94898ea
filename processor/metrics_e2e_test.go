package processor_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/kafka"
	"skuflow/internal/testenv"
)

// A push, as the processor's /metrics tells it: every row inserted (each
// record once, repeated keys included), nothing rejected, no lag, no data
// waiting, and the inserts in the histograms.
func TestMetrics(t *testing.T) {
	s := newStack(t)
	p := s.Service(t, "processor")
	file := testenv.Gen(t, t.TempDir(), "metrics.ndjson", "--rows", "30000", "--dup-rate", "0.1", "--rename-rate", "0.1", "--seed", "13")
	rows := float64(lines(t, file))
	s.PushWait(t, file)

	url := p.MetricsURL(t)
	m := testenv.ScrapeMetrics(t, url, nil)
	products := []string{"type", "products"}
	if got := m.Get(t, "skuflow_records_inserted_total", products...); got != rows {
		t.Errorf("inserted %v, want %v (the rows pushed, repeated skus included)", got, rows)
	}
	if got := m.Get(t, "skuflow_records_consumed_total", products...); got != rows {
		t.Errorf("consumed %v, want %v", got, rows)
	}
	if got, size := m.Get(t, "skuflow_consumed_bytes_total", products...), fileSize(t, file); got < size/2 || got > size*2 {
		t.Errorf("consumed %v bytes of a %v-byte file", got, size)
	}
	for _, stage := range []string{"decode", "key", "insert"} {
		if got := m.Get(t, "skuflow_records_rejected_total", "type", "products", "stage", stage); got != 0 {
			t.Errorf("rejected at %s: %v", stage, got)
		}
	}
	batches := m.Get(t, "skuflow_insert_batch_rows_count", products...)
	if batches <= 0 {
		t.Errorf("no INSERT in the batch histogram")
	}
	if got := m.Get(t, "skuflow_insert_batch_rows_sum", products...); got != rows {
		t.Errorf("the batch histogram sums to %v rows, want %v", got, rows)
	}
	if got := m.Get(t, "skuflow_insert_duration_seconds_count", products...); got != batches {
		t.Errorf("%v INSERTs timed, %v counted", got, batches)
	}
	if got := m.Get(t, "skuflow_backing_off", products...); got != 0 {
		t.Errorf("backing off: %v", got)
	}
	// One instance owns every partition: each has its lag, back to 0.
	testenv.WaitMetrics(t, url, 10*time.Second, "lag 0 on 6 partitions and data age 0", func(m testenv.Metrics) bool {
		sum, n := m.Sum("skuflow_consumer_lag_records", products...)
		return n == 6 && sum == 0 && m.Get(t, "skuflow_data_age_seconds", products...) == 0
	})
}

// ClickHouse down while records wait: the processor and the aggregator
// back off and their data age grows; once it is back, everything goes in
// and both return to 0.
func TestMetricsClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops ClickHouse")
	}
	s := testenv.NewStack(t)
	agg := s.Service(t, "aggregator")
	p := s.Service(t, "processor")
	file := testenv.Gen(t, t.TempDir(), "before.ndjson", "--rows", "2000", "--seed", "17")
	s.PushWait(t, file) // the topic, the tables, the groups settled
	procURL, aggURL := p.MetricsURL(t), agg.MetricsURL(t)
	products := []string{"type", "products"}

	s.CH.Stop(t)
	// The loader needs ClickHouse: produce as it does, keyed, straight to
	// the topic.
	const n = 500
	produce(t, s.Broker.Addr, n)
	for _, svc := range []struct{ name, url, op string }{{"processor", procURL, "insert"}, {"aggregator", aggURL, "flush"}} {
		testenv.WaitMetrics(t, svc.url, time.Minute, svc.name+" backing off, data age above 0", func(m testenv.Metrics) bool {
			return m.Get(t, "skuflow_backing_off", products...) == 1 && m.Get(t, "skuflow_data_age_seconds", products...) > 0
		})
		first := testenv.ScrapeMetrics(t, svc.url, nil).Get(t, "skuflow_data_age_seconds", products...)
		var later float64
		testenv.WaitMetrics(t, svc.url, 10*time.Second, svc.name+"'s data age growing", func(m testenv.Metrics) bool {
			later = m.Get(t, "skuflow_data_age_seconds", products...)
			return later >= first+1.5
		})
		t.Logf("%s backing off; data age %.1f s, then %.1f s", svc.name, first, later)
		if got := testenv.ScrapeMetrics(t, svc.url, nil).Get(t, "skuflow_retries_total", "type", "products", "op", svc.op); got < 1 {
			t.Errorf("%s: %v retries of %s", svc.name, got, svc.op)
		}
	}

	s.CH.Start(t)
	want := float64(lines(t, file) + n)
	testenv.WaitMetrics(t, procURL, 2*time.Minute, "the processor caught up", func(m testenv.Metrics) bool {
		return m.Get(t, "skuflow_records_inserted_total", products...) == want &&
			m.Get(t, "skuflow_backing_off", products...) == 0 && m.Get(t, "skuflow_data_age_seconds", products...) == 0
	})
	testenv.WaitMetrics(t, aggURL, 2*time.Minute, "the aggregator caught up", func(m testenv.Metrics) bool {
		lag, parts := m.Sum("skuflow_consumer_lag_records", products...)
		return m.Get(t, "skuflow_backing_off", products...) == 0 && m.Get(t, "skuflow_data_age_seconds", products...) == 0 &&
			parts == 6 && lag == 0 && m.Get(t, "skuflow_records_consumed_total", products...) == want
	})
	if exited, err := p.Exited(); exited {
		t.Fatalf("the processor exited: %v", err)
	}
}

// produce writes n products records keyed by sku, on their key's
// partition, as the loader does (without its headers).
func produce(t *testing.T, broker string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("products"),
		kgo.RecordPartitioner(&kafka.FixedPartitioner{N: 6}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		sku := fmt.Sprintf("outage-%d", i)
		recs[i] = &kgo.Record{Key: []byte(sku), Value: fmt.Appendf(nil, `{"sku":%q,"name":"during the outage"}`, sku)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
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

func fileSize(t *testing.T, file string) float64 {
	t.Helper()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return float64(st.Size())
}
