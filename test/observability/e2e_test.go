package observability_test

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/kafka"
	"skuflow/internal/testenv"
)

var updatePicture = flag.Bool("update-picture", false, "draw the dashboard from TestMetricsEndToEnd's data into "+pictureFile)

// The shipped Prometheus configuration and alerts, run against the real
// services: a file pushed through the watcher is counted row for row,
// every query of the dashboard and every alert answers with data, and
// ClickHouse stopped shows as backing off, late data and the
// SkuflowBackingOff alert firing, all of which clear once it is back.
func TestMetricsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole stack and Prometheus for about a minute")
	}
	begin := time.Now()
	st := testenv.NewStack(t)
	p := st.Service(t, "processor")
	a := st.Service(t, "aggregator")
	inbox := t.TempDir()
	w := st.Watcher(t, inbox)
	base, _ := st.API(t)
	targets := map[string]string{
		"processor":  p.MetricsURL(t),
		"aggregator": a.MetricsURL(t),
		"watcher":    w.MetricsURL(t),
		"api":        base + "/metrics",
	}
	prom := testenv.Prometheus(t, prometheusConfig(t, targets))
	ctx := context.Background()

	// Every target scraped.
	waitFor(t, prom, "all four targets up", `count(up == 1)`, 30*time.Second, equals(4))
	// A few scrapes before anything happens: a rate needs two samples
	// from before the push to show it from its start.
	time.Sleep(5 * time.Second)

	// A file of distinct skus, and one line without a sku, through the
	// watcher; and one record written to the topic under a key that is
	// not its own, as another client might.
	const rows = 5000
	dropFile(t, inbox, "observed.ndjson", productLines("obs", rows)+`{"name":"a record without its sku"}`+"\n")
	produce(t, st, []*kgo.Record{{Key: []byte("not-its-key"), Value: []byte(`{"sku":"obs-stray","name":"stray"}`)}})
	for _, path := range []string{"/v1/jobs", "/healthz", "/v1/nothing-here"} {
		get(t, base+path)
	}

	waitFor(t, prom, "every row counted as inserted", `sum(skuflow_records_inserted_total)`, time.Minute, equals(rows))
	waitFor(t, prom, "the lag back to 0", `sum(skuflow_consumer_lag_records)`, time.Minute, equals(0))
	waitFor(t, prom, "no data waiting", `max(skuflow_data_age_seconds)`, time.Minute, equals(0))
	waitFor(t, prom, "the file counted as produced by the watcher", `sum(skuflow_records_produced_total{job="watcher"})`, time.Minute, equals(rows))
	waitFor(t, prom, "the line without a sku rejected at validate", `sum(skuflow_records_rejected_total{job="watcher",stage="validate"})`, time.Minute, equals(1))
	waitFor(t, prom, "the stray record rejected at key", `sum(skuflow_records_rejected_total{job="processor",stage="key"})`, time.Minute, equals(1))
	waitFor(t, prom, "the file in done/", `sum(skuflow_inbox_files{folder="done"})`, time.Minute, equals(1))
	if n := st.Count(t, "SELECT count() FROM skuflow.products"); n != rows {
		t.Fatalf("skuflow.products holds %d rows, Prometheus counted %d inserted", n, rows)
	}

	// ClickHouse stopped while records wait on the topic: the processor
	// and aggregator back off, the data ages, SkuflowBackingOff fires
	// (its `for` shortened in this test's copy of the rules).
	st.CH.Stop(t)
	faultBegin := time.Now()
	const late = 200
	produce(t, st, productRecords("late", late))
	waitFor(t, prom, "the processor backing off", `max(skuflow_backing_off{job="processor"})`, time.Minute, equals(1))
	waitFor(t, prom, "the aggregator backing off", `max(skuflow_backing_off{job="aggregator"})`, time.Minute, equals(1))
	waitFor(t, prom, "the data at least 5 s late", `max(skuflow_data_age_seconds{job="processor"})`, time.Minute, atLeast(5))
	// More records while the services wait on ClickHouse: the lag counts
	// them, though nothing is fetched until the insert goes through (it
	// is read from the broker's end offsets, not only from fetches).
	const stuck = 300
	produce(t, st, productRecords("stuck", stuck))
	waitFor(t, prom, "the records produced during the fault counted as lag", `sum(skuflow_consumer_lag_records{job="aggregator"})`, time.Minute, atLeast(stuck))
	backingOff := alertExpr(t, prom, "SkuflowBackingOff")
	waitFor(t, prom, "SkuflowBackingOff's expression true", backingOff, time.Minute, nonEmpty)
	waitAlert(t, prom, "SkuflowBackingOff", "firing", time.Minute)
	if got := query(t, prom, `sum(skuflow_records_inserted_total)`); got[0].Value != rows {
		t.Fatalf("%v rows counted inserted with ClickHouse down, want %d", got[0].Value, rows)
	}
	// Hold the fault a while, so that the picture shows it.
	time.Sleep(5 * time.Second)

	st.CH.Start(t)
	faultEnd := time.Now()
	waitFor(t, prom, "no service backing off", `max(skuflow_backing_off)`, time.Minute, equals(0))
	waitFor(t, prom, "no data waiting", `max(skuflow_data_age_seconds)`, time.Minute, equals(0))
	waitFor(t, prom, "the late rows inserted", `sum(skuflow_records_inserted_total)`, time.Minute, equals(rows+late+stuck))
	waitFor(t, prom, "the lag back to 0", `sum(skuflow_consumer_lag_records)`, time.Minute, equals(0))
	waitFor(t, prom, "SkuflowBackingOff's expression false", backingOff, time.Minute, empty)
	waitAlert(t, prom, "SkuflowBackingOff", "", time.Minute)
	waitFor(t, prom, "retries counted", `sum(skuflow_retries_total)`, time.Minute, atLeast(1))
	// The API reads the job store every 15 s at most, keeping the last
	// values while ClickHouse is away.
	waitFor(t, prom, "the watcher's job counted done", `max(skuflow_jobs{state="done"})`, time.Minute, equals(1))
	waitFor(t, prom, "all four targets still up", `count(up == 1)`, 30*time.Second, equals(4))
	// A few more scrapes of the calm after the fault, for the picture's
	// rates and for the rules' next evaluation.
	time.Sleep(5 * time.Second)

	// Every query of the dashboard parses and returns data, with its
	// variables as Grafana fills them for the whole run.
	d := readDashboard(t)
	vars := grafanaVars{RateInterval: "1m", Range: fmt.Sprintf("%ds", int(time.Since(begin).Seconds())+1)}
	queries := d.queries()
	for _, q := range queries {
		expr := vars.expand(q.Expr)
		got, err := prom.Query(ctx, expr)
		switch {
		case err != nil:
			t.Errorf("dashboard %s: %v", q, err)
		case len(got) == 0:
			t.Errorf("dashboard %s: no data", q)
		}
	}
	// The type variable's values: the types the consuming services serve.
	var types []string
	if err := prom.API(ctx, "label/type/values", url.Values{"match[]": {"skuflow_records_consumed_total"}}, &types); err != nil || len(types) == 0 {
		t.Errorf("the type variable: %v %v", types, err)
	}

	// Every alert evaluates without error, and what it measures has data.
	rules := alertRules(t, prom)
	names, _ := alertNames(t)
	if len(rules) != len(names) {
		t.Errorf("Prometheus loaded %d alerts, %s holds %d", len(rules), alertsFile, len(names))
	}
	parts := 0
	for _, r := range rules {
		if r.Health != "ok" {
			t.Errorf("alert %s: health %q: %s", r.Name, r.Health, r.LastError)
		}
		for _, expr := range measured(r.Query) {
			parts++
			got, err := prom.Query(ctx, expr)
			switch {
			case err != nil:
				t.Errorf("alert %s: %s: %v", r.Name, expr, err)
			case len(got) == 0:
				t.Errorf("alert %s measures %s, which has no data", r.Name, expr)
			}
		}
	}
	t.Logf("%d queries of the dashboard and %d parts of %d alerts answered with data", len(queries), parts, len(rules))

	if *updatePicture {
		drawDashboard(t, prom, d, begin, time.Now(), faultBegin, faultEnd)
	}
}

// prometheusConfig writes the shipped configuration and alerts into a
// temporary folder, with the test's targets for the local stack's
// addresses, scrapes and evaluations every second, and each alert's `for`
// shortened to 2 s.
func prometheusConfig(t *testing.T, targets map[string]string) string {
	t.Helper()
	cfg := readRepoFile(t, prometheusFile)
	local := map[string]string{
		"processor":  "127.0.0.1:18081",
		"aggregator": "127.0.0.1:18082",
		"watcher":    "127.0.0.1:18083",
		"api":        "127.0.0.1:18080",
	}
	for job, addr := range local {
		u, err := url.Parse(targets[job])
		if err != nil || u.Path != "/metrics" {
			t.Fatalf("%s's metrics URL %q: %v", job, targets[job], err)
		}
		if strings.Count(cfg, `"`+addr+`"`) != 1 {
			t.Fatalf("%s does not scrape the %s at %s once", prometheusFile, job, addr)
		}
		cfg = strings.Replace(cfg, `"`+addr+`"`, `"`+u.Host+`"`, 1)
	}
	for _, kv := range [][2]string{{"scrape_interval", "1s"}, {"scrape_timeout", "900ms"}, {"evaluation_interval", "1s"}} {
		re := regexp.MustCompile(`(?m)^(\s+` + kv[0] + `:\s*)\S+`)
		if !re.MatchString(cfg) {
			t.Fatalf("%s sets no %s", prometheusFile, kv[0])
		}
		cfg = re.ReplaceAllString(cfg, "${1}"+kv[1])
	}
	rules := regexp.MustCompile(`(?m)^(\s+for:\s*)\S+`).ReplaceAllString(readRepoFile(t, alertsFile), "${1}2s")

	dir := t.TempDir()
	for name, text := range map[string]string{"prometheus.yml": cfg, "alerts.yml": rules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "prometheus.yml")
	if out, err := testenv.Promtool(t, "check", "config", path); err != nil {
		t.Fatalf("promtool check config of the test's copy: %v\n%s", err, out)
	}
	return path
}

// productLines returns n products as NDJSON, skus prefix-00000 on.
func productLines(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"sku":"%s-%05d","name":"name %d","description":"observed %d"}`+"\n", prefix, i, i%50, i)
	}
	return b.String()
}

// productRecords returns n products as a producer keying them by sku
// writes them.
func productRecords(prefix string, n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range n {
		sku := fmt.Sprintf("%s-%05d", prefix, i)
		recs[i] = &kgo.Record{Key: []byte(sku), Value: fmt.Appendf(nil, `{"sku":"%s","name":"name %d","description":"observed %d"}`, sku, i%50, i)}
	}
	return recs
}

// dropFile puts a complete file into the inbox at once, as a rename does.
func dropFile(t *testing.T, inbox, name, content string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
		t.Fatal(err)
	}
}

// produce writes records to the stack's topic as a client other than
// skuflow would: on the partition their Kafka key belongs to, without the
// loader's headers.
func produce(t *testing.T, st *testenv.Stack, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(st.Broker.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range recs {
		r.Topic = st.Broker.Topic
		r.Partition = kafka.PartitionOf(r.Key, st.Broker.Partitions)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records: %v", len(recs), err)
	}
}

func get(t *testing.T, u string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func query(t *testing.T, prom *testenv.PrometheusServer, expr string) []testenv.PromSample {
	t.Helper()
	got, err := prom.Query(context.Background(), expr)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A condition on an instant query's result.
type cond struct {
	what string
	ok   func([]testenv.PromSample) bool
}

func equals(v float64) cond {
	return cond{fmt.Sprintf("= %g", v), func(s []testenv.PromSample) bool { return len(s) == 1 && s[0].Value == v }}
}

func atLeast(v float64) cond {
	return cond{fmt.Sprintf(">= %g", v), func(s []testenv.PromSample) bool { return len(s) == 1 && s[0].Value >= v }}
}

var (
	nonEmpty = cond{"any series", func(s []testenv.PromSample) bool { return len(s) > 0 }}
	empty    = cond{"no series", func(s []testenv.PromSample) bool { return len(s) == 0 }}
)

// waitFor polls expr until its result meets c, and fails the test with the
// last result after timeout.
func waitFor(t *testing.T, prom *testenv.PrometheusServer, what, expr string, timeout time.Duration, c cond) {
	t.Helper()
	began := time.Now()
	var last []testenv.PromSample
	var err error
	for time.Since(began) < timeout {
		last, err = prom.Query(context.Background(), expr)
		var perr *testenv.PromError
		if errors.As(err, &perr) {
			t.Fatalf("%s: %s: %v", what, expr, err)
		}
		if err == nil && c.ok(last) {
			t.Logf("%s (%s %s) after %s", what, expr, c.what, time.Since(began).Round(100*time.Millisecond))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no %s after %s: %s is %s, want %s (%v)", what, timeout, expr, samples(last), c.what, err)
}

func samples(s []testenv.PromSample) string {
	if len(s) == 0 {
		return "empty"
	}
	var parts []string
	for _, x := range s {
		parts = append(parts, fmt.Sprintf("%v %g", x.Metric, x.Value))
	}
	return strings.Join(parts, ", ")
}

// rule is an alerting rule as /api/v1/rules shows it.
type rule struct {
	Name      string  `json:"name"`
	Query     string  `json:"query"`
	Duration  float64 `json:"duration"`
	Health    string  `json:"health"`
	LastError string  `json:"lastError"`
	State     string  `json:"state"`
	Type      string  `json:"type"`
}

func alertRules(t *testing.T, prom *testenv.PrometheusServer) []rule {
	t.Helper()
	var data struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := prom.API(context.Background(), "rules", url.Values{"type": {"alert"}}, &data); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// alertExpr returns the expression of the alert name, as Prometheus loaded it.
func alertExpr(t *testing.T, prom *testenv.PrometheusServer, name string) string {
	t.Helper()
	for _, r := range alertRules(t, prom) {
		if r.Name == name {
			return r.Query
		}
	}
	t.Fatalf("Prometheus has no alert %s", name)
	return ""
}

// waitAlert waits until the alert name is in state ("firing", "pending"),
// or with state "" until it is neither.
func waitAlert(t *testing.T, prom *testenv.PrometheusServer, name, state string, timeout time.Duration) {
	t.Helper()
	began := time.Now()
	var states []string
	for time.Since(began) < timeout {
		var data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		if err := prom.API(context.Background(), "alerts", nil, &data); err != nil {
			t.Fatal(err)
		}
		states = states[:0]
		for _, a := range data.Alerts {
			if a.Labels["alertname"] == name {
				states = append(states, a.State+" "+fmt.Sprint(a.Labels))
			}
		}
		found := false
		for _, s := range states {
			found = found || strings.HasPrefix(s, state+" ")
		}
		if (state == "" && len(states) == 0) || (state != "" && found) {
			t.Logf("alert %s %s after %s: %v", name, cmp.Or(state, "resolved"), time.Since(began).Round(100*time.Millisecond), states)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("alert %s not %s after %s: %v", name, cmp.Or(state, "resolved"), timeout, states)
}
