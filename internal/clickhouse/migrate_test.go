package clickhouse_test

import (
	"errors"
	"strings"
	"testing"

	"skuflow/internal/clickhouse"
	"skuflow/schemas"
)

// Migration on the real ClickHouse 18.16: idempotent, additive (a missing
// column is added), and a changed type is refused, not altered.
func TestMigrate(t *testing.T) {
	ch, conn, ctx := server(t)

	// A table from an older schema, without the extra column.
	ch.Query(t, "CREATE DATABASE skuflow")
	ch.Query(t, "CREATE TABLE skuflow.products (sku String, name String, description String, _job String, _source String, "+
		"_line UInt64, _partition UInt32, _offset UInt64, _ingested_at DateTime) ENGINE = ReplacingMergeTree(_offset) ORDER BY (sku)")
	// A bookkeeping table of an older shape too: every table gets its
	// missing columns.
	ch.Query(t, "CREATE TABLE skuflow.ingest_jobs (id String, state String, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY id")
	for range 2 {
		if err := clickhouse.Migrate(ctx, conn, "skuflow", schemas.Products); err != nil {
			t.Fatal(err)
		}
	}
	cols := ch.Query(t, "SELECT name FROM system.columns WHERE database = 'skuflow' AND table = 'products' FORMAT TSV")
	if !strings.Contains(cols, "extra") {
		t.Fatalf("extra was not added: %s", cols)
	}
	jobCols := ch.Query(t, "SELECT name FROM system.columns WHERE database = 'skuflow' AND table = 'ingest_jobs' FORMAT TSV")
	for _, c := range []string{"sha256", "end_partitions", "end_offsets", "load_seconds", "updated_at"} {
		if !strings.Contains(jobCols, c) {
			t.Fatalf("ingest_jobs.%s was not added: %s", c, jobCols)
		}
	}
	tables := ch.Query(t, "SELECT name FROM system.tables WHERE database = 'skuflow' ORDER BY name FORMAT TSV")
	if want := "ingest_errors\ningest_jobs\nproduct_counts\nproducts\nproducts_agg\nproducts_final\ntopics"; tables != want {
		t.Fatalf("tables %q, want %q", tables, want)
	}

	changed := *schemas.Products
	changed.Columns = append([]schemas.Column{}, changed.Columns...)
	changed.Columns[1].Type = schemas.Int64
	err := clickhouse.Migrate(ctx, conn, "skuflow", &changed)
	if err == nil || !strings.Contains(err.Error(), "only additive changes") {
		t.Fatalf("a changed type was not refused: %v", err)
	}

	if err := clickhouse.CheckPartitions(ctx, conn, "skuflow", "products", 6); err != nil {
		t.Fatal(err)
	}
	if err := clickhouse.CheckPartitions(ctx, conn, "skuflow", "products", 6); err != nil {
		t.Fatalf("the same count again: %v", err)
	}
	if err := clickhouse.CheckPartitions(ctx, conn, "skuflow", "products", 8); !errors.Is(err, clickhouse.ErrPartitionsChanged) {
		t.Fatalf("a changed count: %v", err)
	}
}
