package clickhouse_test

import (
	"strings"
	"testing"

	"skuflow/internal/clickhouse"
	"skuflow/schemas"
)

// Incarnations are numbered in the order topic IDs are first seen, and an
// ID seen again keeps its number; a table of an earlier release, versioned
// by _offset, is rebuilt with _version and keeps its rows, whose old
// versions sort below every incarnation's.
func TestIncarnationsAndVersionUpgrade(t *testing.T) {
	ch, conn, ctx := server(t)

	ch.Query(t, "CREATE DATABASE skuflow")
	ch.Query(t, "CREATE TABLE skuflow.products (sku String, name String, description String, extra String, _job String, _source String, "+
		"_line UInt64, _partition UInt32, _offset UInt64, _ingested_at DateTime) ENGINE = ReplacingMergeTree(_offset) ORDER BY (sku)")
	ch.Query(t, "INSERT INTO skuflow.products (sku, name, _offset) VALUES ('a', 'old A', 5), ('a', 'older A', 3), ('b', 'B', 9)")
	if err := clickhouse.Migrate(ctx, conn, "skuflow", schemas.Products); err != nil {
		t.Fatal(err)
	}
	if got := ch.Query(t, "SELECT engine_full FROM system.tables WHERE database = 'skuflow' AND name = 'products'"); !strings.Contains(got, "ReplacingMergeTree(_version)") {
		t.Fatalf("products after migration: %s", got)
	}
	if got := ch.Query(t, "SELECT sku, name, _version FROM skuflow.products FINAL ORDER BY sku FORMAT TSV"); got != "a\told A\t5\nb\tB\t9" {
		t.Fatalf("rows after the rebuild:\n%s", got)
	}
	if got := ch.Query(t, "SELECT count() FROM system.tables WHERE database = 'skuflow' AND name LIKE '%before%'"); got != "0" {
		t.Fatalf("the old table was not dropped: %s", got)
	}

	// A rebuild cut short after the rename (a timeout, a crash) is taken
	// up by the next migration: the table aside says it is not finished.
	ch.Query(t, "CREATE DATABASE cut")
	ch.Query(t, "CREATE TABLE cut.products_before_version (sku String, name String, description String, extra String, _job String, _source String, "+
		"_line UInt64, _partition UInt32, _offset UInt64, _ingested_at DateTime) ENGINE = ReplacingMergeTree(_offset) ORDER BY (sku)")
	ch.Query(t, "INSERT INTO cut.products_before_version (sku, name, _offset) VALUES ('x', 'X', 7), ('y', 'Y', 8)")
	if err := clickhouse.Migrate(ctx, conn, "cut", schemas.Products); err != nil {
		t.Fatal(err)
	}
	if got := ch.Query(t, "SELECT sku, name, _version FROM cut.products FINAL ORDER BY sku FORMAT TSV"); got != "x\tX\t7\ny\tY\t8" {
		t.Fatalf("rows after the rebuild was taken up:\n%s", got)
	}
	if got := ch.Query(t, "SELECT count() FROM system.tables WHERE database = 'cut' AND name LIKE '%before%'"); got != "0" {
		t.Fatalf("the old table was not dropped after the rebuild was taken up: %s", got)
	}

	for i, c := range []struct {
		id   string
		want uint32
	}{{"id-1", 1}, {"id-1", 1}, {"id-2", 2}, {"id-1", 1}, {"id-3", 3}, {"id-2", 2}} {
		got, err := clickhouse.Incarnation(ctx, conn, "skuflow", "products", c.id, 6)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Fatalf("step %d: incarnation of %s is %d, want %d", i, c.id, got, c.want)
		}
	}
	if _, err := clickhouse.Incarnation(ctx, conn, "skuflow", "products", "", 6); err == nil {
		t.Fatal("a topic without an ID got an incarnation")
	}
}
