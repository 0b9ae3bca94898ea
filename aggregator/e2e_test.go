package aggregator_test

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// The real products file: products_agg equals the expected counts exactly;
// after a second file renames some of its skus, it equals the counts of
// products FINAL.
func TestProducts2000CountsThroughRenames(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	s.PushWait(t, testenv.ExternalTestdata(t, "products-2000.csv"))

	rows := testenv.ReadCSV(t, testenv.ExternalTestdata(t, "products-2000.expected_counts.csv"))
	got := s.CH.Query(t, "SELECT name, no_of_products FROM skuflow.products_agg ORDER BY name FORMAT CSV")
	gotRows, err := csv.NewReader(strings.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(gotRows) != len(rows)-1 {
		t.Fatalf("products_agg has %d names, want %d", len(gotRows), len(rows)-1)
	}
	for i, want := range rows[1:] {
		if gotRows[i][0] != want[0] || gotRows[i][1] != want[1] {
			t.Fatalf("row %d: %q, want %q", i+1, gotRows[i], want)
		}
	}

	// Rename every fifth sku of the file (some to names that exist, some to
	// new ones), and repeat some unchanged.
	current := strings.Split(s.CH.Query(t, "SELECT sku, name FROM skuflow.products FINAL ORDER BY sku FORMAT TSV"), "\n")
	names := strings.Split(s.CH.Query(t, "SELECT name FROM skuflow.products_agg ORDER BY name"), "\n")
	var b strings.Builder
	for i, row := range current {
		sku, name, _ := strings.Cut(row, "\t")
		switch {
		case i%5 == 0:
			name = names[(i*7)%len(names)]
		case i%5 == 1:
			name = "Renamed " + strconv.Itoa(i%13)
		case i%5 == 2:
			continue
		default: // a repeat with the same name
			if i > 200 {
				continue
			}
		}
		line, _ := json.Marshal(map[string]string{"sku": sku, "name": name, "description": "second file"})
		b.Write(line)
		b.WriteByte('\n')
	}
	renames := filepath.Join(t.TempDir(), "renames.ndjson")
	os.WriteFile(renames, []byte(b.String()), 0o644)
	s.PushWait(t, renames)

	want := map[string]int64{}
	for _, line := range strings.Split(s.CH.Query(t, "SELECT name, count() FROM skuflow.products FINAL GROUP BY name FORMAT TSV"), "\n") {
		name, n, _ := strings.Cut(line, "\t")
		c, _ := strconv.ParseInt(n, 10, 64)
		want[testenv.UnescapeTSV(name)] = c
	}
	if want["Renamed 1"] == 0 {
		t.Fatal("the renames did not reach products")
	}
	s.CheckAgg(t, want)
}

// Invariant 3 under a crash: kill -9 of the aggregator while it writes
// counts, three times over a stream with renames and repeats; the counts
// stay exact. The processor is stopped during the kills, so that the
// aggregator reads the stream from the topic (a records table behind it)
// and is busy writing; it starts at the end. Restarts with the table
// ahead are in TestRestartRebuildsState and the drills.
func TestKillAggregatorMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 300,000 rows")
	}
	s := testenv.NewStack(t)
	proc := s.Service(t, "processor")
	proc.Stop(t)
	a := s.Service(t, "aggregator")
	file := testenv.Gen(t, t.TempDir(), "stream.ndjson", "--rows", "300000", "--dup-rate", "0.1", "--rename-rate", "0.2", "--names", "500", "--seed", "8")
	want := testenv.NameCounts(testenv.LastWrites(t, file))

	started := time.Now()
	done := s.StartPush(t, file)
	for kill := 1; kill <= 3; kill++ {
		// Spread the kills over the stream, after commits: a restart then
		// must load the state of what came before.
		s.WaitCommitted(t, "skuflow-aggregator", int64(kill)*60000, 2*time.Minute)
		if !s.WaitInsertRunning(t, "skuflow.product_counts", started, time.Minute) {
			t.Fatalf("kill %d: no write of counts seen: the test proves nothing", kill)
		}
		a.Kill(t)
		t.Logf("kill %d: killed the aggregator while it wrote counts", kill)
		started = time.Now()
		a.Start(t)
	}
	proc.Start(t)
	done()
	s.CheckAgg(t, want)
}

// Two instances share the partitions; the counts are exact.
func TestTwoAggregators(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	a := s.Service(t, "aggregator")
	b := s.Service(t, "aggregator")
	file := testenv.Gen(t, t.TempDir(), "shared.ndjson", "--rows", "100000", "--dup-rate", "0.05", "--rename-rate", "0.2", "--names", "300", "--seed", "12")
	// The push is over in about a second, as soon as the rebalance that
	// gives b its share: both must own partitions before it starts.
	for _, p := range []*testenv.ServiceProcess{a, b} {
		p.WaitLog(t, "msg=\"partition assigned", 30*time.Second)
	}
	s.PushWait(t, file)
	s.CheckAgg(t, testenv.NameCounts(testenv.LastWrites(t, file)))
	a.Stop(t)
	b.Stop(t)
	for _, p := range []*testenv.ServiceProcess{a, b} {
		m := regexp.MustCompile(`msg=stopped .*applied=(\d+)`).FindStringSubmatch(p.Log(5))
		if m == nil || m[1] == "0" {
			t.Errorf("aggregator pid %d applied no record: the partitions were not shared\n%s", p.Pid(), p.Log(10))
		}
	}
}

// A restarted aggregator loads its state from ClickHouse, and what it
// counts after the restart is exact.
func TestRestartRebuildsState(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	a := s.Service(t, "aggregator")
	dir := t.TempDir()
	first := testenv.Gen(t, dir, "first.ndjson", "--rows", "30000", "--rename-rate", "0.1", "--names", "200", "--seed", "30")
	s.PushWait(t, first)
	a.Stop(t)
	a.Start(t)
	// The second file renames skus of the first: only a rebuilt state
	// knows which names to take them from.
	second := testenv.Gen(t, dir, "second.ndjson", "--rows", "30000", "--rename-rate", "0.5", "--names", "200", "--seed", "30")
	s.PushWait(t, second)
	s.CheckAgg(t, testenv.NameCounts(testenv.LastWrites(t, first, second)))
	if !a.LogContains("state loaded from ClickHouse") {
		t.Fatalf("no load logged:\n%s", a.Log(30))
	}
}
