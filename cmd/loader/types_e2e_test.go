package main_test

import (
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// typesStack is a stack whose configuration declares the shipped types
// (skuflow.example.yaml: events and plays besides products), with the
// services named serving all of them.
func typesStack(t *testing.T, services ...string) (*testenv.Stack, map[string]*testenv.ServiceProcess) {
	t.Helper()
	st := testenv.NewStack(t, "SKUFLOW_CONFIG="+filepath.Join(testenv.RepoRoot(t), "skuflow.example.yaml"))
	running := map[string]*testenv.ServiceProcess{}
	for _, s := range services {
		running[s] = st.Service(t, s)
	}
	return st, running
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pushType runs `loader push --wait --type typ` and fails the test if it
// fails.
func pushType(t *testing.T, st *testenv.Stack, typ string, args ...string) string {
	t.Helper()
	out, stderr, err := st.Loader(t, append([]string{"push", "--wait", "--wait-timeout", "3m", "--no-progress", "--type", typ}, args...)...)
	if err != nil {
		t.Fatalf("push --type %s %v: %v\n%s\n%s", typ, args, err, out, stderr)
	}
	return stderr
}

// TestEventsKeyedByIDAndTime: events are keyed by (id, ts) with a
// millisecond ts. The seed's wrapped file, a file repeating one (id, ts)
// with new data (one spelling of the time in another offset), and an
// overlapping CSV file with a bad time are pushed in order, one of them
// twice with --force: events FINAL holds one row per (id, ts) with the last
// data, and the bad record is rejected with its line and reason.
func TestEventsKeyedByIDAndTime(t *testing.T) {
	// Events have no aggregate: --wait waits for the processor alone.
	st, _ := typesStack(t, "processor")
	dir := t.TempDir()
	seed := writeFile(t, dir, "seed.json", `{"records": [
  {"id": "10101", "data": "ABC", "ts": "2019-04-23T17:25:43.111Z"},
  {"id": "10101", "data": "DEF", "ts": "2019-04-23T17:25:43.112Z"}
]}
`)
	again := writeFile(t, dir, "again.ndjson", `{"id": "10101", "data": "XYZ", "ts": "2019-04-23T17:25:43.111Z"}
{"id": "10101", "data": "XYZ2", "ts": "2019-04-23T19:25:43.111+02:00", "note": "same instant, another offset"}
{"id": "20202", "data": "new", "ts": "2019-04-23 17:25:43.5"}
`)
	overlap := writeFile(t, dir, "overlap.csv", "id,data,ts\n"+
		"10101,from csv,2019-04-23T17:25:43.112Z\n"+
		"30303,bad time,2019-13-01\n"+
		"30303,good,2019-04-24T00:00:00Z\n")

	pushType(t, st, "events", seed)
	pushType(t, st, "events", again)
	pushType(t, st, "events", overlap)
	// The seed again, forced: its values are the last writes now.
	pushType(t, st, "events", "--force", seed)

	want := strings.Join([]string{
		"10101\t2019-04-23 17:25:43.111\tABC",
		"10101\t2019-04-23 17:25:43.112\tDEF",
		"20202\t2019-04-23 17:25:43.500\tnew",
		"30303\t2019-04-24 00:00:00.000\tgood",
	}, "\n")
	if got := st.CH.Query(t, "SELECT id, ts, data FROM skuflow.events FINAL ORDER BY id, ts"); got != want {
		t.Fatalf("events FINAL:\n%s\nwant\n%s", got, want)
	}
	if got := st.CH.Query(t, "SELECT count() FROM skuflow.events_final"); got != "4" {
		t.Fatalf("events_final holds %s rows, want 4", got)
	}
	// The record with a bad time is in ingest_errors with its line.
	got := st.CH.Query(t, "SELECT source, line, reason FROM skuflow.ingest_errors WHERE stage = 'validate'")
	if want := filepath.Base(overlap) + "\t3\tfield \"ts\": not an RFC 3339 time: \"2019-13-01\""; !strings.HasSuffix(got, want) || strings.Count(got, "\n") != 0 {
		t.Fatalf("ingest_errors: %q, want one row ending %q", got, want)
	}
	// Products are untouched: no table rows, and jobs say their type.
	if n := st.Count(t, "SELECT count() FROM skuflow.products"); n != 0 {
		t.Fatalf("products holds %d rows", n)
	}
	out, _, err := st.Loader(t, "jobs", "--json")
	if err != nil || strings.Count(out, `"type": "events"`) != 4 {
		t.Fatalf("loader jobs: %v\n%s", err, out)
	}
}

// playsFile writes a plays CSV file of rows (song, date, plays).
func playsFile(t *testing.T, dir, name string, rows [][3]string) string {
	t.Helper()
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"song", "date", "plays"})
	for _, r := range rows {
		_ = w.Write(r[:])
	}
	w.Flush()
	return writeFile(t, dir, name, b.String())
}

// playSums reads plays CSV files and sums plays by "song\tdate", each
// distinct file once: a file pushed again replaces its own records.
func playSums(t *testing.T, files ...string) map[string]int64 {
	t.Helper()
	seen := map[string]bool{}
	sums := map[string]int64{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(data)] {
			continue
		}
		seen[string(data)] = true
		rows, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows[1:] {
			n, err := strconv.ParseUint(r[2], 10, 64)
			if err != nil {
				continue // rejected by the loader
			}
			sums[r[0]+"\t"+r[1]] += int64(n)
		}
	}
	return sums
}

// tsvSums reads "song\tdate\tsum" lines.
func tsvSums(t *testing.T, out string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		i := strings.LastIndexByte(line, '\t')
		n, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got[testenv.UnescapeTSV(line[:i])] = n
	}
	return got
}

// checkPlays compares plays_by_song_date, and the same sum over plays
// FINAL, with want.
func checkPlays(t *testing.T, st *testenv.Stack, want map[string]int64) {
	t.Helper()
	agg := tsvSums(t, st.CH.Query(t, "SELECT song, toString(date), plays FROM skuflow.plays_by_song_date"))
	final := tsvSums(t, st.CH.Query(t, "SELECT song, toString(date), sum(plays) FROM skuflow.plays FINAL GROUP BY song, date"))
	if !maps.Equal(final, want) {
		t.Errorf("plays FINAL summed: %d groups, want %d; differences: %v", len(final), len(want), diffSums(final, want))
	}
	if !maps.Equal(agg, want) {
		t.Errorf("plays_by_song_date: %d groups, want %d; differences: %v", len(agg), len(want), diffSums(agg, want))
	}
}

func diffSums(got, want map[string]int64) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			out = append(out, fmt.Sprintf("%q: %d, want %d", k, got[k], want[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%q: %d, want none", k, got[k]))
		}
	}
	if len(out) > 10 {
		out = append(out[:10], "...")
	}
	return out
}

// TestPlaysSummedBySongAndDate: plays have no natural key; a record is its
// file and place. Three files (one with the same (song, date) on many
// lines), one pushed twice with --force: plays_by_song_date is the sum over
// the distinct files' rows, exactly. Then a large file is pushed while the
// aggregator is killed with SIGKILL and started again: still exact.
func TestPlaysSummedBySongAndDate(t *testing.T) {
	st, svc := typesStack(t, "processor", "aggregator")
	agg := svc["aggregator"]
	dir := t.TempDir()
	var same [][3]string
	for i := range 50 {
		same = append(same, [3]string{"Oh, \"Hey\" Jude", "2024-03-01", strconv.Itoa(i)})
	}
	a := playsFile(t, dir, "a.csv", same)
	b := playsFile(t, dir, "b.csv", [][3]string{{"Oh, \"Hey\" Jude", "2024-03-01", "1000"}, {"Yesterday", "2024-03-01", "7"}, {"Yesterday", "2024-03-02", "0"}})
	c := playsFile(t, dir, "c.csv", [][3]string{{"Yesterday", "2024-03-02", "5"}, {"Help!", "2024-03-03", "9"}, {"Help!", "2024-03-03", "nine"}})

	pushType(t, st, "plays", a)
	pushType(t, st, "plays", b)
	pushType(t, st, "plays", c)
	pushType(t, st, "plays", "--force", b)
	want := playSums(t, a, b, c, b)
	if want["Oh, \"Hey\" Jude\t2024-03-01"] != 1225+1000 {
		t.Fatalf("model: %v", want)
	}
	checkPlays(t, st, want)
	if got := st.CH.Query(t, "SELECT reason FROM skuflow.ingest_errors WHERE stage = 'validate'"); !strings.Contains(got, `field "plays": not a non-negative integer that fits UInt64: "nine"`) {
		t.Fatalf("the bad count was not rejected with its reason: %q", got)
	}
	// The same file pushed again without --force is refused: a re-sent
	// file never counts twice.
	if out, stderr, err := st.Loader(t, "push", "--type", "plays", "--no-progress", b); err != nil || !strings.Contains(stderr, "refused") {
		t.Fatalf("re-push of b: %v\n%s\n%s", err, out, stderr)
	}

	big := testenv.Gen(t, dir, "big.csv", "--type", "plays", "--rows", "300000", "--songs", "2000")
	done := st.StartPush(t, big, "--type", "plays")
	// Killed once it has written counts of the big file: partial state in
	// ClickHouse, more records behind it on the topic.
	st.WaitCount(t, "SELECT count() FROM skuflow.plays", 20000, 2*time.Minute)
	agg.Kill(t)
	time.Sleep(500 * time.Millisecond)
	agg.Start(t)
	done()
	checkPlays(t, st, playSums(t, a, b, c, big))
}

// TestPlaysFromStdinAndURL: plays are keyed by their input's content, so
// the loader saves stdin or a URL's body to a file first (in TMPDIR) and
// pushes that: a stream counts as the same bytes in a file would, once;
// the file's content pushed after it is refused, --force replaces the
// stream's own records, and no spool file is left behind.
func TestPlaysFromStdinAndURL(t *testing.T) {
	st, _ := typesStack(t, "processor", "aggregator")
	dir := t.TempDir()
	a := playsFile(t, dir, "a.csv", [][3]string{{"Yesterday", "2024-03-01", "7"}, {"Help!", "2024-03-03", "9"}})
	b := playsFile(t, dir, "b.csv", [][3]string{{"Yesterday", "2024-03-01", "5"}, {"Something", "2024-03-04", "1"}})
	spoolDir := t.TempDir()
	env := append(append([]string{}, st.Env...), "TMPDIR="+spoolDir)
	push := func(stdin []byte, args ...string) (string, int) {
		t.Helper()
		_, stderr, code := run(t, env, stdin, append([]string{"push", "--wait", "--wait-timeout", "3m", "--no-progress", "--type", "plays"}, args...)...)
		return stderr, code
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if stderr, code := push(data, "--format", "csv", "-"); code != 0 {
		t.Fatalf("plays from stdin: exit %d\n%s", code, stderr)
	}
	if stderr, code := push(nil, a); code != 0 || !strings.Contains(stderr, "refused: the same content") {
		t.Fatalf("the file of what stdin held, after it: exit %d\n%s", code, stderr)
	}

	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	url := srv.URL + "/b.csv?signature=s3cr3t-sig"
	for _, args := range [][]string{{url}, {"--force", url}} {
		stderr, code := push(nil, args...)
		if code != 0 {
			t.Fatalf("plays from a URL %v: exit %d\n%s", args, code, stderr)
		}
		if strings.Contains(stderr, "s3cr3t") {
			t.Fatalf("the URL's signature is in the output:\n%s", stderr)
		}
	}
	// A URL that cannot be read fails a job with the reason.
	if stderr, code := push(nil, srv.URL+"/missing.csv"); code == 0 || !strings.Contains(stderr, "404") {
		t.Fatalf("plays from a missing URL: exit %d\n%s", code, stderr)
	}
	if row := st.CH.Query(t, "SELECT state, error LIKE '%404%' FROM skuflow.ingest_jobs FINAL WHERE source LIKE '%missing.csv'"); row != "failed\t1" {
		t.Fatalf("job of the missing URL: %q", row)
	}
	checkPlays(t, st, playSums(t, a, b))
	// Each job has the stream's name, and the size saved.
	sources := st.CH.Query(t, "SELECT source, size, records_produced FROM skuflow.ingest_jobs FINAL WHERE type = 'plays' AND state = 'done' ORDER BY source")
	bSize := fileSize(t, b)
	want := fmt.Sprintf("-\t%d\t2\n%s/b.csv?signature=REDACTED\t%d\t2\n%[2]s/b.csv?signature=REDACTED\t%[3]d\t2", len(data), srv.URL, bSize)
	if sources != want {
		t.Fatalf("plays jobs:\n%s\nwant\n%s", sources, want)
	}
	if left, _ := filepath.Glob(filepath.Join(spoolDir, "*")); len(left) != 0 {
		t.Fatalf("spool files left behind: %v", left)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestWatchRoutesTypes: the watcher takes inbox/TYPE/ as records of TYPE,
// with its own done/ and failed/; files directly in the inbox stay
// products.
func TestWatchRoutesTypes(t *testing.T) {
	st, _ := typesStack(t, "processor", "aggregator")
	inbox := t.TempDir()
	st.Watcher(t, inbox, "SKUFLOW_WATCH_QUIET_PERIOD=200ms", "SKUFLOW_WATCH_POLL_INTERVAL=100ms")
	staging := t.TempDir()
	drop := func(dir, name, body string) {
		t.Helper()
		src := writeFile(t, staging, name, body)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(src, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	drop(filepath.Join(inbox, "events"), "e.ndjson", `{"id":"1","data":"a","ts":"2020-01-01T00:00:00.001Z"}`+"\n")
	drop(filepath.Join(inbox, "plays"), "p.csv", "song,date,plays\nHelp!,2020-01-01,3\nHelp!,2020-01-01,4\n")
	drop(inbox, "products.ndjson", `{"sku":"s1","name":"n"}`+"\n")
	for _, f := range []string{"events/done/e.ndjson", "plays/done/p.csv", "done/products.ndjson"} {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if _, err := os.Stat(filepath.Join(inbox, f)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not appear; inbox: %s", f, listTree(inbox))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Filed in done/ once loaded: the tables hold the records now.
	if got := st.CH.Query(t, "SELECT id, ts, data FROM skuflow.events FINAL"); got != "1\t2020-01-01 00:00:00.001\ta" {
		t.Fatalf("events: %q", got)
	}
	if got := st.CH.Query(t, "SELECT song, date, plays FROM skuflow.plays_by_song_date"); got != "Help!\t2020-01-01\t7" {
		t.Fatalf("plays_by_song_date: %q", got)
	}
	if got := st.CH.Query(t, "SELECT sku, name FROM skuflow.products FINAL"); got != "s1\tn" {
		t.Fatalf("products: %q", got)
	}
	if got := st.CH.Query(t, "SELECT type, state FROM skuflow.ingest_jobs FINAL ORDER BY type"); got != "events\tdone\nplays\tdone\nproducts\tdone" {
		t.Fatalf("jobs: %q", got)
	}
}

func listTree(dir string) string {
	var names []string
	_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	return strings.Join(names, " ")
}

// TestEveryColumnType declares a type with a column of every type, some
// nullable, and loads JSON and CSV records of it through the real
// processor and ClickHouse 18.16: each value is stored as declared, a
// missing one as its default or NULL, and a value that does not fit is
// rejected with its field and reason.
func TestEveryColumnType(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "skuflow.yaml", `
types:
  readings:
    key: [station, at]
    columns:
      - {name: station, type: Int64, required: true}
      - {name: at, type: DateTime, required: true}
      - {name: seq, type: UInt64}
      - {name: value, type: Float64, nullable: true}
      - {name: ok, type: Bool}
      - {name: day, type: Date, nullable: true}
      - {name: seen, type: Timestamp}
      - {name: note, type: String, nullable: true}
`)
	st := testenv.NewStack(t, "SKUFLOW_CONFIG="+cfg)
	st.Service(t, "processor")
	dir := t.TempDir()
	js := writeFile(t, dir, "r.ndjson", `{"station": 1, "at": "2024-02-29T23:59:59+01:00", "seq": 18446744073709551615, "value": -0.5, "ok": true, "day": "2024-02-29", "seen": "2024-02-29T22:59:59.999Z", "note": "n", "x": [1]}
{"station": "2", "at": "2024-03-01 00:00:00"}
{"station": 3, "at": "2024-03-01T00:00:00Z", "ok": "maybe"}
`)
	csvFile := writeFile(t, dir, "r.csv", "station,at,seq,value,ok,day,seen,note\n4,2024-03-02T10:00:00Z,7,1e3,0,,2024-03-02T10:00:00.5Z,\n")
	pushType(t, st, "readings", js)
	pushType(t, st, "readings", csvFile)
	got := st.CH.Query(t, "SELECT station, toString(at), seq, toString(value), ok, toString(day), seen, toString(note), extra FROM skuflow.readings FINAL ORDER BY station")
	want := strings.Join([]string{
		"1\t2024-02-29 22:59:59\t18446744073709551615\t-0.5\t1\t2024-02-29\t2024-02-29 22:59:59.999\tn\t{\"x\":[1]}",
		"2\t2024-03-01 00:00:00\t0\t\\N\t0\t\\N\t1970-01-01 00:00:00.000\t\\N\t{}",
		// A blank CSV cell: NULL for a nullable Date, "" for a String.
		"4\t2024-03-02 10:00:00\t7\t1000\t0\t\\N\t2024-03-02 10:00:00.500\t\t{}",
	}, "\n")
	if got != want {
		t.Fatalf("readings FINAL:\n%s\nwant\n%s", got, want)
	}
	if got := st.CH.Query(t, "SELECT line, reason FROM skuflow.ingest_errors"); got != "3\tfield \"ok\": not a boolean (true, false, 1 or 0): \"maybe\"" {
		t.Fatalf("ingest_errors: %q", got)
	}
}

// TestTypePartitions: a type may declare its own topic's partition count
// (types.T.partitions); the loader creates the topic with it and keys
// records over it, the processor and the aggregator take it, while
// products keeps kafka.partitions. The table and its count are exact.
func TestTypePartitions(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "skuflow.yaml", `
types:
  tiny:
    partitions: 3
    key: [id]
    columns:
      - {name: id, type: String, required: true}
      - {name: name, type: String}
    aggregates:
      - {name: tiny_by_name, by: [name]}
`)
	st := testenv.NewStack(t, "SKUFLOW_CONFIG="+cfg)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	var lines strings.Builder
	last := map[string]string{}
	for i := range 2000 {
		id, name := fmt.Sprintf("t-%d", i%1500), fmt.Sprintf("n%d", i%37)
		fmt.Fprintf(&lines, `{"id":%q,"name":%q}`+"\n", id, name)
		last[id] = name
	}
	pushType(t, st, "tiny", writeFile(t, t.TempDir(), "tiny.ndjson", lines.String()))
	pushType(t, st, "products", testenv.Gen(t, t.TempDir(), "p.ndjson", "--rows", "500"))

	for topic, want := range map[string]int{"tiny": 3, "products": 6} {
		var parts []string
		for _, r := range consume(t, st.Broker.Addr, topic) {
			if !slices.Contains(parts, strconv.Itoa(r.Partition)) {
				parts = append(parts, strconv.Itoa(r.Partition))
			}
		}
		slices.Sort(parts)
		if len(parts) != want || parts[len(parts)-1] != strconv.Itoa(want-1) {
			t.Errorf("records of topic %s are on partitions %v, want 0-%d", topic, parts, want-1)
		}
	}
	counts := map[string]int{}
	for _, name := range last {
		counts[name]++
	}
	var want []string
	for name, n := range counts {
		want = append(want, fmt.Sprintf("%s\t%d", name, n))
	}
	slices.Sort(want)
	if got := st.CH.Query(t, "SELECT name, keys FROM skuflow.tiny_by_name ORDER BY name"); got != strings.Join(want, "\n") {
		t.Errorf("tiny_by_name:\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if n := st.Count(t, "SELECT count() FROM skuflow.tiny FINAL"); n != int64(len(last)) {
		t.Errorf("tiny FINAL holds %d rows, want %d", n, len(last))
	}
	if got := st.CH.Query(t, "SELECT topic, argMin(partitions, recorded_at) FROM skuflow.topics GROUP BY topic ORDER BY topic"); got != "products\t6\ntiny\t3" {
		t.Errorf("recorded partitions:\n%s", got)
	}
}
