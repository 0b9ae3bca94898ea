package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

func call(t *testing.T, method, url, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %q", method, url, resp.StatusCode, data)
	}
	return resp.StatusCode, out, resp.Header
}

// An upload goes through the loader's pipeline to done; a second upload
// of the same content is refused naming the first job; records POSTed are
// acknowledged, and a bad one refuses the request whole.
func TestUploadAndRecords(t *testing.T) {
	st := testenv.NewStack(t)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	base, _ := st.API(t)

	csv := "sku,name\na,Anna\nb,Bert\n"
	code, body, hdr := call(t, "POST", base+"/v1/files?name=p.csv", csv)
	if code != http.StatusAccepted || hdr.Get("Location") == "" {
		t.Fatalf("upload: %d %v", code, body)
	}
	loc := hdr.Get("Location")
	deadline := time.Now().Add(time.Minute)
	for {
		code, body, hdr = call(t, "GET", base+loc, "")
		if code == http.StatusOK {
			break
		}
		if code != http.StatusTooEarly || hdr.Get("Retry-After") == "" || time.Now().After(deadline) {
			t.Fatalf("job: %d %v", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body["state"] != "done" || body["records_produced"] != float64(2) {
		t.Fatalf("done job: %v", body)
	}
	code, body, _ = call(t, "POST", base+"/v1/files?name=again.csv", csv)
	if e, _ := body["error"].(map[string]any); code != http.StatusConflict || e["job"] != strings.TrimPrefix(loc, "/v1/jobs/") {
		t.Fatalf("duplicate: %d %v", code, body)
	}
	code, body, _ = call(t, "POST", base+"/v1/records/products", `{"sku":"c","name":"Cleo"}`+"\n"+`{"sku":"d"}`)
	if code != http.StatusAccepted || body["accepted"] != float64(2) {
		t.Fatalf("records: %d %v", code, body)
	}
	code, body, _ = call(t, "POST", base+"/v1/records/products", `{"sku":"e"}`+"\n"+`{"name":"no sku"}`)
	if e, _ := body["error"].(map[string]any); code != http.StatusBadRequest || !strings.Contains(toJSON(e), `"line": 2`) {
		t.Fatalf("bad records: %d %v", code, body)
	}
	st.WaitCount(t, "SELECT count() FROM skuflow.products FINAL WHERE sku IN ('a', 'b', 'c', 'd')", 4, time.Minute)
	if n := st.Count(t, "SELECT count() FROM skuflow.products WHERE sku = 'e'"); n != 0 {
		t.Fatalf("a record of a refused request was produced")
	}
}

func toJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// A job's rejected records come a page at a time, each page after the
// cursor of the one before, every record once.
func TestJobErrorsPaged(t *testing.T) {
	st := testenv.NewStack(t)
	base, _ := st.API(t)
	var b strings.Builder
	for i := range 25 {
		if i%5 == 0 {
			b.WriteString(`{"sku":"ok` + string(rune('a'+i)) + `"}` + "\n")
		} else {
			b.WriteString(`{"name":"no sku"}` + "\n")
		}
	}
	code, body, _ := call(t, "POST", base+"/v1/files?name=bad.ndjson", b.String())
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %v", code, body)
	}
	id := body["id"].(string)
	st.WaitCount(t, "SELECT count() FROM skuflow.ingest_errors WHERE job = '"+id+"'", 20, time.Minute)
	seen := map[float64]bool{}
	next := ""
	for pages := 0; ; pages++ {
		url := base + "/v1/jobs/" + id + "/errors?limit=7"
		if next != "" {
			url += "&after=" + next
		}
		code, body, _ := call(t, "GET", url, "")
		if code != http.StatusOK || body["total"] != float64(20) {
			t.Fatalf("errors page %d: %d %v", pages, code, body)
		}
		for _, e := range body["errors"].([]any) {
			line := e.(map[string]any)["line"].(float64)
			if seen[line] {
				t.Fatalf("line %v on two pages", line)
			}
			seen[line] = true
		}
		n, _ := body["next"].(string)
		if n == "" {
			break
		}
		next = n
	}
	if len(seen) != 20 {
		t.Fatalf("%d rejected records seen, want 20", len(seen))
	}
	if code, _, _ := call(t, "GET", base+"/v1/jobs/"+id+"/errors?after=!!", ""); code != http.StatusBadRequest {
		t.Fatalf("a bad cursor: %d", code)
	}
}

// Without tokens, loopback is the credential: a request a web page of
// another site made (its Origin, or Sec-Fetch-Site), or one to a host name
// that only resolves here (DNS rebinding), is refused, so that no site the
// operator visits can post records or read them. The API's own page, and
// curl, get through.
func TestCrossSiteRefused(t *testing.T) {
	st := testenv.NewStack(t)
	base, _ := st.API(t)
	do := func(headers map[string]string, host string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/records/products", strings.NewReader(`{"sku":"x"}`))
		req.Header.Set("Content-Type", "text/plain")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	own := strings.TrimPrefix(base, "http://")
	for _, c := range []struct {
		name    string
		headers map[string]string
		host    string
		want    int
	}{
		{"curl", nil, "", http.StatusAccepted},
		{"the API's own page", map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}, "", http.StatusAccepted},
		{"another site's page", map[string]string{"Origin": "https://evil.example"}, "", http.StatusForbidden},
		{"another site, by fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", http.StatusForbidden},
		{"a page on another port here", map[string]string{"Origin": "http://127.0.0.1:1"}, "", http.StatusForbidden},
		{"DNS rebinding", nil, "evil.example:" + strings.Split(own, ":")[1], http.StatusForbidden},
		{"localhost", nil, "localhost:" + strings.Split(own, ":")[1], http.StatusAccepted},
	} {
		if got := do(c.headers, c.host); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// The size cap holds for a whole multipart body, a field before the file
// too; and files an earlier run left in the spool are removed at start.
func TestUploadLimitsAndSpool(t *testing.T) {
	st := testenv.NewStack(t)
	spool := t.TempDir()
	left := spool + "/upload-123456"
	if err := os.WriteFile(left, []byte("left by a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _ := st.API(t, "SKUFLOW_API_MAX_UPLOAD_BYTES=64KiB", "SKUFLOW_API_SPOOL_DIR="+spool)
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("a leftover spool file is still there: %v", err)
	}
	var b strings.Builder
	b.WriteString("--XX\r\nContent-Disposition: form-data; name=\"pad\"\r\n\r\n")
	b.WriteString(strings.Repeat("p", 1<<20))
	b.WriteString("\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nsku\na\r\n--XX--\r\n")
	req, _ := http.NewRequest("POST", base+"/v1/files", strings.NewReader(b.String()))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=XX")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 1 MiB field before a small file, cap 64 KiB: %d", resp.StatusCode)
	}
}

// A token goes in the Authorization header (any case of "Bearer"); only
// the feed, which browsers cannot give headers, takes it from the URL, so
// tokens stay out of the URLs of every other route (and their logs).
func TestTokenOnlyInHeaderButFeed(t *testing.T) {
	st := testenv.NewStack(t)
	cfg, _, reader := tokens(t, st)
	st.Env = append(st.Env, "SKUFLOW_CONFIG="+cfg)
	base, _ := st.API(t)
	get := func(url, auth string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(base+"/v1/jobs?access_token="+reader, ""); got != http.StatusUnauthorized {
		t.Fatalf("a token in the URL of /v1/jobs: %d, want 401", got)
	}
	if got := get(base+"/v1/jobs", "bearer "+reader); got != http.StatusOK {
		t.Fatalf("a lower-case bearer: %d, want 200", got)
	}
	if got := get(base+"/v1/feed?access_token="+reader, ""); got != http.StatusUpgradeRequired {
		t.Fatalf("the feed with a token in the URL, without upgrading: %d, want 426 (past auth)", got)
	}
}

// At most api.max_uploads uploads are received or pushed at once: the
// spool's disk is bounded, and one more gets 503 with Retry-After.
func TestUploadsBounded(t *testing.T) {
	st := testenv.NewStack(t)
	spool := t.TempDir()
	base, _ := st.API(t, "SKUFLOW_API_MAX_UPLOADS=1", "SKUFLOW_API_SPOOL_DIR="+spool)
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(base+"/v1/files?name=slow.csv", "text/csv", pr)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("sku,name\n")); err != nil {
		t.Fatal(err)
	}
	// The first holds the one slot while its body arrives: the handler
	// takes the slot first thing, and then makes its spool file.
	deadline := time.Now().Add(time.Minute)
	for {
		if names, _ := filepath.Glob(filepath.Join(spool, "upload-*")); len(names) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first upload made no spool file within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, _, hdr := call(t, "POST", base+"/v1/files?name=second.csv", "sku\nb\n")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("a second upload while one holds the only slot: %d (Retry-After %q)", code, hdr.Get("Retry-After"))
	}
	pw.Write([]byte("a,Anna\n"))
	pw.Close()
	if c := <-first; c != http.StatusAccepted {
		t.Fatalf("the first upload: %d", c)
	}
}
