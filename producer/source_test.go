package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"http://user:pass@host/f.json?X-Amz-Signature=abc&X-Amz-Date=1", "http://REDACTED@host/f.json?X-Amz-Signature=REDACTED&X-Amz-Date=REDACTED"},
		{"https://tok@host:8443/a/b.csv.gz", "https://REDACTED@host:8443/a/b.csv.gz"},
		{"HTTPS://host/x.ndjson?sig=a%2Fb&&bare#access_token=t", "https://host/x.ndjson?sig=REDACTED&&REDACTED#REDACTED"},
		{"http://host/plain.json", "http://host/plain.json"},
		{"http://host/empty?", "http://host/empty?"},
		{"http://u:p@host/%zz?sig=s", "http://REDACTED"},
		{"/data/in.json", "/data/in.json"},
		{"-", "-"},
		{"ftp://u:p@host/f", "ftp://u:p@host/f"},
	} {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A URL that cannot be fetched fails with an error that names it without
// its credentials.
func TestURLSourceErrorsRedacted(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, raw := range []string{
		"http://me:hunter2secret@" + addr + "/f.json?sig=hunter2secret",
		"http://me:hunter2secret@[::1/f.json?sig=hunter2secret",
	} {
		srcs, err := Sources([]string{raw}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(srcs[0].Name, "hunter2") {
			t.Errorf("name %q holds the secret", srcs[0].Name)
		}
		_, err = Open(context.Background(), srcs[0], FormatAuto)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("open %s: %v", srcs[0].Name, err)
		}
		var oe *net.OpError
		if strings.Contains(raw, addr) && !errors.As(err, &oe) {
			t.Errorf("open %s: %v does not wrap the dial error", srcs[0].Name, err)
		}
	}
}

// A .json file of NDJSON is read as NDJSON whatever the size of its first
// record, up to MaxRecordBytes; a document on one long line stays JSON.
func TestOpenDetectsNDJSONWithLongFirstRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := `{"sku":"big","description":"` + strings.Repeat("x", 100<<10) + `"}`
	for _, tt := range []struct {
		name, data string
		want       Format
		records    int
	}{
		{"ndjson.json", long + "\n" + `{"sku":"b"}` + "\n" + `{"sku":"c"}` + "\n", FormatNDJSON, 3},
		{"crlf.json", long + "\r\n\r\n  " + `{"sku":"b"}` + "\r\n", FormatNDJSON, 2},
		{"short.json", `{"sku":"a"}` + "\n" + `{"sku":"b"}` + "\n", FormatNDJSON, 2},
		{"one.json", long + "\n", FormatJSON, 1},
		{"array.json", "[" + long + ",\n" + `{"sku":"b"}` + "]\n", FormatJSON, 2},
		{"pretty.json", "{\n  \"sku\": \"a\"\n}\n", FormatJSON, 1},
		{"noext", long + "\n" + `{"sku":"b"}` + "\n", FormatNDJSON, 2},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := FileSource(path, "")
		if err != nil {
			t.Fatal(err)
		}
		in, err := Open(context.Background(), src, FormatAuto)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if in.Format != tt.want {
			t.Errorf("%s: format %q, want %q", tt.name, in.Format, tt.want)
		}
		var r Reader = NewJSONReader(in, ReaderOptions{KeyFields: []string{"sku"}})
		if in.Format == FormatNDJSON {
			r = NewNDJSONReader(in, ReaderOptions{KeyFields: []string{"sku"}})
		}
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("%s: record %d: %v", tt.name, n+1, err)
				break
			}
			n++
		}
		in.Close()
		if n != tt.records {
			t.Errorf("%s: %d records, want %d", tt.name, n, tt.records)
		}
	}
}

// A URL that stalls, answers late or sends too much fails with the reason,
// within the limits it was given.
func TestURLLimits(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := func() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		switch r.URL.Path {
		case "/stall.ndjson":
			w.Write([]byte(`{"sku":"a"}` + "\n" + `{"sku":"b"}` + "\n" + `{"sk`))
			w.(http.Flusher).Flush()
			wait()
		case "/stall-sniff.json":
			w.Write([]byte(`{"sku":"a"}`))
			w.(http.Flusher).Flush()
			wait()
		case "/late.ndjson":
			wait()
		case "/big.ndjson", "/big-chunked.ndjson":
			data := []byte(strings.Repeat(`{"sku":"x"}`+"\n", 1000))
			if r.URL.Path == "/big.ndjson" {
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			}
			w.Write(data)
		}
	}))
	defer srv.Close()
	lim := URLLimits{HeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, MaxBytes: 5000}
	for _, tt := range []struct {
		path    string
		records int
		want    string
	}{
		{"/stall.ndjson", 2, "no data from " + srv.URL + "/stall.ndjson for 300ms (loader.url_idle_timeout)"},
		{"/stall-sniff.json", 0, "no data from " + srv.URL + "/stall-sniff.json for 300ms (loader.url_idle_timeout)"},
		{"/late.ndjson", 0, "no response from " + srv.URL + "/late.ndjson within 300ms (loader.url_header_timeout)"},
		{"/big.ndjson", 0, "12000 bytes, more than the limit of 5000: over loader.url_max_bytes"},
		{"/big-chunked.ndjson", 416, "more than 5000 bytes: over loader.url_max_bytes"},
	} {
		srcs, err := Sources([]string{srv.URL + tt.path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		n, err := readAll(t, srcs[0], lim)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: took %s", tt.path, took)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || n != tt.records {
			t.Errorf("%s: %d records, error %v; want %d records, then %q", tt.path, n, err, tt.records, tt.want)
		}
	}
}

// readAll opens src within lim and reads its records; it returns how many
// it read and the error that ended it (nil at the end).
func readAll(t *testing.T, src Source, lim URLLimits) (int, error) {
	t.Helper()
	in, err := open(context.Background(), src, openOptions{url: lim})
	if err != nil {
		return 0, err
	}
	defer in.Close()
	var r Reader = NewJSONReader(in, ReaderOptions{})
	if in.Format == FormatNDJSON {
		r = NewNDJSONReader(in, ReaderOptions{})
	}
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			return n, nil
		}
		var re *RecordError
		if err != nil && !errors.As(err, &re) {
			return n, err
		}
		n++
	}
}
