package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n--- got ---\n%s--- want ---\n%s", name, got, want)
	}
}

var (
	header = []string{"name", "no_of_products", "note"}
	rows   = [][]string{
		{"Ana Lopez", "12", "tab\there"},
		{"Zoë", "3", "two\nlines"},
		{"a very long name that goes on and on", "1", `back\slash`},
	}
)

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, header, rows, 20); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.golden", b.Bytes())
}

func TestWriteTSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTSV(&b, header, rows); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.tsv.golden", b.Bytes())
}
