package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// products opens a real ClickHouse with an empty products table, and
// returns an insert of (sku, name, partition, version) rows, each insert a
// part of its own, so that only FINAL tells a key's current row.
func products(t *testing.T) (clickhouse.Conn, func(rows ...string)) {
	t.Helper()
	ch := testenv.ClickHouse(t)
	conn, err := clickhouse.Open(config.ClickHouse{Addr: ch.TCPAddr, Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := clickhouse.Migrate(context.Background(), conn, "skuflow", schemas.Products); err != nil {
		t.Fatal(err)
	}
	return conn, func(rows ...string) {
		ch.Query(t, "INSERT INTO skuflow.products (sku, name, _partition, _version) VALUES "+strings.Join(rows, ", "))
	}
}

func exportText(t *testing.T, conn clickhouse.Conn, o Options) string {
	t.Helper()
	var out strings.Builder
	o.Format = CSV
	if _, err := Export(context.Background(), conn, TypeSource("skuflow", schemas.Products), o, Output{W: &out}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// --where filters the current rows: a key whose older version matches and
// whose current one does not is not exported (a filter moved before FINAL
// would export the old version).
func TestWhereAppliesToCurrentRows(t *testing.T) {
	conn, insert := products(t)
	insert("('a', 'old', 0, 1)", "('b', 'old', 1, 1)")
	insert("('a', 'new', 0, 2)")
	got := exportText(t, conn, Options{Where: "name = 'old'"})
	if want := "sku,name,description,extra,_version\nb,old,,,1\n"; got != want {
		t.Fatalf("export --where \"name = 'old'\":\n%s\nwant\n%s", got, want)
	}
	got = exportText(t, conn, Options{})
	if want := "sku,name,description,extra,_version\na,new,,,2\nb,old,,,1\n"; got != want {
		t.Fatalf("export:\n%s\nwant\n%s", got, want)
	}
}

// An incremental series: the first part holds everything, the next only
// the keys written since, each with its current row; nothing new, no part;
// a write that arrives after the bounds were read waits for the next part.
func TestIncrementalParts(t *testing.T) {
	conn, insert := products(t)
	src := TypeSource("skuflow", schemas.Products)
	dir := t.TempDir()
	state := filepath.Join(dir, "products.state")
	part := func(wantPart int, want string) {
		t.Helper()
		res, st, err := Incremental(context.Background(), conn, src, Options{Format: CSV}, state, dir)
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			if len(res.Files) != 0 || st.Parts != wantPart {
				t.Fatalf("nothing new, yet files %v, parts %d", res.Files, st.Parts)
			}
			return
		}
		b, err := os.ReadFile(PartPath(dir, "products", CSV, wantPart, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); got != "sku,name,description,extra,_version\n"+want {
			t.Fatalf("part %d:\n%s\nwant\n%s", wantPart, got, want)
		}
	}
	insert("('a', 'a1', 0, 10)", "('b', 'b1', 1, 20)", "('c', 'c1', 0, 11)")
	part(1, "a,a1,,,10\nb,b1,,,20\nc,c1,,,11\n")
	// a updated twice, d new (in partition 1 below b's version: a version
	// is per partition, not global), c untouched.
	insert("('a', 'a2', 0, 12)", "('d', 'd1', 1, 21)")
	insert("('a', 'a3', 0, 13)")
	part(2, "a,a3,,,13\nd,d1,,,21\n")
	part(2, "")
	// A partition first written after the series began.
	insert("('e', 'e1', 5, 0)")
	part(3, "e,e1,,,0\n")

	// The same state over the same data writes the same part.
	saved, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	insert("('f', 'f1', 2, 1)")
	part(4, "f,f1,,,1\n")
	first, _ := os.ReadFile(PartPath(dir, "products", CSV, 4, 0))
	if err := os.WriteFile(state, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	part(4, "f,f1,,,1\n")
	again, _ := os.ReadFile(PartPath(dir, "products", CSV, 4, 0))
	if string(first) != string(again) {
		t.Fatal("the same state over the same data wrote another part")
	}

	// A state file is of one series.
	if _, _, err := Incremental(context.Background(), conn, src, Options{Format: NDJSON}, state, dir); err == nil ||
		!strings.Contains(err.Error(), "is a series of csv files, not ndjson") {
		t.Fatalf("another format on the same state: %v", err)
	}
	if _, _, err := Incremental(context.Background(), conn, src, Options{Format: CSV, Where: "1"}, state, dir); err == nil ||
		!strings.Contains(err.Error(), "a filter cannot change within a series") {
		t.Fatalf("another filter on the same state: %v", err)
	}
	agg := AggregateSource("skuflow", schemas.Products, &schemas.Products.Aggregates[0])
	if _, _, err := Incremental(context.Background(), conn, agg, Options{Format: CSV}, state, dir); err == nil ||
		!strings.Contains(err.Error(), "cannot be exported incrementally") {
		t.Fatalf("an aggregate, incrementally: %v", err)
	}
}

// A split export writes files of at most SplitRows rows that add up, in
// key order; a failed one leaves no file behind.
func TestSplitAndFailure(t *testing.T) {
	conn, insert := products(t)
	insert("('a', 'x', 0, 1)", "('b', 'x', 0, 2)", "('c', 'x', 0, 3)", "('d', 'x', 0, 4)", "('e', 'x', 0, 5)")
	dir := t.TempDir()
	res, err := Export(context.Background(), conn, TypeSource("skuflow", schemas.Products),
		Options{Format: NDJSON, SplitRows: 2}, ToFile(filepath.Join(dir, "p.ndjson"), true))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i, f := range res.Files {
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if f.Path != filepath.Join(dir, "p-0000"+string(rune('1'+i))+".ndjson") || int64(len(lines)) != f.Rows || f.Rows > 2 {
			t.Fatalf("file %d: %+v with %d lines", i, f, len(lines))
		}
		for _, l := range lines {
			all = append(all, l[8:9])
		}
	}
	if len(res.Files) != 3 || strings.Join(all, "") != "abcde" || res.Rows != 5 {
		t.Fatalf("%d files, keys %v, %d rows", len(res.Files), all, res.Rows)
	}

	empty := t.TempDir()
	_, err = Export(context.Background(), conn, TypeSource("skuflow", schemas.Products),
		Options{Format: NDJSON, SplitRows: 2, Where: "no_such_column = 1"}, ToFile(filepath.Join(empty, "p.ndjson"), true))
	if err == nil {
		t.Fatal("an export with a bad filter worked")
	}
	if left, _ := os.ReadDir(empty); len(left) != 0 {
		t.Fatalf("a failed export left %v", left)
	}
}
