package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// A zstd file whose frames need a larger window than loader.zstd_max_window
// (zstd --long=29 over a pipe writes a 512 MiB window) fails its push with
// the file and the limit named, instead of taking that memory.
func TestPushZstdWindowOverLimit(t *testing.T) {
	zstd := testenv.Zstd(t)
	data := []byte(strings.Repeat(`{"sku":"w1","name":"W"}`+"\n", 20000))
	cmd := exec.Command(zstd, "-q", "--long=29", "-c")
	cmd.Stdin = bytes.NewReader(data) // a pipe: the size is unknown, the window stays 512 MiB
	frame, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "long.ndjson.zst")
	if err := os.WriteFile(file, frame, 0o644); err != nil {
		t.Fatal(err)
	}
	st := testenv.NewStack(t)
	s := push(t, st, file)
	r := s.Results[0]
	want := "zstd frame needs a window of 512 MiB, more than loader.zstd_max_window (128 MiB)"
	if s.OK || r.State != "failed" || !strings.Contains(r.Error, file) || !strings.Contains(r.Error, want) {
		t.Fatalf("summary %+v", s)
	}
	// Raised, the same file loads.
	out, stderr, code := run(t, append(st.Env, "SKUFLOW_LOADER_ZSTD_MAX_WINDOW=512MiB"), nil, "push", "--json", "--no-progress", file)
	if code != 0 || !strings.Contains(out, `"records_produced": 20000`) {
		t.Fatalf("with the limit raised: exit %d\n%s\n%s", code, out, stderr)
	}
}
