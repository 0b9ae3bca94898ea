package processor_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// Full batches go into one INSERT while there is more to read (a stream),
// and ClickHouse writes one part for it, not one per batch. A record
// ClickHouse refuses in the middle of a stream fails the whole INSERT: the
// processor reads its records again, batch by batch, sets the refused one
// aside, goes back to streaming, and the table is exact.
func TestStreamedInserts(t *testing.T) {
	s := newStack(t, "SKUFLOW_PROCESSOR_BATCH_ROWS=1000", "SKUFLOW_PROCESSOR_INSERT_ROWS=20000",
		"SKUFLOW_PROCESSOR_FLUSH_INTERVAL=7s")
	p := s.Service(t, "processor")
	p.Stop(t) // the table exists now; the topic fills while nobody loads it
	s.CH.Query(t, "SYSTEM STOP MERGES skuflow.products")
	guard(t, s)
	file := testenv.Gen(t, t.TempDir(), "clean.ndjson", "--rows", "40000", "--seed", "5")
	path := withPoison(t, file, 35000)
	if out, stderr, err := s.Loader(t, "push", "--no-progress", path); err != nil {
		t.Fatalf("push: %v\n%s\n%s", err, out, stderr)
	}

	p.Start(t)
	s.WaitCommitted(t, "skuflow-processor", 40001, 2*time.Minute)
	s.CheckFinal(t, testenv.LastWrites(t, file))
	if got := s.CH.Query(t, "SELECT stage, line FROM skuflow.ingest_errors FINAL FORMAT TSV"); got != "insert\t35001" {
		t.Fatalf("ingest_errors holds %q, want the poison record, set aside at insert", got)
	}
	if !p.LogContains("reading again") {
		t.Fatalf("the processor did not read the failed INSERT again:\n%s", p.Log(30))
	}
	// Merges are stopped: every INSERT is a part. The first 20,000
	// records went in as one INSERT of 20 batches; the next 20 batches
	// held the refused record, and went in one batch per INSERT (the
	// refused record's batch split until it was found).
	parts := s.CH.Query(t, "SELECT count(), max(rows) FROM system.parts WHERE database = 'skuflow' AND table = 'products' AND active FORMAT TSV")
	f := strings.Fields(parts)
	n, _ := strconv.Atoi(f[0])
	most, _ := strconv.Atoi(f[1])
	t.Logf("%d parts, the largest of %d rows", n, most)
	if most != 20000 || n < 21 {
		t.Fatalf("%d parts, the largest of %d rows: want the largest of 20,000 rows (20 batches), and one part per batch after it", n, most)
	}
}
