package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// loader prune drops the months of ingest_jobs and ingest_errors older
// than --older-than, whole partitions at a time, says what it dropped, and
// keeps this month's rows.
func TestPruneDropsOldMonths(t *testing.T) {
	ch := testenv.ClickHouse(t)
	conn, err := clickhouse.Open(config.ClickHouse{Addr: ch.TCPAddr, Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := clickhouse.Migrate(ctx, conn, "skuflow", schemas.Products); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Format(time.DateTime)
	ch.Query(t, "INSERT INTO skuflow.ingest_jobs (id, state, started_at, version) VALUES "+
		"('20250115T000000Z-000000000001', 'done', '2025-01-15 10:00:00', 1), "+
		"('20250116T000000Z-000000000002', 'done', '2025-01-16 10:00:00', 1), "+
		"('20250203T000000Z-000000000003', 'failed', '2025-02-03 10:00:00', 1), "+
		"('now', 'done', '"+now+"', 1)\n")
	ch.Query(t, "INSERT INTO skuflow.ingest_errors (job, line, reason, at) VALUES "+
		"('20250115T000000Z-000000000001', 1, 'old', '2025-01-15 10:00:01'), "+
		"('20250115T000000Z-000000000001', 2, 'old', '2025-01-15 10:00:01'), "+
		"('now', 1, 'new', '"+now+"')\n")

	out, stderr, code := loader(t, nil, "prune", "--clickhouse", ch.TCPAddr, "--older-than", "30d", "--dry-run")
	if code != 0 || !strings.Contains(out, "would drop") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, stderr)
	}
	if got := ch.Query(t, "SELECT count() FROM skuflow.ingest_jobs"); got != "4" {
		t.Fatalf("a dry run dropped rows: %s left", got)
	}

	out, stderr, code = loader(t, nil, "prune", "--clickhouse", ch.TCPAddr, "--older-than", "30d")
	if code != 0 {
		t.Fatalf("prune: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{
		"ingest_jobs: dropped 2025-01 (2 rows)",
		"ingest_jobs: dropped 2025-02 (1 row)",
		"ingest_errors: dropped 2025-01 (2 rows)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("prune did not say %q:\n%s", want, out)
		}
	}
	if got := ch.Query(t, "SELECT id FROM skuflow.ingest_jobs ORDER BY id FORMAT TSV"); got != "now" {
		t.Fatalf("ingest_jobs after prune: %q, want only this month's job", got)
	}
	if got := ch.Query(t, "SELECT reason FROM skuflow.ingest_errors FORMAT TSV"); got != "new" {
		t.Fatalf("ingest_errors after prune: %q, want only this month's row", got)
	}

	// Nothing older left: said so.
	out, _, code = loader(t, nil, "prune", "--clickhouse", ch.TCPAddr, "--older-than", "720h")
	if code != 0 || !strings.Contains(out, "nothing to drop") {
		t.Fatalf("second prune: exit %d, %q", code, out)
	}
	if _, stderr, code := loader(t, nil, "prune", "--clickhouse", ch.TCPAddr); code != 2 || !strings.Contains(stderr, "--older-than") {
		t.Fatalf("prune without --older-than: exit %d, %q", code, stderr)
	}
}

// Tables created before they were partitioned by month cannot be pruned
// by partition: prune says so, how to fix it, and fails.
func TestPruneUnpartitionedTable(t *testing.T) {
	ch := testenv.ClickHouse(t)
	ch.Query(t, "CREATE DATABASE skuflow")
	ch.Query(t, "CREATE TABLE skuflow.ingest_jobs (id String, started_at DateTime, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY id")
	ch.Query(t, "CREATE TABLE skuflow.ingest_errors (job String, at DateTime) ENGINE = ReplacingMergeTree ORDER BY job")
	ch.Query(t, "INSERT INTO skuflow.ingest_jobs (id, started_at, version) VALUES ('old', '2025-01-15 10:00:00', 1)\n")
	out, stderr, code := loader(t, nil, "prune", "--clickhouse", ch.TCPAddr, "--older-than", "30d")
	if code != 1 || !strings.Contains(stderr, "ingest_jobs is not partitioned by month") || !strings.Contains(stderr, "README") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if got := ch.Query(t, "SELECT count() FROM skuflow.ingest_jobs"); got != "1" {
		t.Fatalf("rows of an unpartitioned table changed: %s", got)
	}
}
