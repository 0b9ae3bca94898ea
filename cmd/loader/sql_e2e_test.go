package main_test

import (
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// loader sql runs a query against the configured ClickHouse: TSV for
// scripts, an aligned table for people, and a clear error for bad SQL.
func TestSQL(t *testing.T) {
	ch := testenv.ClickHouse(t)
	ch.Query(t, "CREATE DATABASE skuflow")
	ch.Query(t, "CREATE TABLE skuflow.t (name String, n UInt64, at DateTime) ENGINE = MergeTree ORDER BY name")
	ch.Query(t, "INSERT INTO skuflow.t VALUES ('tab\there', 2, '2026-01-02 03:04:05')\n")

	out, stderr, code := loader(t, nil, "sql", "--clickhouse", ch.TCPAddr, "--tsv", "SELECT name, n, at FROM t ORDER BY name")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := "name\tn\tat\ntab\\there\t2\t2026-01-02 03:04:05\n"; out != want {
		t.Fatalf("--tsv printed %q, want %q", out, want)
	}

	// A Date is shown as its day, also when nullable; a DateTime to the second.
	out, _, code = loader(t, nil, "sql", "--clickhouse", ch.TCPAddr, "--tsv",
		"SELECT toDate('2024-02-29') AS d, toNullable(toDate('2024-03-01')) AS nd, toDateTime('2024-02-29 10:11:12', 'UTC') AS dt")
	if want := "d\tnd\tdt\n2024-02-29\t2024-03-01\t2024-02-29 10:11:12\n"; code != 0 || out != want {
		t.Fatalf("dates: exit %d, %q, want %q", code, out, want)
	}

	out, _, code = loader(t, nil, "sql", "--clickhouse", ch.TCPAddr, "SELECT count() AS rows FROM t")
	if code != 0 || out != "rows\n----\n1\n(1 row)\n" {
		t.Fatalf("table: exit %d, %q", code, out)
	}

	_, stderr, code = loader(t, nil, "sql", "--clickhouse", ch.TCPAddr, "SELECT nope FROM t")
	if code != 1 || !strings.Contains(stderr, "nope") {
		t.Fatalf("bad SQL: exit %d, %q", code, stderr)
	}
}
