package processor_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// A record ClickHouse refuses is found by splitting its batch and set aside
// in ingest_errors with the reason; the rest of the batch is inserted. A
// record the processor cannot decode (written by another client) goes there
// too.
func TestRefusedRecordsAreSetAside(t *testing.T) {
	s := newStack(t)
	p := s.Service(t, "processor")
	guard(t, s)
	dir := t.TempDir()
	file := testenv.Gen(t, dir, "batch.ndjson", "--rows", "5000", "--seed", "3")
	// The poison record sits in the middle of the file, so in the middle of
	// a batch.
	path := withPoison(t, file, 2500)

	// Another client writes a value that is not JSON.
	kcat := exec.Command(testenv.Kcat(t), "-P", "-b", s.Broker.Addr, "-t", "products", "-k", "stray")
	kcat.Stdin = strings.NewReader("this is not json\n")
	if out, err := kcat.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v %s", err, out)
	}

	s.PushWait(t, path)
	s.CheckFinal(t, testenv.LastWrites(t, file))
	errs := s.CH.Query(t, "SELECT stage, source, line, reason FROM skuflow.ingest_errors FINAL ORDER BY stage FORMAT TSV")
	rows := strings.Split(errs, "\n")
	if len(rows) != 2 {
		t.Fatalf("ingest_errors:\n%s", errs)
	}
	if !strings.HasPrefix(rows[0], "decode\t\t0\t") || !strings.Contains(rows[0], "not a JSON object") {
		t.Errorf("decode error row %q", rows[0])
	}
	if !strings.HasPrefix(rows[1], "insert\t"+path+"\t2501\t") || !strings.Contains(rows[1], "395") {
		t.Errorf("insert error row %q", rows[1])
	}
	if raw := s.CH.Query(t, "SELECT raw FROM skuflow.ingest_errors WHERE stage = 'insert'"); !strings.Contains(raw, `"sku":"poison"`) {
		t.Errorf("raw record %q", raw)
	}
	// The set-aside record belongs to the push's job: loader errors shows
	// it with its line and its place on the topic.
	id := s.CH.Query(t, "SELECT id FROM skuflow.ingest_jobs FINAL WHERE source = '"+path+"'")
	out, stderr, err := s.Loader(t, "errors", id)
	where := regexp.MustCompile(regexp.QuoteMeta(path+":2501 (products partition ") + `\d+ offset \d+\): insert: .*395`)
	if err != nil || !where.MatchString(out) || !strings.Contains(stderr, "1 of 1 rejected records") {
		t.Errorf("loader errors %s: %v\n%s\nstderr: %s", id, err, out, stderr)
	}
	// The metrics say the same: the rejections by stage, the rest inserted.
	m := testenv.ScrapeMetrics(t, p.MetricsURL(t), nil)
	for stage, want := range map[string]float64{"decode": 1, "key": 0, "insert": 1} {
		if got := m.Get(t, "skuflow_records_rejected_total", "type", "products", "stage", stage); got != want {
			t.Errorf("rejected at %s: %v, want %v", stage, got, want)
		}
	}
	if got := m.Get(t, "skuflow_records_inserted_total", "type", "products"); got != 5000 {
		t.Errorf("inserted %v, want 5000", got)
	}
}

// guard makes ClickHouse itself refuse the sku "poison", as a CHECK
// constraint would on a current server.
func guard(t *testing.T, s *testenv.Stack) {
	s.CH.Query(t, "ALTER TABLE skuflow.products ADD COLUMN _guard UInt8 MATERIALIZED throwIf(sku = 'poison')")
}

// withPoison writes, beside file, file with the record of sku "poison"
// after its first n lines, and returns its path.
func withPoison(t *testing.T, file string, n int) string {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	mixed := strings.Join(lines[:n], "") + `{"sku":"poison","name":"P","description":"refused by ClickHouse"}` + "\n" + strings.Join(lines[n:], "")
	path := filepath.Join(filepath.Dir(file), "mixed.ndjson")
	if err := os.WriteFile(path, []byte(mixed), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Two instances share the partitions and the result is exact; each
// loaded part of it.
func TestTwoProcessorsShareTheTopic(t *testing.T) {
	s := newStack(t)
	a := s.Service(t, "processor")
	b := s.Service(t, "processor")
	file := testenv.Gen(t, t.TempDir(), "shared.ndjson", "--rows", "200000", "--dup-rate", "0.05", "--rename-rate", "0.05", "--seed", "21")
	// Both own partitions before the push: a push that ended before the
	// rebalance would leave b nothing to insert.
	for _, p := range []*testenv.ServiceProcess{a, b} {
		p.WaitLog(t, "msg=\"partitions assigned\"", 30*time.Second)
	}
	s.PushWait(t, file)
	s.CheckFinal(t, testenv.LastWrites(t, file))
	a.Stop(t)
	b.Stop(t)
	total := 0
	for _, p := range []*testenv.ServiceProcess{a, b} {
		n := insertedAtStop(t, p)
		if n == 0 {
			t.Errorf("%s (pid %d) inserted nothing: the partitions were not shared", p.Name, p.Pid())
		}
		total += n
	}
	if total < 200000 {
		t.Errorf("the two inserted %d rows together, fewer than the 200,000 pushed", total)
	}
}

var stoppedLine = regexp.MustCompile(`msg=stopped .*inserted=(\d+)`)

func insertedAtStop(t *testing.T, p *testenv.ServiceProcess) int {
	t.Helper()
	m := stoppedLine.FindStringSubmatch(p.Log(5))
	if m == nil {
		t.Fatalf("%s logged no stop line:\n%s", p.Name, p.Log(10))
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// SIGTERM: the processor flushes, commits, leaves the group and exits 0;
// a new instance starts where it stopped and inserts nothing again.
func TestGracefulStop(t *testing.T) {
	s := newStack(t, "SKUFLOW_PROCESSOR_FLUSH_INTERVAL=1h", "SKUFLOW_PROCESSOR_BATCH_ROWS=1000000")
	p := s.Service(t, "processor")
	// A record to an idle processor goes in at once; what comes right
	// after that write waits for flush_interval/10 (six minutes) or a
	// batch of batch_rows/50 (20,000 rows).
	s.PushWait(t, testenv.Gen(t, t.TempDir(), "first.ndjson", "--rows", "1", "--seed", "98"))
	file := testenv.Gen(t, t.TempDir(), "held.ndjson", "--rows", "3000", "--seed", "4")
	if _, stderr, err := s.Loader(t, "push", "--no-progress", file); err != nil {
		t.Fatal(stderr)
	}
	// The batch is held once read: only the first record is in ClickHouse
	// yet. (A SIGTERM before the read would leave records in the broker,
	// for the next instance, and not prove the flush on stop.)
	testenv.WaitMetrics(t, p.MetricsURL(t), time.Minute, "3,001 records read", func(m testenv.Metrics) bool {
		v, _ := m.Value("skuflow_records_consumed_total", "type", "products")
		return v >= 3001
	})
	time.Sleep(200 * time.Millisecond)
	if n := s.Count(t, "SELECT count() FROM skuflow.products"); n != 1 {
		t.Fatalf("%d rows inserted before the batch was due, want the first record's 1", n)
	}
	p.Stop(t)
	if exited, err := p.Exited(); !exited || err != nil {
		t.Fatalf("exited=%v err=%v", exited, err)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.products"); n != 3001 {
		t.Fatalf("after SIGTERM the table has %d rows, want the 3000 held and the first", n)
	}
	// Committed: a new instance finds nothing to do, and --wait agrees.
	q := testenv.Service(t, "processor", append(s.Env, "SKUFLOW_PROCESSOR_FLUSH_INTERVAL=200ms"))
	s.PushWait(t, testenv.Gen(t, t.TempDir(), "one.ndjson", "--rows", "1", "--seed", "99"))
	q.Stop(t)
	if n := s.Count(t, "SELECT count() FROM skuflow.products"); n != 3002 {
		t.Fatalf("the table has %d rows: the held batch was inserted again, or the new record lost", n)
	}
}

// Invariant 2: a topic whose partition count differs from the one recorded
// when data was first written is refused.
func TestRefusesChangedPartitionCount(t *testing.T) {
	s := newStack(t)
	p := s.Service(t, "processor")
	p.Stop(t)
	// The same ClickHouse, now with a topic of 3 partitions.
	br := testenv.Broker(t, testenv.Partitions(3))
	env := append([]string{}, s.Env...)
	env = append(env, "SKUFLOW_KAFKA_BROKERS="+br.Addr, "SKUFLOW_KAFKA_PARTITIONS=3")
	cmd := exec.Command(testenv.BuildBinary(t, "processor"))
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the processor ran against a changed partition count:\n%s", out)
	}
	if !strings.Contains(string(out), "had 6 partitions when data was first written and has 3 now") {
		t.Fatalf("unclear refusal:\n%s", out)
	}
}
