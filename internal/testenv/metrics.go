package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is a /metrics page as Prometheus reads it (prometheus/common's
// text parser): every sample by name, a histogram as its _bucket (with
// le), _sum and _count samples.
type Metrics map[string][]Sample

// Sample is one sample of a Metrics page.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads a page in Prometheus' text format; the test fails on
// one Prometheus would not read.
func ParseMetrics(t testing.TB, page []byte) Metrics {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("testenv: not a Prometheus text page: %v", err)
	}
	m := Metrics{}
	for name, f := range families {
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			add := func(suffix string, v float64, extra ...string) {
				ls := labels
				if len(extra) > 0 {
					ls = make(map[string]string, len(labels)+1)
					for k, v := range labels {
						ls[k] = v
					}
					ls[extra[0]] = extra[1]
				}
				m[name+suffix] = append(m[name+suffix], Sample{Labels: ls, Value: v})
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add("", mt.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add("", mt.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := mt.GetHistogram()
				for _, b := range h.GetBucket() {
					add("_bucket", float64(b.GetCumulativeCount()), "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
				}
				add("_sum", h.GetSampleSum())
				add("_count", float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				add("_sum", mt.GetSummary().GetSampleSum())
				add("_count", float64(mt.GetSummary().GetSampleCount()))
			default:
				add("", mt.GetUntyped().GetValue())
			}
		}
	}
	return m
}

// ScrapeMetrics GETs url, with header when given, and parses the page.
func ScrapeMetrics(t testing.TB, url string, header http.Header) Metrics {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v %s", url, resp.StatusCode, err, body)
	}
	return ParseMetrics(t, body)
}

// Sum adds the samples of name whose labels include those given (name,
// value pairs), and says how many there were.
func (m Metrics) Sum(name string, labels ...string) (float64, int) {
	var total float64
	n := 0
next:
	for _, s := range m[name] {
		for i := 0; i+1 < len(labels); i += 2 {
			if s.Labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		total += s.Value
		n++
	}
	return total, n
}

// Value is the first sample of name whose labels include those given, and
// whether there is one.
func (m Metrics) Value(name string, labels ...string) (float64, bool) {
next:
	for _, s := range m[name] {
		for i := 0; i+1 < len(labels); i += 2 {
			if s.Labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.Value, true
	}
	return 0, false
}

// Get is the one sample of name with labels; the test fails without it.
func (m Metrics) Get(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, n := m.Sum(name, labels...)
	if n != 1 {
		t.Fatalf("%d samples of %s%v, want 1", n, name, labels)
	}
	return v
}

// String lists skuflow's samples, histogram buckets left out, for a
// failure's message.
func (m Metrics) String() string {
	var b strings.Builder
	for name, ss := range m {
		if strings.HasPrefix(name, "skuflow_") && !strings.HasSuffix(name, "_bucket") {
			for _, s := range ss {
				fmt.Fprintf(&b, "%s%v %v\n", name, s.Labels, s.Value)
			}
		}
	}
	return b.String()
}

// WaitMetrics scrapes url until cond holds, failing after timeout with
// what it waited for and the last page.
func WaitMetrics(t testing.TB, url string, timeout time.Duration, what string, cond func(Metrics) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := ScrapeMetrics(t, url, nil)
		if cond(m) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s:\n%s", what, timeout, m)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
