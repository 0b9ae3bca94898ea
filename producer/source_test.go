package producer

import (
	"context"
	"errors"
	"net"
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
