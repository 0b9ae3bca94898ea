package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"skuflow/internal/testenv"
)

// A file that no earlier job can have loaded (none of its size, none of a
// size unknown) is hashed beside its records; one that may have been is
// hashed first and refused if it was. Either way the job's digest is the
// file's.
func TestPushHashesBesideRecords(t *testing.T) {
	s := testenv.NewStack(t)
	dir := t.TempDir()
	a := testenv.Gen(t, dir, "a.ndjson", "--rows", "300", "--seed", "5")
	first := push(t, s, a).Results[0]
	want := sha256sum(t, a)
	if first.State != "produced" || first.SHA256 != want {
		t.Fatalf("first push: %+v, sha256sum %s", first, want)
	}
	if row := jobRow(t, s, first.ID, "sha256, state"); row != want+"\tproduced" {
		t.Fatalf("first push's row: %q", row)
	}

	// The same size, other content: hashed first, and pushed.
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte(`"name":"`)) + len(`"name":"`)
	data[at] ^= 0x20 // a letter's case
	b := filepath.Join(dir, "b.ndjson")
	if err := os.WriteFile(b, data, 0o644); err != nil {
		t.Fatal(err)
	}
	second := push(t, s, b).Results[0]
	if second.State != "produced" || second.RefusedBy != "" || second.Produced != 300 || second.SHA256 != sha256sum(t, b) || second.SHA256 == want {
		t.Fatalf("a file of the same size, other content: %+v", second)
	}

	// Content loaded from stdin, whose size the job may not know, refuses
	// the same content from a file.
	c := testenv.Gen(t, dir, "c.ndjson", "--rows", "200", "--seed", "6")
	cdata, err := os.ReadFile(c)
	if err != nil {
		t.Fatal(err)
	}
	in := pushIn(t, s, cdata, "-").Results[0]
	if in.State != "produced" || in.SHA256 != sha256sum(t, c) {
		t.Fatalf("stdin push: %+v", in)
	}
	if again := push(t, s, c).Results[0]; again.RefusedBy != in.ID || again.Produced != 0 {
		t.Fatalf("the stdin job's content from a file: %+v, want refused by %s", again, in.ID)
	}
}
