package producer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// zstdFrame returns data as one zstd frame of raw blocks whose header asks
// for a window of 1<<windowLog bytes, as `zstd --long=29` writes for a
// stream of unknown size.
func zstdFrame(data []byte, windowLog int) []byte {
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(windowLog-10) << 3}
	for len(data) > 0 || len(out) == 6 {
		n := min(len(data), 100<<10)
		hdr := uint32(n) << 3 // raw block
		if n == len(data) {
			hdr |= 1 // last
		}
		out = append(out, byte(hdr), byte(hdr>>8), byte(hdr>>16))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return out
}

// A zstd frame whose window is over the limit is refused with an error
// naming the file and the limit, before the decoder takes the memory; one
// within it reads.
func TestZstdMaxWindow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := []byte(strings.Repeat(`{"sku":"z"}`+"\n", 30000))
	for _, tt := range []struct {
		name      string
		windowLog int
		limit     int64
		want      string
	}{
		{"long29.ndjson.zst", 29, 0, "zstd frame needs a window of 512 MiB, more than loader.zstd_max_window (128 MiB)"},
		{"long27.ndjson.zst", 27, 64 << 20, "zstd frame needs a window of 128 MiB, more than loader.zstd_max_window (64 MiB)"},
		{"long27ok.ndjson.zst", 27, 0, ""},
		{"small.ndjson.zst", 20, 1 << 20, ""},
	} {
		path := filepath.Join(dir, tt.name)
		frame := zstdFrame(data, tt.windowLog)
		if err := os.WriteFile(path, frame, 0o644); err != nil {
			t.Fatal(err)
		}
		if tt.windowLog == 29 {
			// The frame is real zstd: the zstd CLI reads it, given the memory.
			if zstd, err := exec.LookPath("zstd"); err == nil {
				out, err := exec.Command(zstd, "-d", "-c", "--long=29", path).Output()
				if err != nil || !bytes.Equal(out, data) {
					t.Fatalf("zstd -d: %v (%d bytes)", err, len(out))
				}
			}
		}
		src, err := FileSource(path, "")
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		in, err := open(context.Background(), src, openOptions{zstdMaxWindow: tt.limit})
		if err == nil {
			_, err = io.Copy(io.Discard, in)
			in.Close()
		}
		runtime.ReadMemStats(&after)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and %q", tt.name, err, tt.want)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
			t.Errorf("%s: refusing it allocated %d MiB", tt.name, got>>20)
		}
	}
}

// A later frame over the limit is refused by the decoder, naming the limit.
func TestZstdMaxWindowLaterFrame(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "two.ndjson.zst")
	data := []byte(`{"sku":"z"}` + "\n")
	os.WriteFile(path, append(zstdFrame(data, 20), zstdFrame(data, 29)...), 0o644)
	src, err := FileSource(path, "")
	if err != nil {
		t.Fatal(err)
	}
	in, err := open(context.Background(), src, openOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	_, err = io.Copy(io.Discard, in)
	if !errors.Is(err, ErrZstdWindow) || !strings.Contains(err.Error(), "more than loader.zstd_max_window (128 MiB)") {
		t.Fatalf("error %v", err)
	}
}

// A read of stdin that brings nothing returns once the push's context
// ends; what stdin brings before comes through whole.
func TestStdinInterruptible(t *testing.T) {
	pr, pw := io.Pipe() // nothing closes it: a stalled producer upstream
	defer pw.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	r := interruptible(ctx, pr)
	defer r.Close()
	go pw.Write([]byte("line 1\n"))
	got := make([]byte, 7)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "line 1\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	stopped := errors.New("push interrupted")
	time.AfterFunc(50*time.Millisecond, func() { cancel(stopped) })
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, stopped) {
			t.Fatalf("the blocked read ended with %v, want %v", err, stopped)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read of a stalled stdin did not end with the context")
	}
}
