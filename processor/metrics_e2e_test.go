package processor_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
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
	m := scrape(t, url)
	products := []string{"type", "products"}
	if got := m.get(t, "skuflow_records_inserted_total", products...); got != rows {
		t.Errorf("inserted %v, want %v (the rows pushed, repeated skus included)", got, rows)
	}
	if got := m.get(t, "skuflow_records_consumed_total", products...); got != rows {
		t.Errorf("consumed %v, want %v", got, rows)
	}
	if got, size := m.get(t, "skuflow_consumed_bytes_total", products...), fileSize(t, file); got < size/2 || got > size*2 {
		t.Errorf("consumed %v bytes of a %v-byte file", got, size)
	}
	for _, stage := range []string{"decode", "key", "insert"} {
		if got := m.get(t, "skuflow_records_rejected_total", "type", "products", "stage", stage); got != 0 {
			t.Errorf("rejected at %s: %v", stage, got)
		}
	}
	batches := m.get(t, "skuflow_insert_batch_rows_count", products...)
	if batches <= 0 {
		t.Errorf("no INSERT in the batch histogram")
	}
	if got := m.get(t, "skuflow_insert_batch_rows_sum", products...); got != rows {
		t.Errorf("the batch histogram sums to %v rows, want %v", got, rows)
	}
	if got := m.get(t, "skuflow_insert_duration_seconds_count", products...); got != batches {
		t.Errorf("%v INSERTs timed, %v counted", got, batches)
	}
	if got := m.get(t, "skuflow_backing_off", products...); got != 0 {
		t.Errorf("backing off: %v", got)
	}
	// One instance owns every partition: each has its lag, back to 0.
	eventuallyMetrics(t, url, 10*time.Second, "lag 0 on 6 partitions and data age 0", func(m metricsPage) bool {
		sum, n := m.sum("skuflow_consumer_lag_records", products...)
		return n == 6 && sum == 0 && m.get(t, "skuflow_data_age_seconds", products...) == 0
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
		eventuallyMetrics(t, svc.url, time.Minute, svc.name+" backing off, data age above 0", func(m metricsPage) bool {
			return m.get(t, "skuflow_backing_off", products...) == 1 && m.get(t, "skuflow_data_age_seconds", products...) > 0
		})
		first := scrape(t, svc.url).get(t, "skuflow_data_age_seconds", products...)
		var later float64
		eventuallyMetrics(t, svc.url, 10*time.Second, svc.name+"'s data age growing", func(m metricsPage) bool {
			later = m.get(t, "skuflow_data_age_seconds", products...)
			return later >= first+1.5
		})
		t.Logf("%s backing off; data age %.1f s, then %.1f s", svc.name, first, later)
		if got := scrape(t, svc.url).get(t, "skuflow_retries_total", "type", "products", "op", svc.op); got < 1 {
			t.Errorf("%s: %v retries of %s", svc.name, got, svc.op)
		}
	}

	s.CH.Start(t)
	want := float64(lines(t, file) + n)
	eventuallyMetrics(t, procURL, 2*time.Minute, "the processor caught up", func(m metricsPage) bool {
		return m.get(t, "skuflow_records_inserted_total", products...) == want &&
			m.get(t, "skuflow_backing_off", products...) == 0 && m.get(t, "skuflow_data_age_seconds", products...) == 0
	})
	eventuallyMetrics(t, aggURL, 2*time.Minute, "the aggregator caught up", func(m metricsPage) bool {
		lag, parts := m.sum("skuflow_consumer_lag_records", products...)
		return m.get(t, "skuflow_backing_off", products...) == 0 && m.get(t, "skuflow_data_age_seconds", products...) == 0 &&
			parts == 6 && lag == 0 && m.get(t, "skuflow_records_consumed_total", products...) == want
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

// metricsPage is a scrape of /metrics: every sample, by name.
type metricsPage map[string][]sample

type sample struct {
	labels map[string]string
	value  float64
}

// scrape reads url (Prometheus' text format; skuflow's label values need
// no escapes).
func scrape(t *testing.T, url string) metricsPage {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	m := metricsPage{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: %q: %v", url, line, err)
		}
		name, labels, _ := strings.Cut(line[:i], "{")
		s := sample{labels: map[string]string{}, value: v}
		for _, l := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
			if k, v, ok := strings.Cut(l, "="); ok {
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		m[name] = append(m[name], s)
	}
	return m
}

// sum adds the samples of name whose labels include those given (name,
// value pairs), and says how many there were.
func (m metricsPage) sum(name string, labels ...string) (float64, int) {
	var total float64
	n := 0
next:
	for _, s := range m[name] {
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		total += s.value
		n++
	}
	return total, n
}

// get is the one sample of name with labels; the test fails without it.
func (m metricsPage) get(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, n := m.sum(name, labels...)
	if n != 1 {
		t.Fatalf("%d samples of %s%v, want 1", n, name, labels)
	}
	return v
}

// eventuallyMetrics scrapes url until cond holds, failing after timeout.
func eventuallyMetrics(t *testing.T, url string, timeout time.Duration, what string, cond func(metricsPage) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := scrape(t, url)
		if cond(m) {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for name, ss := range m {
				if strings.HasPrefix(name, "skuflow_") && !strings.Contains(name, "_bucket") {
					for _, s := range ss {
						fmt.Fprintf(&b, "%s%v %v\n", name, s.labels, s.value)
					}
				}
			}
			t.Fatalf("no %s after %s:\n%s", what, timeout, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
