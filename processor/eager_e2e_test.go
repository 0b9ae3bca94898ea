package processor_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A record that comes to an idle pipeline is written at once, by the
// processor and by the aggregator, not after the eager wait
// (flush_interval/10): `loader push --wait` of one record returns as soon
// as both groups have it. A record that comes right after a write waits for
// the eager wait after it, so a trickle still makes at most ten writes per
// flush_interval.
func TestIdleRecordWrittenAtOnce(t *testing.T) {
	const eager = 20 * time.Second
	s := newStack(t, "SKUFLOW_PROCESSOR_FLUSH_INTERVAL=200s", "SKUFLOW_AGGREGATOR_FLUSH_INTERVAL=200s")
	s.Service(t, "processor")
	dir := t.TempDir()
	record := func(name, sku string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(`{"sku":"`+sku+`","name":"idle"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	start := time.Now()
	s.PushWait(t, record("one.ndjson", "idle-1"))
	if took := time.Since(start); took >= eager/2 {
		t.Fatalf("push --wait of one record to an idle pipeline took %v; the eager wait is %v", took, eager)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.products FINAL WHERE sku = 'idle-1'"); n != 1 {
		t.Fatalf("products holds idle-1 %d times after push --wait", n)
	}
	if got := s.Agg(t)["idle"]; got != 1 {
		t.Fatalf("products_agg counts %d for idle after push --wait, want 1", got)
	}

	// Right after that write, the next record waits.
	written := time.Now()
	if out, stderr, err := s.Loader(t, "push", "--no-progress", record("two.ndjson", "idle-2")); err != nil {
		t.Fatalf("push: %v\n%s\n%s", err, out, stderr)
	}
	time.Sleep(2 * time.Second)
	if n := s.Count(t, "SELECT count() FROM skuflow.products WHERE sku = 'idle-2'"); n != 0 && time.Since(written) < eager {
		t.Fatalf("a record that came %v after a write was written before the eager wait (%v)", time.Since(written), eager)
	}
	s.WaitCount(t, "SELECT count() FROM skuflow.products FINAL WHERE sku = 'idle-2'", 1, time.Minute)
	if d := time.Since(start); d < eager {
		t.Fatalf("the second record was written %v after the first, within the eager wait (%v)", d, eager)
	}
}
