package main_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// Invariant 7: a URL's user info, query values and fragment reach no
// header, table, log or summary. The URL is pushed through the real loader
// from a server that demands basic auth, the processor loads it, and every
// place the source is named is searched for the secrets.
func TestPushURLCredentialsRedacted(t *testing.T) {
	const (
		user, pass = "alice", "pa55-secret-word"
		sig        = "deadbeefsignature0123"
		cred       = "AKIAEXAMPLECREDENTIAL"
	)
	secrets := []string{pass, sig, cred, "frag-token-99"}
	body := `{"sku":"u1","name":"One"}` + "\n" + `{"name":"no sku"}` + "\n" + `{"sku":"u2","name":"Two"}` + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/dir/products.ndjson" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	query := "?X-Amz-Signature=" + sig + "&X-Amz-Credential=" + cred
	good := "http://" + user + ":" + pass + "@" + host + "/dir/products.ndjson" + query + "#frag-token-99"
	missing := "http://" + user + ":" + pass + "@" + host + "/dir/gone.ndjson" + query
	// A port nothing listens on: the HTTP client's own error names the URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + user + ":" + pass + "@" + ln.Addr().String() + "/f.ndjson" + query
	ln.Close()

	st := testenv.NewStack(t)
	st.Service(t, "processor")
	noSecret := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q:\n%s", where, s, text)
			}
		}
	}

	out, stderr, code := run(t, st.Env, nil, "push", "--no-progress", good)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s\n%s", code, out, stderr)
	}
	noSecret("push's stderr", stderr)
	noSecret("push's stdout", out)
	want := "http://REDACTED@" + host + "/dir/products.ndjson?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED#REDACTED"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not name the source as %s:\n%s", want, stderr)
	}
	// The JSON summary, and the failures of the other two URLs.
	for _, u := range []string{good, missing, closed} {
		out, stderr, _ := run(t, st.Env, nil, "push", "--json", "--no-progress", "--force", u)
		noSecret("push --json's stdout", out)
		noSecret("push --json's stderr", stderr)
		out, stderr, _ = run(t, st.Env, nil, "push", "--no-progress", "--force", u)
		noSecret("push's stdout", out)
		noSecret("push's stderr", stderr)
	}

	recs := consume(t, st.Broker.Addr, "products")
	// The good URL was pushed three times, two valid records each.
	if len(recs) != 6 {
		t.Fatalf("topic holds %d records, want 6", len(recs))
	}
	for _, r := range recs {
		noSecret("a record's headers", r.Headers)
		if !strings.HasPrefix(r.Headers, "skuflow=") || !strings.HasSuffix(r.Headers, " "+want) {
			t.Errorf("headers %q do not name the source as %s", r.Headers, want)
		}
	}
	st.WaitCount(t, "SELECT count() FROM skuflow.products", 6, time.Minute)
	noSecret("products", st.CH.Query(t, "SELECT * FROM skuflow.products FORMAT TSV"))
	if got := st.CH.Query(t, "SELECT DISTINCT _source FROM skuflow.products"); got != want {
		t.Errorf("products._source is %q, want %q", got, want)
	}
	jobsRows := st.CH.Query(t, "SELECT * FROM skuflow.ingest_jobs FORMAT TSV")
	if strings.Count(jobsRows, want) < 2 {
		t.Errorf("ingest_jobs does not name the source as %s:\n%s", want, jobsRows)
	}
	noSecret("ingest_jobs", jobsRows)
	errRows := st.CH.Query(t, "SELECT * FROM skuflow.ingest_errors FORMAT TSV")
	if !strings.Contains(errRows, want) {
		t.Errorf("ingest_errors does not name the source as %s:\n%s", want, errRows)
	}
	noSecret("ingest_errors", errRows)
	// What the loader's other commands print about the jobs.
	out, stderr, _ = run(t, st.Env, nil, "jobs")
	noSecret("loader jobs", out+stderr)
}

// A URL whose server sends headers and part of the body, then stalls, fails
// its push (and job) with the reason once loader.url_idle_timeout passes;
// it does not hang with the job left producing.
func TestPushURLStallFailsJob(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write([]byte(`{"sku":"s1","name":"One"}` + "\n" + `{"sku":"s2","name":"Two"}` + "\n" + `{"sku":"s3","na`))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()

	st := testenv.NewStack(t)
	cmd := loaderCmd(t, append(st.Env, "SKUFLOW_LOADER_URL_IDLE_TIMEOUT=1s"), "push", "--json", "--no-progress", srv.URL+"/stall.ndjson")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		row := st.CH.Query(t, "SELECT state, error FROM skuflow.ingest_jobs FINAL")
		t.Fatalf("push of a stalled URL still running after 30s; ingest_jobs: %q\nstderr: %s", row, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"state": "failed"`) || !strings.Contains(stdout.String(), "no data from "+srv.URL+"/stall.ndjson for 1s") {
		t.Fatalf("summary: %s\nstderr: %s", stdout.String(), stderr.String())
	}
	row := st.CH.Query(t, "SELECT state, records_read, position(error, 'no data from') > 0 FROM skuflow.ingest_jobs FINAL")
	if row != "failed\t2\t1" {
		t.Fatalf("ingest_jobs: %q", row)
	}
}
