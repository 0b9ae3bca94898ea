package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"skuflow/config"
	"skuflow/internal/testenv"
)

// tokens makes a writer (read, write) and a reader (read) token with
// `loader token create`, and writes the entries it prints, as printed, into
// a configuration file. It returns the file and the tokens.
func tokens(t *testing.T, st *testenv.Stack) (path, writer, reader string) {
	t.Helper()
	var entries []string
	toks := map[string]string{}
	for _, c := range []struct{ name, scope string }{{"writer", "read,write"}, {"reader", "read"}} {
		out, stderr, err := st.Loader(t, "token", "create", c.name, "--scope", c.scope)
		if err != nil {
			t.Fatalf("loader token create: %v\n%s", err, stderr)
		}
		_, entry, ok := strings.Cut(out, "api:\n  tokens:\n")
		for _, line := range strings.Split(out, "\n") {
			if s := strings.TrimSpace(line); strings.HasPrefix(s, "skf_") {
				toks[c.name] = s
			}
		}
		if !ok || toks[c.name] == "" {
			t.Fatalf("loader token create printed no token or entry:\n%s", out)
		}
		entries = append(entries, entry)
	}
	path = filepath.Join(t.TempDir(), "skuflow.yaml")
	if err := os.WriteFile(path, []byte("api:\n  tokens:\n"+strings.Join(entries, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, toks["writer"], toks["reader"]
}

// waitJob polls a job until its answer is no longer 425, checking each
// 425 on the way; it returns the last answer.
func waitJob(t *testing.T, c *client, loc string, timeout time.Duration) answer {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		a := c.call(t, "GET", loc, "", nil)
		if a.Status != http.StatusTooEarly {
			return a
		}
		if n, err := strconv.Atoi(a.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Fatalf("425 without a Retry-After in seconds: %q", a.Header.Get("Retry-After"))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still 425 after %s: %s", loc, timeout, a)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// productsCSV returns a CSV of n products whose skus start with prefix.
func productsCSV(prefix string, n int) []byte {
	var b bytes.Buffer
	b.WriteString("sku,name,description\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%d,name %d,a product\n", prefix, i, i%7)
	}
	return b.Bytes()
}

// Every status the API answers, against the real stack, each response held
// against the OpenAPI document by the client.
func TestStatuses(t *testing.T) {
	st := testenv.NewStack(t)
	cfgPath, writer, reader := tokens(t, st)
	base, _ := st.API(t, "SKUFLOW_CONFIG="+cfgPath)
	w, r, anon := newClient(base, writer), newClient(base, reader), newClient(base, "")
	doc, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	top := t

	t.Run("healthz, readyz and the document need no token", func(t *testing.T) {
		if a := anon.call(t, "GET", "/healthz", "", nil); a.Status != http.StatusOK {
			t.Errorf("healthz: %s", a)
		}
		if a := anon.call(t, "GET", "/readyz", "", nil); a.Status != http.StatusOK || a.JSON()["ready"] != true {
			t.Errorf("readyz: %s", a)
		}
		if a := anon.call(t, "GET", "/v1/openapi.json", "", nil); a.Status != http.StatusOK || a.JSON()["openapi"] != "3.0.3" {
			t.Errorf("openapi.json: %d", a.Status)
		}
	})

	// Before any consumer runs, a job cannot be done: the first answers
	// are 425 for sure, and the job reaches produced with each group's
	// progress; once the services start it is done.
	var jobID string
	csv := productsCSV("u", 3)
	t.Run("202 for an upload, 425 while it loads, then 200", func(t *testing.T) {
		a := w.call(t, "POST", "/v1/files?name=first.csv", "text/csv", csv)
		loc := a.Header.Get("Location")
		if a.Status != http.StatusAccepted || !strings.HasPrefix(loc, "/v1/jobs/") {
			t.Fatalf("upload: %s", a)
		}
		jobID = strings.TrimPrefix(loc, "/v1/jobs/")
		if a.JSON()["id"] != jobID || a.JSON()["source"] != "first.csv" {
			t.Fatalf("upload answered another job than Location names: %s", a)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			a = r.call(t, "GET", loc, "", nil)
			if a.Status != http.StatusTooEarly {
				t.Fatalf("a job no consumer has read: %s", a)
			}
			if p, _ := a.JSON()["progress"].([]any); a.JSON()["state"] == "produced" && len(p) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job not produced with progress after a minute: %s", a)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The services belong to the whole test, not this step of it.
		st.Service(top, "processor")
		st.Service(top, "aggregator")
		a = waitJob(t, r, loc, 2*time.Minute)
		if j := a.JSON(); a.Status != http.StatusOK || j["state"] != "done" || j["records_produced"] != float64(3) {
			t.Fatalf("done job: %s", a)
		}
	})

	t.Run("409 names the earlier job", func(t *testing.T) {
		if jobID == "" {
			t.Skip("no first job")
		}
		a := w.call(t, "POST", "/v1/files?name=again.csv", "text/csv", csv)
		if a.Status != http.StatusConflict || a.Err()["code"] != "duplicate" || a.Err()["job"] != jobID {
			t.Fatalf("same content again: %s", a)
		}
	})

	t.Run("202 for a multipart upload, as the page sends it", func(t *testing.T) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		part, _ := mw.CreateFormFile("file", "from-page.csv")
		part.Write(productsCSV("m", 2))
		mw.Close()
		a := w.call(t, "POST", "/v1/files", mw.FormDataContentType(), body.Bytes())
		if a.Status != http.StatusAccepted || a.JSON()["source"] != "from-page.csv" {
			t.Fatalf("multipart upload: %s", a)
		}
		if a = waitJob(t, r, a.Header.Get("Location"), 2*time.Minute); a.Status != http.StatusOK {
			t.Fatalf("multipart job: %s", a)
		}
	})

	t.Run("202 for records, with where each went", func(t *testing.T) {
		a := w.call(t, "POST", "/v1/records/products", "application/x-ndjson", []byte(`{"sku":"r1","name":"Rita"}`+"\n"+`{"sku":"r2","name":"Rolf"}`+"\n"))
		recs, _ := a.JSON()["records"].([]any)
		if a.Status != http.StatusAccepted || a.JSON()["accepted"] != float64(2) || len(recs) != 2 {
			t.Fatalf("records: %s", a)
		}
		a = w.call(t, "POST", "/v1/records/products", "application/json", []byte(`{"sku":"r3","name":"Rosa"}`))
		if a.Status != http.StatusAccepted || a.JSON()["accepted"] != float64(1) {
			t.Fatalf("one record: %s", a)
		}
		st.WaitCount(t, "SELECT count() FROM skuflow.products FINAL WHERE sku IN ('r1', 'r2', 'r3')", 3, time.Minute)
	})

	// The listings, the types, the feed and the page: their answers, too,
	// are what the document says.
	t.Run("200, 400 and 404 of the listings, 426 of the feed, and the page", func(t *testing.T) {
		a := r.call(t, "GET", "/v1/records/products?limit=2", "", nil)
		rows, _ := a.JSON()["rows"].([]any)
		next, _ := a.JSON()["next"].(string)
		if a.Status != http.StatusOK || len(rows) != 2 || next == "" {
			t.Fatalf("first page of products: %s", a)
		}
		if a = r.call(t, "GET", "/v1/records/products?limit=1000&after="+url.QueryEscape(next), "", nil); a.Status != http.StatusOK {
			t.Errorf("next page: %s", a)
		}
		for _, c := range []struct {
			path   string
			status int
		}{
			{"/v1/records/products/r1", http.StatusOK},
			{"/v1/aggregates/products_agg", http.StatusOK},
			{"/v1/types", http.StatusOK},
			{"/v1/records/products/no-such-sku", http.StatusNotFound},
			{"/v1/records/nosuchtype", http.StatusNotFound},
			{"/v1/aggregates/nosuchaggregate", http.StatusNotFound},
			{"/v1/records/products?after=not-a-cursor", http.StatusBadRequest},
			{"/v1/records/products?limit=0", http.StatusBadRequest},
			{"/v1/feed", http.StatusUpgradeRequired},
		} {
			if a := r.call(t, "GET", c.path, "", nil); a.Status != c.status {
				t.Errorf("GET %s: %s, want %d", c.path, a, c.status)
			}
		}
		if a := anon.call(t, "GET", "/", "", nil); a.Status != http.StatusOK || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/html") {
			t.Errorf("the page: %d %s", a.Status, a.Header.Get("Content-Type"))
		}
	})

	t.Run("400 names the line and field of each bad record, and takes none", func(t *testing.T) {
		body := `{"sku":"b1","name":"fine"}` + "\n" + `{"name":"no sku"}` + "\n" + `{"sku":"b3","name":` + "\n"
		a := w.call(t, "POST", "/v1/records/products", "application/x-ndjson", []byte(body))
		recs, _ := a.Err()["records"].([]any)
		if a.Status != http.StatusBadRequest || a.Err()["code"] != "invalid_records" || len(recs) != 2 {
			t.Fatalf("bad records: %s", a)
		}
		first, _ := recs[0].(map[string]any)
		second, _ := recs[1].(map[string]any)
		if first["line"] != float64(2) || first["field"] != "sku" || first["reason"] == "" {
			t.Errorf("the record without a sku: %v", first)
		}
		if second["line"] != float64(3) || second["reason"] == "" {
			t.Errorf("the broken line: %v", second)
		}
		time.Sleep(time.Second) // what was wrongly produced would land in this time
		if n := st.Count(t, "SELECT count() FROM skuflow.products WHERE sku = 'b1'"); n != 0 {
			t.Fatal("a good record of a refused request was produced")
		}
	})

	t.Run("401 without a token or with an unknown one, on every secured operation", func(t *testing.T) {
		for _, o := range operations(t) {
			if !o.secured(doc) {
				continue
			}
			for _, c := range []*client{anon, w.as("skf_" + strings.Repeat("0", 48)), w.as(writer + "x")} {
				a := c.call(t, o.method, o.url(), "application/json", []byte(`{"sku":"no"}`))
				if a.Status != http.StatusUnauthorized || a.Err()["code"] != "unauthorized" || !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s with token %q: %s", o.method, o.url(), c.token, a)
				}
			}
		}
	})

	// Invariant 7: a read token can do nothing that writes, whatever the
	// route; the document's x-required-scope says which those are, and
	// TestOpenAPIDocumentsEveryRoute holds it to the handlers.
	t.Run("403 for a read token on every write operation, and nothing written", func(t *testing.T) {
		jobsBefore := st.Count(t, "SELECT count() FROM skuflow.ingest_jobs")
		writes := 0
		for _, o := range operations(t) {
			if o.scope() != config.ScopeWrite {
				continue
			}
			writes++
			for _, body := range [][]byte{[]byte(`{"sku":"ro1","name":"read only"}`), productsCSV("ro", 2)} {
				a := r.call(t, o.method, o.url(), "text/csv", body)
				if a.Status != http.StatusForbidden || a.Err()["code"] != "forbidden" || !strings.Contains(a.Err()["message"].(string), "reader") {
					t.Errorf("%s %s with a read token: %s", o.method, o.url(), a)
				}
			}
		}
		if writes < 2 {
			t.Fatalf("the document has %d write operations; POST /v1/files and POST /v1/records/{type} at least", writes)
		}
		time.Sleep(time.Second)
		if n := st.Count(t, "SELECT count() FROM skuflow.products WHERE sku LIKE 'ro%'"); n != 0 {
			t.Errorf("%d records of refused requests were produced", n)
		}
		if n := st.Count(t, "SELECT count() FROM skuflow.ingest_jobs"); n != jobsBefore {
			t.Errorf("a refused upload made a job (%d jobs, %d before)", n, jobsBefore)
		}
		// The read token reads.
		if a := r.call(t, "GET", "/v1/jobs?limit=1", "", nil); a.Status != http.StatusOK {
			t.Errorf("GET /v1/jobs with a read token: %s", a)
		}
	})

	t.Run("200 for the job list and a job's errors", func(t *testing.T) {
		a := r.call(t, "GET", "/v1/jobs?limit=1", "", nil)
		list, _ := a.JSON()["jobs"].([]any)
		if a.Status != http.StatusOK || len(list) != 1 || a.JSON()["next"] == nil {
			t.Fatalf("first page of jobs: %s", a)
		}
		a = r.call(t, "GET", "/v1/jobs?state=done&type=products&limit=1000", "", nil)
		if list, _ := a.JSON()["jobs"].([]any); a.Status != http.StatusOK || len(list) < 2 {
			t.Fatalf("done jobs: %s", a)
		}
		if a := r.call(t, "GET", "/v1/jobs?limit=0", "", nil); a.Status != http.StatusBadRequest {
			t.Errorf("limit 0: %s", a)
		}
		if a := r.call(t, "GET", "/v1/jobs/"+jobID+"/errors", "", nil); a.Status != http.StatusOK || a.JSON()["total"] != float64(0) {
			t.Errorf("errors of a clean job: %s", a)
		}
	})

	t.Run("404 for an unknown job or type", func(t *testing.T) {
		for _, c := range []struct{ method, path, code string }{
			{"GET", "/v1/jobs/20200101T000000Z-000000000000", "not_found"},
			{"GET", "/v1/jobs/not-a-job", "not_found"},
			{"GET", "/v1/jobs/20200101T000000Z-000000000000/errors", "not_found"},
			{"POST", "/v1/records/nosuchtype", "unknown_type"},
			{"POST", "/v1/files?type=nosuchtype", "unknown_type"},
		} {
			a := w.call(t, c.method, c.path, "application/json", []byte(`{"sku":"x"}`))
			if a.Status != http.StatusNotFound || a.Err()["code"] != c.code {
				t.Errorf("%s %s: %s", c.method, c.path, a)
			}
		}
	})

	t.Run("415 for content no reader takes", func(t *testing.T) {
		png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 64)...)
		noise := make([]byte, 8192)
		rand.Read(noise)
		for name, body := range map[string][]byte{"a.png": png, "noise.bin": noise} {
			a := w.call(t, "POST", "/v1/files?name="+name, "application/octet-stream", body)
			if a.Status != http.StatusUnsupportedMediaType || a.Err()["code"] != "unsupported" {
				t.Errorf("%s: %s", name, a)
			}
		}
	})

	// A JSON array whose syntax breaks past the reader's first look: the
	// upload is taken and its job starts, then the push fails.
	t.Run("422 for a failed job", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("[\n")
		for i := range 2000 {
			fmt.Fprintf(&b, `{"sku":"f-%d","name":"fails later"},`+"\n", i)
		}
		b.WriteString(`{"sku":"f-broken","name": ]` + "\n")
		a := w.call(t, "POST", "/v1/files?name=broken.json", "application/json", b.Bytes())
		if a.Status != http.StatusAccepted {
			t.Fatalf("upload of a file that breaks late: %s", a)
		}
		id := a.JSON()["id"]
		a = waitJob(t, r, a.Header.Get("Location"), time.Minute)
		if a.Status != http.StatusUnprocessableEntity || a.Err()["code"] != "job_failed" || a.Err()["job"] != id ||
			a.JSON()["state"] != "failed" || a.Err()["message"] == "" {
			t.Fatalf("failed job: %s", a)
		}
		t.Logf("failed job: %s", a.Err()["message"])
		// A failed job does not block the same content.
		a = w.call(t, "POST", "/v1/files?name=broken-again.json", "application/json", b.Bytes())
		if a.Status != http.StatusAccepted {
			t.Fatalf("the same content after a failed job: %s", a)
		}
		waitJob(t, r, a.Header.Get("Location"), time.Minute)
	})

	t.Run("413 past the upload cap, the body cap and max_records", func(t *testing.T) {
		small, _ := st.API(t, "SKUFLOW_CONFIG="+cfgPath, "SKUFLOW_API_MAX_UPLOAD_BYTES=64KiB",
			"SKUFLOW_API_MAX_RECORDS=5", "SKUFLOW_API_MAX_RECORDS_BODY=2KiB")
		sw := newClient(small, writer)
		big := productsCSV("big", 4000) // about 100KB
		a := sw.call(t, "POST", "/v1/files?name=big.csv", "text/csv", big)
		if a.Status != http.StatusRequestEntityTooLarge || a.Err()["code"] != "too_large" || !strings.Contains(a.Err()["message"].(string), "max_upload_bytes") {
			t.Errorf("upload past the cap: %s", a)
		}
		ndjson := func(n int) []byte {
			var b bytes.Buffer
			for i := range n {
				fmt.Fprintf(&b, `{"sku":"six-%d"}`+"\n", i)
			}
			return b.Bytes()
		}
		a = sw.call(t, "POST", "/v1/records/products", "application/x-ndjson", ndjson(6))
		if a.Status != http.StatusRequestEntityTooLarge || a.Err()["code"] != "too_many_records" {
			t.Errorf("6 records past max_records 5: %s", a)
		}
		a = sw.call(t, "POST", "/v1/records/products", "application/json", []byte(`{"sku":"long","name":"`+strings.Repeat("x", 3000)+`"}`))
		if a.Status != http.StatusRequestEntityTooLarge || a.Err()["code"] != "too_large" {
			t.Errorf("a body past max_records_body: %s", a)
		}
		// Just under the caps is taken.
		a = sw.call(t, "POST", "/v1/records/products", "application/x-ndjson", ndjson(5))
		if a.Status != http.StatusAccepted || a.JSON()["accepted"] != float64(5) {
			t.Errorf("5 records: %s", a)
		}
		time.Sleep(time.Second)
		if n := st.Count(t, "SELECT count() FROM skuflow.products WHERE sku LIKE 'big-%' OR sku = 'six-5' OR sku = 'long'"); n != 0 {
			t.Errorf("%d records of refused requests were produced", n)
		}
	})

	t.Run("429 past a token's rate, with Retry-After; other tokens go on", func(t *testing.T) {
		slow, _ := st.API(t, "SKUFLOW_CONFIG="+cfgPath, "SKUFLOW_API_RATE_LIMIT=0.2", "SKUFLOW_API_RATE_BURST=2")
		sw, sr := newClient(slow, writer), newClient(slow, reader)
		var last answer
		for range 3 {
			last = sw.call(t, "GET", "/v1/jobs?limit=1", "", nil)
		}
		n, err := strconv.Atoi(last.Header.Get("Retry-After"))
		if last.Status != http.StatusTooManyRequests || last.Err()["code"] != "rate_limited" || err != nil || n < 1 || n > 5 {
			t.Fatalf("third request at 0.2/s, burst 2: %s, Retry-After %q", last, last.Header.Get("Retry-After"))
		}
		if a := sw.call(t, "POST", "/v1/records/products", "application/json", []byte(`{"sku":"limited"}`)); a.Status != http.StatusTooManyRequests {
			t.Errorf("a write past the rate: %s", a)
		}
		if a := sr.call(t, "GET", "/v1/jobs?limit=1", "", nil); a.Status != http.StatusOK {
			t.Errorf("another token: %s", a)
		}
	})

	// Last: it stops the broker.
	t.Run("503 while Kafka is down", func(t *testing.T) {
		st.Broker.Stop(t)
		began := time.Now()
		a := w.call(t, "POST", "/v1/records/products", "application/json", []byte(`{"sku":"down","name":"no broker"}`))
		t.Logf("POST /v1/records without a broker answered %d after %s", a.Status, time.Since(began).Round(time.Millisecond))
		if a.Status != http.StatusServiceUnavailable || a.Err()["code"] != "unavailable" {
			t.Errorf("records without a broker: %s", a)
		}
		began = time.Now()
		a = anon.call(t, "GET", "/readyz", "", nil)
		t.Logf("GET /readyz without a broker answered %d after %s", a.Status, time.Since(began).Round(time.Millisecond))
		checks, _ := a.JSON()["checks"].(map[string]any)
		if a.Status != http.StatusServiceUnavailable || a.JSON()["ready"] != false || checks["clickhouse"] != "ok" || checks["kafka products"] == "ok" {
			t.Errorf("readyz without a broker: %s", a)
		}
		began = time.Now()
		a = w.call(t, "POST", "/v1/files?name=down.csv", "text/csv", productsCSV("down", 2))
		t.Logf("POST /v1/files without a broker answered %d after %s", a.Status, time.Since(began).Round(time.Millisecond))
		if a.Status != http.StatusServiceUnavailable || a.Err()["code"] != "unavailable" {
			t.Errorf("upload without a broker: %s", a)
		}
	})
}

// Invariant 7: the API never listens beyond loopback without tokens. The
// configuration refuses it, naming api.addr, and the real binary exits
// instead of listening.
func TestBeyondLoopbackNeedsTokens(t *testing.T) {
	sum := tokenSum("skf_test")
	for _, c := range []struct {
		addr   string
		tokens bool
		ok     bool
	}{
		{"127.0.0.1:18080", false, true},
		{"127.9.9.9:18080", false, true},
		{"localhost:18080", false, true},
		{"[::1]:18080", false, true},
		{"0.0.0.0:18080", false, false},
		{":18080", false, false}, // every interface
		{"[::]:18080", false, false},
		{"192.0.2.10:18080", false, false},
		{"[::ffff:0.0.0.0]:18080", false, false},
		{"api.example.com:18080", false, false}, // a name might be anything but loopback
		{"localhost.example.com:18080", false, false},
		{"0.0.0.0:18080", true, true},
		{":18080", true, true},
	} {
		cfg := config.Default()
		cfg.API.Addr = c.addr
		if c.tokens {
			cfg.API.Tokens = []config.Token{{Name: "t", SHA256: sum, Scopes: []string{config.ScopeRead}}}
		}
		err := cfg.Validate()
		switch {
		case c.ok && err != nil:
			t.Errorf("addr %s, tokens %v: %v", c.addr, c.tokens, err)
		case !c.ok && (err == nil || !config.IsKeyError(err, "api.addr") || !strings.Contains(err.Error(), "api.addr")):
			t.Errorf("addr %s without tokens: %v, want an error naming api.addr", c.addr, err)
		}
	}

	// The binary, configured by environment and by file (tokens: [] said
	// outright): it exits with the reason, and nothing listens.
	port := testenv.FreePort(t)
	file := filepath.Join(t.TempDir(), "skuflow.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf("api:\n  addr: 0.0.0.0:%d\n  tokens: []\n", port)), 0o600)
	for name, env := range map[string][]string{
		"env":  {fmt.Sprintf("SKUFLOW_API_ADDR=0.0.0.0:%d", port)},
		"file": {"SKUFLOW_CONFIG=" + file},
		"all":  {fmt.Sprintf("SKUFLOW_API_ADDR=:%d", port)},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, testenv.BuildBinary(t, "api"))
		cmd.Dir = t.TempDir()
		cmd.Env = append(withoutSkuflow(os.Environ()), env...)
		out, err := cmd.CombinedOutput()
		ran := ctx.Err() != nil // it was still running when the timeout killed it
		cancel()
		if ran {
			t.Errorf("%s: the API ran beyond loopback without tokens:\n%s", name, out)
			continue
		}
		if err == nil || !strings.Contains(string(out), "api.addr") || !strings.Contains(string(out), "api.tokens is empty") {
			t.Errorf("%s: exit %v, want a refusal naming api.addr:\n%s", name, err, out)
		}
		if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			conn.Close()
			t.Errorf("%s: something listens on %d", name, port)
		}
	}
}

func withoutSkuflow(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, config.EnvPrefix+"_") {
			out = append(out, kv)
		}
	}
	return out
}
