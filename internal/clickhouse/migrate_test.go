package clickhouse_test

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/retry"
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

// Declared types get their table, final view, and a table and view per
// aggregate; a column added later is added; a changed key is refused.
func TestMigrateTypes(t *testing.T) {
	ch, conn, ctx := server(t)
	events, ps := schemas.Decl{Key: []string{"id", "ts"}, Columns: []schemas.ColDecl{
		{Name: "id", Type: "String", Required: true}, {Name: "data", Type: "String"}, {Name: "ts", Type: "Timestamp", Required: true},
	}}.Schema("events")
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	plays, ps := schemas.Decl{Identity: "source", Columns: []schemas.ColDecl{
		{Name: "song", Type: "String", Required: true}, {Name: "date", Type: "Date", Required: true}, {Name: "plays", Type: "UInt64", Required: true},
		{Name: "liked", Type: "Bool", Nullable: true}, {Name: "at", Type: "DateTime"},
	}, Aggs: []schemas.AggDecl{{Name: "plays_by_song_date", Sum: "plays", By: []string{"song", "date"}}, {Name: "lines_per_day", By: []string{"date"}}}}.Schema("plays")
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	for _, s := range []*schemas.Schema{schemas.Products, events, plays, events} {
		if err := clickhouse.Migrate(ctx, conn, "skuflow", s); err != nil {
			t.Fatal(err)
		}
	}
	tables := ch.Query(t, "SELECT name, sorting_key FROM system.tables WHERE database = 'skuflow' ORDER BY name FORMAT TSV")
	want := strings.Join([]string{
		"events\tid, ts", "events_final\t", "ingest_errors\tjob, source, stage, line, partition, offset", "ingest_jobs\tid",
		"lines_per_day\t", "lines_per_day_state\tpartition, date",
		"plays\t_file_sha256, _file_offset", "plays_by_song_date\t", "plays_by_song_date_state\tpartition, song, date", "plays_final\t",
		"product_counts\tpartition, name", "products\tsku", "products_agg\t", "products_final\t", "topics\ttopic",
	}, "\n")
	if tables != want {
		t.Fatalf("tables:\n%s\nwant\n%s", tables, want)
	}
	types := ch.Query(t, "SELECT name, type FROM system.columns WHERE database = 'skuflow' AND table = 'plays' FORMAT TSV")
	for _, c := range []string{"date\tDate", "plays\tUInt64", "liked\tNullable(UInt8)", "at\tDateTime(\\'UTC\\')", "_file_sha256\tString", "_file_offset\tUInt64"} {
		if !strings.Contains(types, c+"\n") {
			t.Fatalf("plays lacks %q:\n%s", c, types)
		}
	}
	// The views sum the partial rows (FINAL: the newest of each) and leave
	// out groups without keys.
	ch.Query(t, "INSERT INTO skuflow.plays_by_song_date_state (partition, song, date, count, total, version) VALUES "+
		"(0, 'a', '2024-01-01', 2, 10, 1), (1, 'a', '2024-01-01', 1, 5, 1), (0, 'a', '2024-01-01', 3, 12, 2), (0, 'b', '2024-01-02', 0, 0, 3)")
	if got := ch.Query(t, "SELECT song, date, plays FROM skuflow.plays_by_song_date"); got != "a\t2024-01-01\t17" {
		t.Fatalf("plays_by_song_date: %q", got)
	}

	// A column declared later is added, and the final view shows it.
	grown := *events
	grown.Columns = append(slices.Clone(events.Columns), schemas.Column{Name: "source_ip", Type: schemas.String})
	if err := clickhouse.Migrate(ctx, conn, "skuflow", &grown); err != nil {
		t.Fatal(err)
	}
	if cols := ch.Query(t, "SELECT name FROM system.columns WHERE database = 'skuflow' AND table = 'events_final' FORMAT TSV"); !strings.Contains(cols, "source_ip") {
		t.Fatalf("events_final lacks the new column: %s", cols)
	}

	// A changed key cannot be made true of stored rows: refused.
	rekeyed := *events
	rekeyed.Key = []string{"id"}
	err := clickhouse.Migrate(ctx, conn, "skuflow", &rekeyed)
	if err == nil || !strings.Contains(err.Error(), "table skuflow.events is keyed by (id, ts) in ClickHouse but by (id) in the configuration") {
		t.Fatalf("a changed key: %v", err)
	}
	regrouped := *plays
	regrouped.Aggregates = []schemas.Aggregate{{Name: "plays_by_song_date", Table: "plays_by_song_date_state", By: []string{"song"}, Sum: "plays", As: "plays"}}
	if err := clickhouse.Migrate(ctx, conn, "skuflow", &regrouped); err == nil || !strings.Contains(err.Error(), "keyed by (partition, song, date)") {
		t.Fatalf("a changed grouping: %v", err)
	}
}

// What no migration can resolve stops a service with the reason, not a
// retry for ever: a table where a view should be (never dropped), and a
// type whose table holds rows moved to a topic never loaded.
func TestMigrateRefusals(t *testing.T) {
	ch, conn, ctx := server(t)
	s, ps := schemas.Decl{Key: []string{"id"}, Columns: []schemas.ColDecl{{Name: "id", Type: "String", Required: true},
		{Name: "n", Type: "UInt64"}}, Aggs: []schemas.AggDecl{{Name: "n_by_id", Sum: "n", By: []string{"id"}}}}.Schema("things")
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	ch.Query(t, "CREATE DATABASE skuflow")
	ch.Query(t, "CREATE TABLE skuflow.n_by_id (id String, x UInt8) ENGINE = MergeTree ORDER BY id")
	ch.Query(t, "INSERT INTO skuflow.n_by_id VALUES ('kept', 1)")
	err := clickhouse.Migrate(ctx, conn, "skuflow", s)
	if !errors.Is(err, clickhouse.ErrIncompatible) || !strings.Contains(err.Error(), "skuflow.n_by_id is a table (MergeTree), where skuflow wants a view") {
		t.Fatalf("a table in a view's place: %v", err)
	}
	if got := ch.Query(t, "SELECT id FROM skuflow.n_by_id"); got != "kept" {
		t.Fatalf("the table was touched: %q", got)
	}
	ch.Query(t, "DROP TABLE skuflow.n_by_id")

	cfg := config.Default()
	cfg.ClickHouse.Database = "skuflow"
	cfg.Kafka.Topic = "things"
	log := slog.New(slog.DiscardHandler)
	if err := clickhouse.Prepare(ctx, conn, cfg, s, log, retry.Default); err != nil {
		t.Fatal(err)
	}
	// A UInt64 sum is UInt64 in the view, as sum() over the rows is.
	ch.Query(t, "INSERT INTO skuflow.things (id, n) VALUES ('a', 10000000000000000000)")
	ch.Query(t, "INSERT INTO skuflow.n_by_id_state (partition, id, count, total, version) VALUES (0, 'a', 1, 10000000000000000000, 1)")
	if got, want := ch.Query(t, "SELECT n FROM skuflow.n_by_id"), ch.Query(t, "SELECT sum(n) FROM skuflow.things FINAL"); got != want || got != "10000000000000000000" {
		t.Fatalf("n_by_id says %s, the rows sum to %s", got, want)
	}
	cfg.Kafka.Topic = "things2"
	err = clickhouse.Prepare(ctx, conn, cfg, s, log, retry.Default)
	if !errors.Is(err, clickhouse.ErrIncompatible) || !strings.Contains(err.Error(), "its topic is things2 now, never loaded before") {
		t.Fatalf("a moved topic: %v", err)
	}
}
