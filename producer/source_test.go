package producer

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
