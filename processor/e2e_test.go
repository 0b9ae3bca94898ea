package processor_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// stack is one test's real services: ClickHouse, the broker, and the
// environment that points skuflow's commands at them.
type stack struct {
	ch  *testenv.ClickHouseServer
	br  *testenv.BrokerProcess
	env []string
	agg *testenv.ServiceProcess
}

func newStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	s := &stack{ch: testenv.ClickHouse(t), br: testenv.Broker(t)}
	s.env = append([]string{
		"SKUFLOW_KAFKA_BROKERS=" + s.br.Addr,
		"SKUFLOW_CLICKHOUSE_ADDR=" + s.ch.TCPAddr,
		// Small, frequent batches, so that crashes land between them.
		"SKUFLOW_PROCESSOR_FLUSH_INTERVAL=200ms",
		"SKUFLOW_PROCESSOR_BATCH_ROWS=20000",
		"SKUFLOW_PROCESSOR_SESSION_TIMEOUT=3s",
		"SKUFLOW_AGGREGATOR_FLUSH_INTERVAL=200ms",
		"SKUFLOW_AGGREGATOR_SESSION_TIMEOUT=3s",
	}, extraEnv...)
	return s
}

func (s *stack) processor(t *testing.T) *testenv.ServiceProcess {
	return testenv.Service(t, "processor", s.env)
}

// aggregator starts the stack's aggregator, once: `loader push --wait`
// waits for its group too.
func (s *stack) aggregator(t *testing.T) {
	t.Helper()
	if s.agg == nil {
		s.agg = testenv.Service(t, "aggregator", s.env)
	}
}

// loader runs the loader with the stack's environment.
func (s *stack) loader(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(testenv.BuildBinary(t, "loader"), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), s.env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// pushWait pushes files and waits until the processor has loaded them.
func (s *stack) pushWait(t *testing.T, files ...string) {
	t.Helper()
	s.aggregator(t)
	out, stderr, err := s.loader(t, append([]string{"push", "--wait", "--wait-timeout", "5m", "--no-progress", "--json"}, files...)...)
	if err != nil {
		t.Fatalf("push %v: %v\n%s\n%s", files, err, out, stderr)
	}
}

// gen writes a synthetic NDJSON file.
func gen(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	cmd := exec.Command(testenv.BuildBinary(t, "loader"), append([]string{"gen", "--out", path}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen: %v: %s", err, out)
	}
	return path
}

type product struct{ Sku, Name, Description string }

// lastWrites reads NDJSON files in push order and returns the last record
// per sku: what the table must hold.
func lastWrites(t *testing.T, files ...string) map[string]product {
	t.Helper()
	want := map[string]product{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var p product
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			want[p.Sku] = p
		}
		fh.Close()
	}
	return want
}

// checkFinal compares `products FINAL` with want, row by row, streaming the
// table out of clickhouse-client.
func (s *stack) checkFinal(t *testing.T, want map[string]product) {
	t.Helper()
	cmd := s.ch.ClientCmd("--query", "SELECT sku, name, description FROM skuflow.products FINAL FORMAT TSV")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool, len(want))
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	bad := 0
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			t.Fatalf("row %q", sc.Text())
		}
		got := product{f[0], unescapeTSV(f[1]), unescapeTSV(f[2])}
		w, ok := want[got.Sku]
		switch {
		case seen[got.Sku]:
			t.Errorf("sku %q twice in FINAL", got.Sku)
			bad++
		case !ok:
			t.Errorf("sku %q was never pushed", got.Sku)
			bad++
		case got != w:
			t.Errorf("sku %q: row %+v, last write %+v (a stale version)", got.Sku, got, w)
			bad++
		}
		seen[got.Sku] = true
		if bad > 10 {
			t.Fatal("too many differences")
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clickhouse-client: %v", err)
	}
	if len(seen) != len(want) {
		missing := 0
		for sku := range want {
			if !seen[sku] && missing < 5 {
				t.Errorf("sku %q is missing", sku)
				missing++
			}
		}
		t.Fatalf("FINAL has %d skus, %d were pushed", len(seen), len(want))
	}
}

func unescapeTSV(s string) string {
	return strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\\`, `\`, `\'`, `'`, `\r`, "\r").Replace(s)
}

func (s *stack) count(t *testing.T, query string) int64 {
	t.Helper()
	var n int64
	fmt.Sscan(s.ch.Query(t, query), &n)
	return n
}

// The first acceptance test: the real products file, loaded,
// equals the expected last write per sku exactly.
func TestProducts2000Final(t *testing.T) {
	s := newStack(t)
	s.processor(t)
	s.pushWait(t, testenv.ExternalTestdata(t, "products-2000.csv"))

	got := s.ch.Query(t, "SELECT sku, name, description FROM skuflow.products FINAL ORDER BY sku FORMAT CSVWithNames")
	wantFile, err := os.ReadFile(testenv.ExternalTestdata(t, "products-2000.expected_final.csv"))
	if err != nil {
		t.Fatal(err)
	}
	gotRows, err := csv.NewReader(strings.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantRows, err := csv.NewReader(bytes.NewReader(wantFile)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(gotRows) != len(wantRows) {
		t.Fatalf("%d rows, want %d", len(gotRows), len(wantRows))
	}
	for i := range wantRows {
		if strings.Join(gotRows[i], "\x00") != strings.Join(wantRows[i], "\x00") {
			t.Fatalf("row %d: %q, want %q", i, gotRows[i], wantRows[i])
		}
	}
	// The view applies FINAL for users.
	if n := s.count(t, "SELECT count() FROM skuflow.products_final"); n != 1998 {
		t.Fatalf("products_final has %d rows, want 1998", n)
	}
	// Provenance: every row names its job, source and line.
	if n := s.count(t, "SELECT count() FROM skuflow.products WHERE _job = '' OR _source = '' OR _line = 0"); n != 0 {
		t.Fatalf("%d rows without provenance", n)
	}
}

// Re-pushes and renames: the table holds the last write per sku.
func TestRepushAndRenames(t *testing.T) {
	s := newStack(t)
	s.processor(t)
	// Background merges collapse the older versions, and would make the
	// count of rows the table saw (below) depend on timing.
	s.ch.Query(t, "SYSTEM STOP MERGES skuflow.products")
	dir := t.TempDir()
	first := gen(t, dir, "first.ndjson", "--rows", "20000", "--dup-rate", "0.1", "--rename-rate", "0.1", "--seed", "11")
	// The renames file: the same skus again, every third with a new name.
	var b strings.Builder
	for i, p := range sortedValues(lastWrites(t, first)) {
		if i%3 == 0 {
			p.Name += " (renamed)"
		}
		line, _ := json.Marshal(map[string]string{"sku": p.Sku, "name": p.Name, "description": p.Description})
		b.Write(line)
		b.WriteByte('\n')
	}
	renames := filepath.Join(dir, "renames.ndjson")
	os.WriteFile(renames, []byte(b.String()), 0o644)

	s.pushWait(t, first)
	s.pushWait(t, first)
	s.pushWait(t, renames)
	s.checkFinal(t, lastWrites(t, first, first, renames))
	// Every record is in the table, not only the last per sku: nothing was
	// skipped (FINAL hides the older versions).
	if n := s.count(t, "SELECT count() FROM skuflow.products"); n < 40000 {
		t.Fatalf("the table saw %d rows, fewer than were pushed", n)
	}
}

func sortedValues(m map[string]product) []product {
	out := make([]product, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	// Map order would make the renamed third random; sort for a stable test.
	sort.Slice(out, func(i, j int) bool { return out[i].Sku < out[j].Sku })
	return out
}

// waitRows waits until the table holds at least n rows.
func (s *stack) waitRows(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for s.count(t, "SELECT count() FROM skuflow.products") < n {
		if time.Now().After(deadline) {
			t.Fatalf("the table did not reach %d rows in %s", n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
