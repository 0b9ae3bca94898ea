package watcher_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// The watcher's /metrics, after files were dropped: the inbox's folders
// counted, the records produced and rejected by stage, a push duration per
// file produced; and nothing of the services it does not run.
func TestWatchMetrics(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	inbox := t.TempDir()
	w := s.Watcher(t, inbox, inboxEnv...)
	url := w.MetricsURL(t)

	base := strings.TrimSuffix(url, "/metrics")
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	// The folders' gauges are set at the end of the first scan, which
	// runs beside the metrics listener.
	testenv.WaitMetrics(t, url, time.Minute, "inbox folder counts", func(m testenv.Metrics) bool {
		_, ok := m.Value("skuflow_inbox_files", "type", "products", "folder", "failed")
		return ok
	})
	m := testenv.ScrapeMetrics(t, url, nil)
	for _, folder := range []string{"waiting", "processing", "done", "failed"} {
		if v, ok := m.Value("skuflow_inbox_files", "type", "products", "folder", folder); !ok || v != 0 {
			t.Errorf("inbox files in %s before any file: %v %v", folder, v, ok)
		}
	}
	if v, ok := m.Value("skuflow_records_rejected_total", "type", "products", "stage", "validate"); !ok || v != 0 {
		t.Errorf("rejected records before any file: %v %v", v, ok)
	}

	// Two files load, with 2 records rejected by validation and 1 by
	// decoding among them; a CSV without the key column fails whole.
	good := encode(t, "ndjson", products("m1", 300))
	mixed := append(encode(t, "ndjson", products("m2", 200)),
		"{\"name\":\"no sku\"}\n{\"sku\":\"\",\"name\":\"empty sku\"}\n{\"sku\": broken\n"...)
	files := map[string][]byte{"good.ndjson": good, "mixed.ndjson": mixed, "nokey.csv": []byte("name\nx\n")}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(inbox, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFiled(t, inbox, 3, 2*time.Minute)

	want := map[string]float64{"waiting": 0, "processing": 0, "done": 2, "failed": 1}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m = testenv.ScrapeMetrics(t, url, nil)
		var off []string
		for folder, n := range want {
			if v, _ := m.Value("skuflow_inbox_files", "type", "products", "folder", folder); v != n {
				off = append(off, fmt.Sprintf("%s=%v (want %v)", folder, v, n))
			}
		}
		if len(off) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inbox files: %v; log:\n%s", off, w.Log(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"skuflow_records_produced_total", []string{"type", "products"}, 500},
		{"skuflow_records_rejected_total", []string{"type", "products", "stage", "validate"}, 2},
		{"skuflow_records_rejected_total", []string{"type", "products", "stage", "decode"}, 1},
		// The failed file's push took no full file to the topic: no
		// duration.
		{"skuflow_push_duration_seconds_count", []string{"type", "products"}, 2},
	} {
		if v, ok := m.Value(c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.products FINAL WHERE startsWith(sku, 'm')"); n == 0 {
		t.Errorf("nothing of the files in ClickHouse")
	}
	// Its own metrics and the runtime's, and none of the services'.
	if _, ok := m.Value("go_goroutines"); !ok {
		t.Errorf("no Go runtime metrics")
	}
	for _, other := range []string{"skuflow_records_inserted_total", "skuflow_consumer_lag_records", "skuflow_http_requests_total", "skuflow_jobs"} {
		if _, ok := m.Value(other); ok {
			t.Errorf("the watcher exports %s", other)
		}
	}
}
