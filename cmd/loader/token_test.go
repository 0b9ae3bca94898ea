package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skuflow/api"
	"skuflow/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n--- got ---\n%s--- want ---\n%s", name, got, want)
	}
}

func token(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runToken(context.Background(), args, stdio{out: &out, err: &errb})
	return out.String(), err
}

// What a person reads: the token, that it is shown once, and the entry.
func TestTokenCreateOutput(t *testing.T) {
	fixed := func() (string, string) { return "skf_0123456789abcdef", strings.Repeat("ab", 32) }
	for _, c := range []struct {
		golden string
		args   []string
	}{
		{"token.golden", []string{"create", "ci", "--scope", "write,read"}},
		{"token_read.golden", []string{"create", "support"}},
		{"token_write.golden", []string{"create", "scanner-3", "--scope", "write"}},
	} {
		var out bytes.Buffer
		if err := runTokenWith(c.args, stdio{out: &out, err: &out}, fixed); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		golden(t, c.golden, out.Bytes())
	}
}

// The printed entry, pasted into a configuration file, makes the API take
// the printed token with the scopes asked for, and no other token.
func TestTokenCreateWorks(t *testing.T) {
	var entries []string
	toks := map[string]string{}
	for _, c := range []struct{ name, scope string }{{"writer", "read,write"}, {"reader", "read"}} {
		out, err := token(t, "create", c.name, "--scope", c.scope)
		if err != nil {
			t.Fatal(err)
		}
		tok, entry := parseToken(t, out)
		if got := sha256.Sum256([]byte(tok)); !strings.Contains(entry, hex.EncodeToString(got[:])) {
			t.Fatalf("the entry does not hold the token's SHA-256:\n%s", out)
		}
		toks[c.name] = tok
		entries = append(entries, entry)
	}
	if toks["writer"] == toks["reader"] {
		t.Fatal("two tokens are the same")
	}
	path := filepath.Join(t.TempDir(), "skuflow.yaml")
	yaml := "api:\n  addr: 0.0.0.0:18080\n  tokens:\n" + strings.Join(entries, "")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Options{File: path})
	if err != nil {
		t.Fatalf("the printed entries do not load:\n%s\n%v", yaml, err)
	}
	srv := httptest.NewServer(api.New(api.Options{Config: cfg}).Handler())
	defer srv.Close()
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		// Past auth, a type the server does not serve: 404.
		{"POST", "/v1/records/none", toks["writer"], http.StatusNotFound},
		{"POST", "/v1/records/none", toks["reader"], http.StatusForbidden},
		{"POST", "/v1/records/none", toks["reader"] + "x", http.StatusUnauthorized},
		// Past auth, not a job id: 404.
		{"GET", "/v1/jobs/not.an.id", toks["reader"], http.StatusNotFound},
		{"GET", "/v1/jobs/not.an.id", "", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("{}"))
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.token, resp.StatusCode, c.want)
		}
	}
}

// parseToken reads the token and the api.tokens entry out of the output.
func parseToken(t *testing.T, out string) (tok, entry string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "skf_") {
			tok = s
		}
	}
	_, entry, ok := strings.Cut(out, "api:\n  tokens:\n")
	if tok == "" || !ok || !strings.Contains(out, "shown once") {
		t.Fatalf("no token, entry or warning in:\n%s", out)
	}
	return tok, entry
}

func TestTokenUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "say what to do"},
		{[]string{"delete", "x"}, "say what to do"},
		{[]string{"create"}, "one NAME"},
		{[]string{"create", "a", "b"}, "one NAME"},
		{[]string{"create", "has space"}, "use letters"},
		{[]string{"create", "x: y"}, "use letters"},
		{[]string{"create", "ci", "--scope", "admin"}, `"admin"`},
		{[]string{"create", "ci", "--scope", ""}, "--scope"},
	} {
		out, err := token(t, c.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("token %q: %v, want a usage error with %q", c.args, err, c.want)
		}
		if out != "" {
			t.Errorf("token %q printed %q", c.args, out)
		}
	}
}
