package clickhouse_test

import (
	"strings"
	"testing"
	"time"

	"skuflow/internal/clickhouse"
	"skuflow/jobs"
	"skuflow/schemas"
)

// Every statement quotes the database: one whose name needs quotes (config
// refuses it, but the SQL must not depend on that) migrates, records jobs,
// errors and partitions, and lists them, on the real ClickHouse 18.16.
func TestMigrateQuotesDatabase(t *testing.T) {
	ch, conn, ctx := server(t)

	const db = "sku-flow"
	for range 2 {
		if err := clickhouse.Migrate(ctx, conn, db, schemas.Products); err != nil {
			t.Fatal(err)
		}
	}
	if got := ch.Query(t, "SELECT name FROM system.tables WHERE database = 'sku-flow' ORDER BY name FORMAT TSV"); got !=
		"ingest_errors\ningest_jobs\nproduct_counts\nproducts\nproducts_agg\nproducts_final\ntopics" {
		t.Fatalf("tables of %s: %q", db, got)
	}
	if err := clickhouse.CheckPartitions(ctx, conn, db, "products", 6); err != nil {
		t.Fatal(err)
	}
	store := jobs.NewStore(conn, db)
	j := &jobs.Job{ID: "20260101T000000Z-0123456789ab", Source: "a.json", State: jobs.Done, Started: time.Now()}
	if err := store.Save(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveErrors(ctx, []clickhouse.ErrorRow{{Job: j.ID, Source: "a.json", Line: 3, Stage: "validate", Reason: "r"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get(ctx, j.ID); err != nil || got.State != jobs.Done {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	if rows, n, err := store.Errors(ctx, j.ID, 10); err != nil || n != 1 || len(rows) != 1 {
		t.Fatalf("Errors: %v, %d, %v", rows, n, err)
	}

	// A schema whose table name is not an identifier is refused before any
	// SQL is sent.
	bad := *schemas.Products
	bad.Name = "x;DROP"
	err := clickhouse.Migrate(ctx, conn, db, &bad)
	if err == nil || !strings.Contains(err.Error(), `"x;DROP" is not an identifier`) {
		t.Fatalf("a schema named x;DROP: %v", err)
	}
}

// Ident's quoting is what ClickHouse 18.16 reads back: names with a dash,
// a backtick, a backslash, a quote or a semicolon create exactly the
// database and table they name, and nothing else.
func TestIdent(t *testing.T) {
	for in, want := range map[string]string{
		"products": "`products`",
		"a-b":      "`a-b`",
		"a`b":      "`a\\`b`",
		`a\b`:      "`a\\\\b`",
	} {
		if got := clickhouse.Ident(in); got != want {
			t.Errorf("Ident(%q) = %s, want %s", in, got, want)
		}
	}
	if got := clickhouse.Table("d-b", "t"); got != "`d-b`.`t`" {
		t.Errorf("Table = %s", got)
	}

	ch, conn, ctx := server(t)
	names := []string{"a-b", "a`b", `a\b`, `a\`, "a'b", "x`; DROP DATABASE system; --", "tab\there"}
	for _, name := range names {
		if err := conn.Exec(ctx, "CREATE DATABASE "+clickhouse.Ident(name)); err != nil {
			t.Fatalf("create database %q: %v", name, err)
		}
		if err := conn.Exec(ctx, "CREATE TABLE "+clickhouse.Table(name, name)+" ("+clickhouse.Ident(name)+" String) ENGINE = Memory"); err != nil {
			t.Fatalf("create table %q: %v", name, err)
		}
		var db, table, column string
		q := "SELECT database, table, name FROM system.columns WHERE database = " + clickhouse.Quote(name)
		if err := conn.QueryRow(ctx, q).Scan(&db, &table, &column); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if db != name || table != name || column != name {
			t.Fatalf("%q: created %q.%q column %q", name, db, table, column)
		}
	}
	got := ch.Query(t, "SELECT count() FROM system.databases WHERE name NOT IN ('default', 'system')")
	if got != "7" {
		t.Fatalf("%s databases, want 7", got)
	}
}
