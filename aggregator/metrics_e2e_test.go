package aggregator_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
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
	m := scrape(t, url)
	if got := m.get(t, "skuflow_aggregator_keys", products...); got != distinct {
		t.Errorf("keys %v, want %v distinct skus", got, distinct)
	}
	if got := m.get(t, "skuflow_records_consumed_total", products...); got != rows {
		t.Errorf("consumed %v, want %v", got, rows)
	}
	if got := m.get(t, "skuflow_consumed_bytes_total", products...); got <= 0 {
		t.Errorf("consumed %v bytes", got)
	}
	groups := float64(s.Count(t, "SELECT count() FROM skuflow.product_counts FINAL"))
	if got := m.get(t, "skuflow_aggregate_rows_written_total", products...); got < groups {
		t.Errorf("%v rows written, fewer than the %v (partition, name) rows product_counts holds", got, groups)
	}
	if got := m.get(t, "skuflow_aggregator_rebuild_duration_seconds_count", products...); got < 1 {
		t.Errorf("no rebuild timed: %v", got)
	}
	if got := m.get(t, "skuflow_backing_off", products...); got != 0 {
		t.Errorf("backing off: %v", got)
	}
	eventuallyMetrics(t, url, 10*time.Second, "lag 0 on 6 partitions and data age 0", func(m metricsPage) bool {
		sum, n := m.sum("skuflow_consumer_lag_records", products...)
		return n == 6 && sum == 0 && m.get(t, "skuflow_data_age_seconds", products...) == 0
	})

	// Restarted, it loads every key from ClickHouse and reads nothing
	// again.
	a.Stop(t)
	a.Start(t)
	eventuallyMetrics(t, url, time.Minute, "the state rebuilt", func(m metricsPage) bool {
		return m.get(t, "skuflow_aggregator_keys", products...) == distinct &&
			m.get(t, "skuflow_aggregator_rebuild_duration_seconds_count", products...) >= 1
	})
	if got := scrape(t, url).get(t, "skuflow_records_consumed_total", products...); got != 0 {
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
