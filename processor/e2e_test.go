package processor_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// newStack starts ClickHouse, the broker and one aggregator: these tests
// are about the processor, but `loader push --wait` also waits for the
// aggregator's group.
func newStack(t *testing.T, env ...string) *testenv.Stack {
	t.Helper()
	s := testenv.NewStack(t, env...)
	s.Service(t, "aggregator")
	return s
}

// The first acceptance test: the real products file, loaded,
// equals the expected last write per sku exactly.
func TestProducts2000Final(t *testing.T) {
	s := newStack(t)
	s.Service(t, "processor")
	s.PushWait(t, testenv.ExternalTestdata(t, "products-2000.csv"))

	got := s.CH.Query(t, "SELECT sku, name, description FROM skuflow.products FINAL ORDER BY sku FORMAT CSVWithNames")
	wantFile, err := os.ReadFile(testenv.ExternalTestdata(t, "products-2000.expected_final.csv"))
	if err != nil {
		t.Fatal(err)
	}
	gotRows, err := csv.NewReader(strings.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantRows, err := csv.NewReader(bytes.NewReader(wantFile)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(gotRows) != len(wantRows) {
		t.Fatalf("%d rows, want %d", len(gotRows), len(wantRows))
	}
	for i := range wantRows {
		if strings.Join(gotRows[i], "\x00") != strings.Join(wantRows[i], "\x00") {
			t.Fatalf("row %d: %q, want %q", i, gotRows[i], wantRows[i])
		}
	}
	// The view applies FINAL for users.
	if n := s.Count(t, "SELECT count() FROM skuflow.products_final"); n != 1998 {
		t.Fatalf("products_final has %d rows, want 1998", n)
	}
	// Provenance: every row names its job, source and line.
	if n := s.Count(t, "SELECT count() FROM skuflow.products WHERE _job = '' OR _source = '' OR _line = 0"); n != 0 {
		t.Fatalf("%d rows without provenance", n)
	}
}

// Re-pushes and renames: the table holds the last write per sku.
func TestRepushAndRenames(t *testing.T) {
	s := newStack(t)
	s.Service(t, "processor")
	// Background merges collapse the older versions, and would make the
	// count of rows the table saw (below) depend on timing.
	s.CH.Query(t, "SYSTEM STOP MERGES skuflow.products")
	dir := t.TempDir()
	first := testenv.Gen(t, dir, "first.ndjson", "--rows", "20000", "--dup-rate", "0.1", "--rename-rate", "0.1", "--seed", "11")
	// The renames file: the same skus again, every third with a new name.
	var b strings.Builder
	for i, p := range sortedValues(testenv.LastWrites(t, first)) {
		if i%3 == 0 {
			p.Name += " (renamed)"
		}
		line, _ := json.Marshal(map[string]string{"sku": p.Sku, "name": p.Name, "description": p.Description})
		b.Write(line)
		b.WriteByte('\n')
	}
	renames := filepath.Join(dir, "renames.ndjson")
	os.WriteFile(renames, []byte(b.String()), 0o644)

	s.PushWait(t, first)
	// The same file again must be forced: the loader refuses content an
	// earlier job loaded.
	s.PushWait(t, "--force", first)
	s.PushWait(t, renames)
	s.CheckFinal(t, testenv.LastWrites(t, first, first, renames))
	// Every record is in the table, not only the last per sku: nothing was
	// skipped (FINAL hides the older versions).
	if n := s.Count(t, "SELECT count() FROM skuflow.products"); n < 40000 {
		t.Fatalf("the table saw %d rows, fewer than were pushed", n)
	}
}

func sortedValues(m map[string]testenv.Product) []testenv.Product {
	out := make([]testenv.Product, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	// Map order would make the renamed third random; sort for a stable test.
	sort.Slice(out, func(i, j int) bool { return out[i].Sku < out[j].Sku })
	return out
}
