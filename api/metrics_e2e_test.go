package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// The API's /metrics after a few requests: a counter per route pattern
// and status code, never a job id or a key in a label; what the upload and
// the POSTed records produced and rejected; the feed's clients; and the
// jobs by state, the upload's done.
func TestAPIMetrics(t *testing.T) {
	st := testenv.NewStack(t)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	base, _ := st.API(t)
	c := newClient(base, "")

	a := c.call(t, "POST", "/v1/files?name=metrics.csv", "text/csv", productsCSV("met", 3))
	loc := a.Header.Get("Location")
	if a.Status != http.StatusAccepted || loc == "" {
		t.Fatalf("upload: %s", a)
	}
	job := strings.TrimPrefix(loc, "/v1/jobs/")
	if a = waitJob(t, c, loc, 2*time.Minute); a.Status != http.StatusOK {
		t.Fatalf("job: %s", a)
	}
	if a = c.call(t, "POST", "/v1/records/products", "application/x-ndjson", []byte(`{"sku":"met-r1","name":"x"}`+"\n"+`{"sku":"met-r2","name":"y"}`+"\n")); a.Status != http.StatusAccepted {
		t.Fatalf("records: %s", a)
	}
	if a = c.call(t, "POST", "/v1/records/products", "application/x-ndjson", []byte(`{"sku":"met-r3","name":"x"}`+"\n"+`{"name":"no sku"}`+"\n")); a.Status != http.StatusBadRequest {
		t.Fatalf("bad records: %s", a)
	}
	st.WaitCount(t, "SELECT count() FROM skuflow.products FINAL WHERE sku IN ('met-r1', 'met-r2')", 2, time.Minute)
	if a = c.call(t, "GET", "/v1/records/products/met-r1", "", nil); a.Status != http.StatusOK {
		t.Fatalf("record: %s", a)
	}
	if a = c.call(t, "GET", "/v1/jobs/20260101T000000Z-000000000000", "", nil); a.Status != http.StatusNotFound {
		t.Fatalf("a job that is not there: %s", a)
	}
	for _, path := range []string{"/v1/nothing/" + job, "/nothing/" + job} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A feed client, held open while the page is read.
	feed, err := http.Get(base + "/v1/events")
	if err != nil || feed.StatusCode != http.StatusOK {
		t.Fatalf("feed: %v %v", feed, err)
	}
	defer feed.Body.Close()

	a = c.call(t, "GET", "/metrics", "", nil)
	if a.Status != http.StatusOK || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", a.Status, a.Header.Get("Content-Type"))
	}
	m := testenv.ParseMetrics(t, a.Body)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64 // at least, for request counts: the page polls
	}{
		{"skuflow_http_requests_total", []string{"route", "POST /v1/files", "code", "202"}, 1},
		{"skuflow_http_requests_total", []string{"route", "GET /v1/jobs/{id}", "code", "200"}, 1},
		{"skuflow_http_requests_total", []string{"route", "GET /v1/jobs/{id}", "code", "404"}, 1},
		{"skuflow_http_requests_total", []string{"route", "POST /v1/records/{type}", "code", "202"}, 1},
		{"skuflow_http_requests_total", []string{"route", "POST /v1/records/{type}", "code", "400"}, 1},
		{"skuflow_http_requests_total", []string{"route", "GET /v1/records/{type}/{key...}", "code", "200"}, 1},
		{"skuflow_http_requests_total", []string{"route", "/v1/", "code", "404"}, 1},
		{"skuflow_http_requests_total", []string{"route", "unmatched", "code", "404"}, 1},
		{"skuflow_http_request_duration_seconds_count", []string{"route", "POST /v1/files"}, 1},
		{"skuflow_records_produced_total", []string{"type", "products"}, 5},
		{"skuflow_records_rejected_total", []string{"type", "products", "stage", "validate"}, 1},
		{"skuflow_push_duration_seconds_count", []string{"type", "products"}, 1},
		{"skuflow_feed_clients", nil, 1},
		{"skuflow_jobs", []string{"type", "products", "state", "done"}, 1},
	} {
		v, ok := m.Value(c.name, c.labels...)
		exact := !strings.HasPrefix(c.name, "skuflow_http_")
		if !ok || exact && v != c.want || v < c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	for _, state := range []string{"producing", "produced", "failed", "stalled"} {
		if v, ok := m.Value("skuflow_jobs", "type", "products", "state", state); !ok || v != 0 {
			t.Errorf("jobs %s: %v (found %v), want 0", state, v, ok)
		}
	}
	// Bounded labels: the patterns, never the paths of the requests.
	for name, samples := range m {
		for _, s := range samples {
			for k, v := range s.Labels {
				if strings.Contains(v, job) || strings.Contains(v, "met-r1") || strings.Contains(v, "/nothing") {
					t.Errorf("%s has a label %s=%q from a request's path", name, k, v)
				}
			}
		}
	}
	if _, ok := m.Value("skuflow_records_inserted_total"); ok {
		t.Errorf("the API exports the processor's metrics")
	}
}

// With tokens, /metrics needs a read token, which Prometheus sends; the
// jobs gauge counts a producing job not heard from as stalled.
func TestAPIMetricsNeedAToken(t *testing.T) {
	st := testenv.NewStack(t)
	cfgPath, writer, reader := tokens(t, st)
	// The job store is made by the API's start; then a job whose loader
	// went silent a minute ago.
	base, _ := st.API(t, "SKUFLOW_CONFIG="+cfgPath)
	st.CH.Query(t, "INSERT INTO skuflow.ingest_jobs (id, type, state, started_at, updated_at, version) "+
		"VALUES ('"+time.Now().UTC().Format("20060102T150405Z")+"-stalled', 'products', 'producing', now() - 90, now() - 60, 1)")

	if a := newClient(base, "").call(t, "GET", "/metrics", "", nil); a.Status != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %s", a)
	}
	for _, tok := range []string{reader, writer} {
		a := newClient(base, tok).call(t, "GET", "/metrics", "", nil)
		if a.Status != http.StatusOK {
			t.Fatalf("/metrics with a read token: %d", a.Status)
		}
		m := testenv.ParseMetrics(t, a.Body)
		for state, want := range map[string]float64{"stalled": 1, "producing": 0} {
			if v, ok := m.Value("skuflow_jobs", "type", "products", "state", state); !ok || v != want {
				t.Errorf("jobs %s: %v (found %v), want %v", state, v, ok, want)
			}
		}
		if v, ok := m.Value("skuflow_http_requests_total", "route", "GET /metrics", "code", "401"); !ok || v != 1 {
			t.Errorf("the refused scrape: %v (found %v)", v, ok)
		}
	}
}
