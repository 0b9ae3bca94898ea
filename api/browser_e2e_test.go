package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"skuflow/api"
	"skuflow/config"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// EnvScreenshots set to "docs" makes TestBrowserPage write its picture of
// the page to docs/operations-page.png; by default tests write nothing
// into the repository.
const EnvScreenshots = "SKUFLOW_SCREENSHOTS"

// chromium returns the path of the browser, or fails the test saying how
// to install it: a browser test that skips proves nothing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium on PATH: install it with `deploy/stack.sh install` (Debian's chromium package; `make deps` runs it)")
	return ""
}

// browser starts headless Chromium and returns a tab's context. The
// browser must not reach for the network: this machine has none, and a
// browser that tries stalls.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	var out strings.Builder
	var mu sync.Mutex
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1440, 1000),
		chromedp.CombinedOutput(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return out.Write(p)
		})),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		if t.Failed() {
			mu.Lock()
			t.Logf("chromium's output:\n%s", out.String())
			mu.Unlock()
		}
	})
	if err := chromedp.Do(tab); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromium(t), err)
	}
	return tab
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// step runs actions with a timeout of their own, failing the test with
// what was being done.
func step(t *testing.T, tab context.Context, what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// until waits for a JavaScript expression to be true in the page.
func until(t *testing.T, tab context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	step(t, tab, "wait until "+what, timeout+5*time.Second,
		chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(20*time.Millisecond)))
}

func screenshot(t *testing.T, tab context.Context, path string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
	return png
}

// The operations page in real headless Chromium against the real stack:
// sign in with a token, upload a CSV through the page and see its job
// done, with its rejected record; see a job the loader pushed appear and
// finish by itself; see a record POSTed with curl in the live feed within
// a second of curl's return. Without tokens it works without signing in.
func TestBrowserPage(t *testing.T) {
	tab := browser(t, t.Context())
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("no curl on PATH (Debian's curl package)")
	}
	token, sum := api.NewToken()
	cfg := filepath.Join(t.TempDir(), "skuflow.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "api:\n  tokens:\n    - name: ui\n      sha256: %s\n      scopes: [read, write]\n", sum), 0o600); err != nil {
		t.Fatal(err)
	}
	st := testenv.NewStack(t, "SKUFLOW_CONFIG="+cfg)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	base, _ := st.API(t)
	waitReady(t, base)
	shots := t.ArtifactDir()

	// An exception in the page fails the test; other console lines (the
	// 401 of the first look before signing in, say) are logged.
	messages := chromedp.Console(tab)
	var (
		consoleMu  sync.Mutex
		exceptions []string
		ended      bool // no logging once the test has ended
	)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			consoleMu.Lock()
			if !ended {
				if m.IsException() {
					exceptions = append(exceptions, m.String())
				}
				t.Logf("console %s: %s", m.Type, m.Text)
			}
			consoleMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		ended = true
		for _, e := range exceptions {
			t.Errorf("exception in the page: %s", e)
		}
	})

	// Sign in: a wrong token is refused with a message, the right one
	// opens the page and its live feed.
	step(t, tab, "open the page", 30*time.Second,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")))
	screenshot(t, tab, filepath.Join(shots, "1-sign-in.png"))
	step(t, tab, "sign in with a wrong token", 10*time.Second,
		chromedp.SendKeys(chromedp.ID("token"), "skf_wrong"),
		chromedp.Click(chromedp.ID("sign-in-button")),
		chromedp.WaitVisible(chromedp.ID("sign-in-error")))
	step(t, tab, "sign in", 20*time.Second,
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("sign-in-button")),
		chromedp.WaitVisible(chromedp.ID("app")))
	until(t, tab, "the feed is live", `document.getElementById('live-text').textContent === 'Live'`, 10*time.Second)
	if open, _ := chromedp.Run(tab, chromedp.Evaluate[bool](`!document.getElementById('open-note').hidden`)); open {
		t.Error("the page says no sign-in is needed on a server with tokens")
	}

	// Upload a CSV with one record that has no key: the job ends done, and
	// its detail shows the rejected record and why.
	dir := t.TempDir()
	upload := filepath.Join(dir, "spring-catalog.csv")
	if err := os.WriteFile(upload, []byte("sku,name,description\nsp-1,Garden chair,Teak\nsp-2,Garden table,Teak\nsp-3,Parasol,\"Blue, 3 m\"\n,Lantern,no sku\nsp-5,Hammock,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	step(t, tab, "upload the CSV", 20*time.Second,
		chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{upload}),
		chromedp.WaitVisible(chromedp.ID("staged")),
		chromedp.Click(chromedp.ID("upload-button")),
		chromedp.WaitVisible(chromedp.CSS("#upload-message.good")))
	began := time.Now()
	until(t, tab, "the uploaded job is done in the jobs table", rowState("spring-catalog.csv", "done"), 2*time.Minute)
	t.Logf("the uploaded job showed done %s after the upload was accepted", time.Since(began).Round(time.Millisecond))
	step(t, tab, "open the job's detail", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#jobs tbody tr[data-job]`)),
		chromedp.WaitVisible(chromedp.ID("errors")))
	reasons, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#errors tbody")))
	if err != nil || !strings.Contains(reasons, "sku") {
		t.Fatalf("the rejected record's reason: %q %v", reasons, err)
	}

	// A job the loader pushes, not the API, shows up and finishes through
	// the feed (the API settles it).
	pushed := filepath.Join(dir, "from-the-loader.csv")
	if err := os.WriteFile(pushed, []byte("sku,name\nld-1,Lamp\nld-2,Rug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := st.Loader(t, "push", "--no-progress", pushed); err != nil {
		t.Fatalf("loader push: %v\n%s\n%s", err, out, stderr)
	}
	until(t, tab, "the loader's job is done in the live feed",
		`[...document.querySelectorAll('#feed li')].some((li) => li.textContent.includes('from-the-loader.csv') && li.textContent.includes('done'))`, time.Minute)
	until(t, tab, "the loader's job is done in the jobs table", rowState("from-the-loader.csv", "done"), 10*time.Second)
	screenshot(t, tab, filepath.Join(shots, "2-jobs-done.png"))

	// A record POSTed with curl shows in the live feed within a second of
	// curl's return. The page notes when it saw it (the browser's clock is
	// this machine's).
	sku := "live-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	step(t, tab, "watch the feed", 5*time.Second, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		window.__seenAt = 0;
		const look = () => {
			if (!window.__seenAt && [...document.querySelectorAll('#feed li .sample')].some((s) => s.textContent.includes(%q))) window.__seenAt = Date.now();
		};
		new MutationObserver(look).observe(document.getElementById('feed'), { childList: true, subtree: true });
	})()`, sku)))
	cmd := exec.Command(curl, "-sS", "--fail-with-body", "-H", "Authorization: Bearer "+token, "-H", "Content-Type: application/x-ndjson",
		"--data-binary", fmt.Sprintf(`{"sku":%q,"name":"Live record","description":"sent with curl"}`, sku), base+"/v1/records/products")
	curlStart := time.Now()
	out, err := cmd.CombinedOutput()
	curlDone := time.Now()
	if err != nil || !strings.Contains(string(out), `"accepted": 1`) {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	until(t, tab, "the curl record is in the live feed", `window.__seenAt > 0`, 5*time.Second)
	seenMs, err := chromedp.Run(tab, chromedp.Evaluate[float64](`window.__seenAt`))
	if err != nil {
		t.Fatal(err)
	}
	seen := time.UnixMilli(int64(seenMs))
	latency := seen.Sub(curlDone)
	t.Logf("curl took %s; the record showed in the feed %s after curl returned (%s after it started; negative: before curl had read its answer)",
		curlDone.Sub(curlStart).Round(time.Millisecond), latency.Round(time.Millisecond), seen.Sub(curlStart).Round(time.Millisecond))
	if latency >= time.Second {
		t.Errorf("the record took %s after curl's return to show in the feed, want under 1s", latency)
	}
	// The aggregate's first rows follow: the new name is counted.
	if missing, _ := chromedp.Run(tab, chromedp.Evaluate[bool](`document.getElementById('aggs').textContent.includes('Not available')`)); missing {
		t.Log("GET /v1/aggregates/{name} is not served: the page says it is not available")
	} else {
		until(t, tab, "the aggregate counts the curl record", `document.getElementById('aggs').textContent.includes('Live record')`, 15*time.Second)
	}
	png := screenshot(t, tab, filepath.Join(shots, "3-feed.png"))
	if os.Getenv(EnvScreenshots) == "docs" {
		path := filepath.Join(testenv.RepoRoot(t), "docs", "operations-page.png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}

	// Without tokens the API lets loopback clients in, and the page says so
	// instead of asking for a token.
	noTokens := filepath.Join(t.TempDir(), "skuflow.yaml")
	if err := os.WriteFile(noTokens, []byte("api: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open, _ := st.API(t, "SKUFLOW_CONFIG="+noTokens)
	waitReady(t, open)
	step(t, tab, "open the page of a server without tokens", 30*time.Second,
		chromedp.Navigate(open+"/"),
		chromedp.WaitVisible(chromedp.ID("open-note")))
	if hidden, _ := chromedp.Run(tab, chromedp.Evaluate[bool](`document.getElementById('sign-in').hidden && document.getElementById('sign-out').hidden`)); !hidden {
		t.Error("a server without tokens still asks for one")
	}
	until(t, tab, "the open page lists the jobs", rowState("spring-catalog.csv", "done"), 20*time.Second)
	screenshot(t, tab, filepath.Join(shots, "4-no-tokens.png"))
}

// rowState is a page expression: the jobs table has a row for file in
// state.
func rowState(file, state string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#jobs tbody tr')].some((tr) => tr.cells[0].textContent === %q && tr.querySelector('[data-state=%s]'))`, file, state)
}

// waitReady waits for the API to answer /readyz.
func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz: not ready after a minute (%v)", base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The page shows every state of a job (reading, loading with its
// progress from GET /v1/jobs/{id}, failed with the reason, done), and puts
// what it is sent into the page as text: a file name or a record that
// holds markup shows the markup, and nothing of it runs. The API's job
// routes answer canned jobs here; the feed is the server's own.
func TestPageShowsEventsAsText(t *testing.T) {
	tab := browser(t, t.Context())
	srv := api.New(api.Options{Config: config.Default(), Types: map[string]*api.Type{"products": {Schema: schemas.Products}}})
	now := time.Now().UTC()
	hostile := `<img src=x onerror="window.__pwned=1">.csv`
	list := []map[string]any{
		{"id": "20260101T000004Z-aaaa", "source": "/inbox/" + hostile, "type": "products", "state": "producing",
			"records_read": 12345, "started_at": now.Add(-4 * time.Second), "updated_at": now},
		{"id": "20260101T000003Z-bbbb", "source": "march.ndjson.zst", "type": "products", "state": "produced",
			"records_read": 200000, "records_produced": 200000, "started_at": now.Add(-30 * time.Second), "updated_at": now},
		{"id": "20260101T000002Z-cccc", "source": "broken.json", "type": "products", "state": "failed",
			"error": "broken.json: line 3: unexpected end of JSON input", "started_at": now.Add(-time.Minute), "updated_at": now},
		{"id": "20260101T000001Z-dddd", "source": "february.csv", "type": "products", "state": "done",
			"records_read": 1200, "records_produced": 1198, "records_rejected": 2, "started_at": now.Add(-time.Hour), "updated_at": now},
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler())
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, _ *http.Request) {
		writeTestJSON(w, 200, map[string]any{"jobs": list})
	})
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, j := range list {
			if j["id"] != r.PathValue("id") {
				continue
			}
			switch j["state"] {
			case "produced":
				p := map[string]any{"progress": []map[string]any{{"group": "skuflow-processor", "records_behind": 50000}, {"group": "skuflow-aggregator", "records_behind": 80000}}}
				for k, v := range j {
					p[k] = v
				}
				writeTestJSON(w, http.StatusTooEarly, p)
			case "producing":
				writeTestJSON(w, http.StatusTooEarly, j)
			default:
				writeTestJSON(w, 200, j)
			}
			return
		}
		writeTestJSON(w, 404, map[string]any{"error": map[string]any{"code": "not_found", "message": "no job"}})
	})
	mux.HandleFunc("GET /v1/jobs/{id}/errors", func(w http.ResponseWriter, _ *http.Request) {
		writeTestJSON(w, 200, map[string]any{"total": 1, "errors": []map[string]any{
			{"line": 7, "stage": "validate", "reason": `field "sku": required field is empty`, "raw": `{"name":"<script>window.__pwned=1</script>"}`}}})
	})
	mux.HandleFunc("GET /v1/aggregates/{name}", func(w http.ResponseWriter, _ *http.Request) {
		writeTestJSON(w, 200, map[string]any{"rows": []map[string]any{{"name": "<b>Bold</b>", "no_of_products": 3}, {"name": "Chair", "no_of_products": 12}}})
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	step(t, tab, "open the page", 30*time.Second,
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("open-note")))
	until(t, tab, "the feed is live", `document.getElementById('live-text').textContent === 'Live'`, 10*time.Second)
	srv.Feed().Publish(api.Event{Kind: "records", Type: "products", Records: 1,
		Sample: `{"sku":"<script>window.__pwned=1</script>","name":"<img src=x onerror=\"window.__pwned=1\">"}`})
	until(t, tab, "the record in the feed", `document.getElementById('feed').textContent.includes('<img src=x onerror')`, 10*time.Second)
	until(t, tab, "the loading job's progress", `document.getElementById('jobs').textContent.includes('60% loaded')`, 10*time.Second)
	until(t, tab, "the aggregate", `document.getElementById('aggs').textContent.includes('<b>Bold</b>')`, 10*time.Second)
	step(t, tab, "open the failed job", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#jobs tr[data-job="20260101T000002Z-cccc"]`)),
		chromedp.WaitVisible(chromedp.ID("errors")))
	for what, expr := range map[string]string{
		"the hostile file name as text": `document.getElementById('jobs').textContent.includes(` + strconv.Quote(hostile) + `)`,
		"the reading job's count":       `document.getElementById('jobs').textContent.includes('12,345 records read')`,
		"the failed job's reason":       `document.getElementById('detail').textContent.includes('unexpected end of JSON input')`,
		"no markup from data":           `document.querySelectorAll('main img, main script, main b').length === 0`,
		"nothing of it ran":             `window.__pwned === undefined`,
	} {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](expr))
		if err != nil || !ok {
			t.Errorf("%s: %v %v", what, ok, err)
		}
	}
	screenshot(t, tab, filepath.Join(t.ArtifactDir(), "states.png"))
}

func writeTestJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
