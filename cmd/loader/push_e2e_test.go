package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// topicRecord is one record as the Debian kcat reads it off the topic.
type topicRecord struct {
	Partition int
	Offset    int64
	Timestamp int64 // Unix milliseconds
	Key       string
	Value     map[string]string
	Headers   string
}

// consume reads the whole topic with kcat, a Kafka client nobody here wrote.
func consume(t *testing.T, addr, topic string) []topicRecord {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: run 'make deps'")
	}
	cmd := exec.Command(kcat, "-C", "-b", addr, "-t", topic, "-e", "-q", "-f", "%p\t%o\t%T\t%k\t%h\t%s\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, stderr.String())
	}
	var recs []topicRecord
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, "\t", 6)
		if len(parts) != 6 {
			t.Fatalf("kcat line %q", line)
		}
		var r topicRecord
		r.Partition, _ = strconv.Atoi(parts[0])
		r.Offset, _ = strconv.ParseInt(parts[1], 10, 64)
		r.Timestamp, _ = strconv.ParseInt(parts[2], 10, 64)
		r.Key, r.Headers = parts[3], parts[4]
		if err := json.Unmarshal([]byte(parts[5]), &r.Value); err != nil {
			t.Fatalf("value %q is not a JSON object of strings: %v", parts[5], err)
		}
		recs = append(recs, r)
	}
	return recs
}

// pushResult is one result of `loader push --json`: the job as
// ingest_jobs holds it, and whether an earlier job's content refused it.
type pushResult struct {
	ID          string           `json:"id"`
	Source      string           `json:"source"`
	Size        int64            `json:"size_bytes"`
	SHA256      string           `json:"sha256"`
	Format      string           `json:"format"`
	Compression string           `json:"compression"`
	Origin      string           `json:"origin"`
	Read        int64            `json:"records_read"`
	Produced    int64            `json:"records_produced"`
	Rejected    int64            `json:"records_rejected"`
	EndOffsets  map[string]int64 `json:"end_offsets"`
	State       string           `json:"state"`
	Error       string           `json:"error"`
	RefusedBy   string           `json:"refused_by"`
	LoadedSince []string         `json:"loaded_since"`
}

type pushSummary struct {
	OK      bool         `json:"ok"`
	Results []pushResult `json:"results"`
	Wait    *struct {
		Groups []string `json:"groups"`
		Error  string   `json:"error"`
	} `json:"wait"`
}

// loader runs the built loader with args, against no stack, and returns
// stdout, stderr and the exit code.
func loader(t *testing.T, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	return run(t, nil, stdin, args...)
}

// run runs the built loader with env (KEY=VALUE settings, such as a
// stack's Env) added to the test's environment less its SKUFLOW_*
// variables, and returns stdout, stderr and the exit code.
func run(t *testing.T, env []string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	cmd := loaderCmd(t, env, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// loaderCmd is the built loader with args, run in an empty folder (no
// skuflow.yaml from the repository) with env added to the test's
// environment less its SKUFLOW_* variables.
func loaderCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testenv.BuildBinary(t, "loader"), args...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKUFLOW_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Without a stack, nothing answers: never a local one on the default
	// ports. Port 1 refuses at once.
	cmd.Env = append(cmd.Env, "SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:1", "SKUFLOW_KAFKA_BROKERS=127.0.0.1:1")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// push runs `loader push --json` against the stack and checks that its
// exit code agrees with the summary.
func push(t *testing.T, s *testenv.Stack, args ...string) pushSummary {
	t.Helper()
	return pushIn(t, s, nil, args...)
}

// pushIn is push with stdin.
func pushIn(t *testing.T, s *testenv.Stack, stdin []byte, args ...string) pushSummary {
	t.Helper()
	out, stderr, code := run(t, s.Env, stdin, append([]string{"push", "--json", "--no-progress"}, args...)...)
	var sum pushSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("push %v: exit %d, summary %q: %v\nstderr: %s", args, code, out, err, stderr)
	}
	if (code == 0) != sum.OK {
		t.Fatalf("exit %d but ok=%v; stderr: %s", code, sum.OK, stderr)
	}
	return sum
}

// The acceptance test: the real products file, 2,000 rows, ends up
// on the topic keyed by sku, readable by kcat, in file order per key.
func TestPushProducts2000(t *testing.T) {
	st := testenv.NewStack(t)
	br := st.Broker
	file := testenv.ExternalTestdata(t, "products-2000.csv")
	start := time.Now()
	s := push(t, st, file)
	end := time.Now()
	if !s.OK || len(s.Results) != 1 {
		t.Fatalf("summary %+v", s)
	}
	r := s.Results[0]
	if r.Format != "csv" || r.Read != 2000 || r.Produced != 2000 || r.Rejected != 0 || r.Error != "" ||
		r.State != "produced" || r.ID == "" || r.RefusedBy != "" {
		t.Fatalf("result %+v", r)
	}

	rows := testenv.ReadCSV(t, file)
	header, rows := rows[0], rows[1:]
	if strings.Join(header, ",") != "name,sku,description" {
		t.Fatalf("header %v", header)
	}

	recs := consume(t, br.Addr, "products")
	if len(recs) != 2000 {
		t.Fatalf("kcat read %d records, want 2000", len(recs))
	}
	// Group by key in topic order (kcat reads each partition in order).
	byKey := map[string][]topicRecord{}
	for _, rec := range recs {
		byKey[rec.Key] = append(byKey[rec.Key], rec)
	}
	if len(byKey) != 1998 {
		t.Fatalf("%d distinct keys, want 1998", len(byKey))
	}
	seen := map[string]int{}
	for i, row := range rows {
		sku := row[1]
		got := byKey[sku]
		n := seen[sku]
		seen[sku]++
		if n >= len(got) {
			t.Fatalf("row %d: sku %q has only %d records on the topic", i+2, sku, len(got))
		}
		rec := got[n]
		// Stamped when produced, to the millisecond.
		if rec.Timestamp < start.UnixMilli() || rec.Timestamp > end.UnixMilli() {
			t.Fatalf("sku %q: timestamp %d, outside the push (%d to %d)", sku, rec.Timestamp, start.UnixMilli(), end.UnixMilli())
		}
		want := map[string]string{"name": row[0], "sku": row[1], "description": row[2]}
		if fmt.Sprint(rec.Value) != fmt.Sprint(want) {
			t.Fatalf("sku %q occurrence %d: value %v, want %v", sku, n+1, rec.Value, want)
		}
		// One header, "skuflow=JOB LINE SOURCE" as kcat prints it; a CSV
		// row is at least on line i+2 (after the header, and after any
		// quoted line breaks before it).
		prov, ok := strings.CutPrefix(rec.Headers, "skuflow="+r.ID+" ")
		lineNo, src, _ := strings.Cut(prov, " ")
		if n, err := strconv.Atoi(lineNo); !ok || err != nil || n < i+2 || src != file {
			t.Fatalf("row %d: headers %q, want skuflow=%s LINE %s", i, rec.Headers, r.ID, file)
		}
		if n > 0 && (rec.Partition != got[n-1].Partition || rec.Offset <= got[n-1].Offset) {
			t.Fatalf("sku %q: occurrence %d at %d/%d is not after %d/%d in the same partition",
				sku, n+1, rec.Partition, rec.Offset, got[n-1].Partition, got[n-1].Offset)
		}
	}
	// The end offsets the loader reports are the last offset per partition.
	last := map[string]int64{}
	for _, rec := range recs {
		last[strconv.Itoa(rec.Partition)] = max(last[strconv.Itoa(rec.Partition)], rec.Offset)
	}
	if fmt.Sprint(last) != fmt.Sprint(r.EndOffsets) {
		t.Fatalf("end offsets %v, topic says %v", r.EndOffsets, last)
	}
}

// Bad records are reported with file, line and reason, counted, and the
// rest of the file goes on.
func TestPushRejectsBadRecordsAndGoesOn(t *testing.T) {
	st := testenv.NewStack(t)
	br := st.Broker
	dir := t.TempDir()
	file := filepath.Join(dir, "mixed.ndjson")
	os.WriteFile(file, []byte(strings.Join([]string{
		`{"sku":"a","name":"A"}`,
		`{"name":"no sku"}`,
		`{"sku":"b","name":`,
		`[1,2]`,
		`{"sku":"","name":"empty sku"}`,
		`{"sku":"c","name":"C","color":"red"}`,
	}, "\n")+"\n"), 0o644)
	out, stderr, code := run(t, st.Env, nil, "push", file)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
	for _, want := range []string{
		file + `:2: field "sku": required field is missing`,
		file + ":3: ",
		file + ":4: ",
		file + `:5: field "sku": required field is empty`,
		"6 read, 2 produced, 4 rejected",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	recs := consume(t, br.Addr, "products")
	if len(recs) != 2 || recs[0].Key+recs[1].Key != "ac" && recs[0].Key+recs[1].Key != "ca" {
		t.Fatalf("topic holds %+v", recs)
	}
}

// Compressed files, stdin, URLs and folders all push; gen's files are read
// back whole.
func TestPushInputs(t *testing.T) {
	st := testenv.NewStack(t)
	br := st.Broker
	dir := t.TempDir()
	var total int64
	for _, name := range []string{"a.json", "b.ndjson.gz", "c.csv.zst", "d.csv"} {
		_, stderr, code := loader(t, nil, "gen", "--rows", "300", "--seed", fmt.Sprint(len(name)+int(total)), "--out", filepath.Join(dir, name))
		if code != 0 {
			t.Fatalf("gen %s: %s", name, stderr)
		}
		total += 300
	}
	os.WriteFile(filepath.Join(dir, ".hidden.json"), []byte("not records"), 0o644)
	s := push(t, st, dir)
	if !s.OK || len(s.Results) != 4 {
		t.Fatalf("summary %+v", s)
	}
	formats := ""
	for _, r := range s.Results {
		formats += r.Format + " "
		if r.Produced != 300 || r.Rejected != 0 {
			t.Fatalf("%s: %+v", r.Source, r)
		}
	}
	if formats != "json ndjson csv csv " {
		t.Fatalf("formats %q", formats)
	}

	data, _ := os.ReadFile(filepath.Join(dir, "d.csv"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(data) }))
	defer srv.Close()
	s = push(t, st, srv.URL+"/products.csv")
	if !s.OK || s.Results[0].Produced != 300 {
		t.Fatalf("URL push: %+v", s)
	}

	out, stderr, code := run(t, st.Env, []byte(`{"sku":"in-1"}`+"\n"+`{"sku":"in-2"}`+"\n"), "push", "--json", "-")
	if code != 0 || !strings.Contains(out, `"records_produced": 2`) {
		t.Fatalf("stdin push: exit %d, %s %s", code, out, stderr)
	}
	if n := len(consume(t, br.Addr, "products")); int64(n) != total+300+2 {
		t.Fatalf("topic holds %d records, want %d", n, total+300+2)
	}
}

// A JSON document that breaks off is a failed push naming the position; the
// records before the break are on the topic and counted.
func TestPushSyntaxErrorFailsWithPosition(t *testing.T) {
	st := testenv.NewStack(t)
	file := filepath.Join(t.TempDir(), "broken.json")
	os.WriteFile(file, []byte("[\n{\"sku\":\"a\"},\n{\"sku\":\"b\"},\n{\"sku\": tru}\n]\n"), 0o644)
	s := push(t, st, file)
	r := s.Results[0]
	if s.OK || r.Produced != 2 || !strings.Contains(r.Error, "line 4") || r.State != "failed" {
		t.Fatalf("summary %+v", s)
	}
	// The job's row says so too.
	row := st.CH.Query(t, "SELECT state, records_produced, error LIKE '%line 4%' FROM skuflow.ingest_jobs FINAL WHERE id = '"+r.ID+"'")
	if row != "failed\t2\t1" {
		t.Fatalf("ingest_jobs row of %s: %q", r.ID, row)
	}
	// A failed job does not block a retry of the same content: it is read
	// (and fails) again as a job of its own.
	again := push(t, st, file).Results[0]
	if again.RefusedBy != "" || again.ID == r.ID || again.State != "failed" || again.Produced != 2 {
		t.Fatalf("retry of a failed job's content: %+v", again)
	}
	if n := len(consume(t, st.Broker.Addr, "products")); n != 4 {
		t.Fatalf("topic holds %d records after two pushes of 2, want 4", n)
	}
}

// Invariant 2: the partition count is fixed; a loader configured for another
// count refuses to produce.
func TestPushRefusesOtherPartitionCount(t *testing.T) {
	br := testenv.Broker(t, testenv.Partitions(3))
	ch := testenv.ClickHouse(t)
	file := filepath.Join(t.TempDir(), "one.ndjson")
	os.WriteFile(file, []byte(`{"sku":"a"}`+"\n"), 0o644)
	env := []string{"SKUFLOW_KAFKA_BROKERS=" + br.Addr, "SKUFLOW_CLICKHOUSE_ADDR=" + ch.TCPAddr}
	_, stderr, code := run(t, env, nil, "push", "--partitions", "6", file)
	if code == 0 || !strings.Contains(stderr, "has 3 partitions, 6 are configured (kafka.partitions") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if n := len(consume(t, br.Addr, "products")); n != 0 {
		t.Fatalf("%d records produced to a topic of the wrong shape", n)
	}
}

// Invariant 2 again: partitions added while a push runs fail it, even when
// the periodic topic check (an hour here) never came round: the push looks
// once more after its last record is on the topic.
func TestPushFailsWhenPartitionsAddedMidPush(t *testing.T) {
	s := testenv.NewStack(t, "SKUFLOW_KAFKA_TOPIC_CHECK_INTERVAL=1h")
	p := startStreamPush(t, s, "--format", "ndjson")
	for i := range 100 {
		p.write(t, fmt.Sprintf(`{"sku":"before-%d","name":"n"}`+"\n", i))
	}
	deadline := time.Now().Add(time.Minute)
	for len(consume(t, s.Broker.Addr, "products")) < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("the first 100 records never reached the topic:\n%s", p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Broker.AddPartitions(t, 6)
	for i := range 100 {
		p.write(t, fmt.Sprintf(`{"sku":"after-%d","name":"n"}`+"\n", i))
	}
	p.stdin.Close()
	if err := p.cmd.Wait(); err == nil || !strings.Contains(p.out.String(), "topic products has 12 partitions now, it had 6") {
		t.Fatalf("push across added partitions: %v\n%s", err, p.out.String())
	}
	row := s.CH.Query(t, "SELECT state, error LIKE '%12 partitions now%' FROM skuflow.ingest_jobs FINAL")
	if row != "failed\t1" {
		t.Fatalf("job of the push across added partitions: %q", row)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"push"}, {"push", "--format", "xml", "x"}, {"gen", "extra"}} {
		_, stderr, code := loader(t, nil, args...)
		if code != 2 || stderr == "" && len(args) > 0 {
			t.Errorf("loader %v: exit %d, stderr %q", args, code, stderr)
		}
	}
	if _, stderr, code := loader(t, nil, "push", "/does/not/exist.csv"); code != 1 || !strings.Contains(stderr, "/does/not/exist.csv") {
		t.Errorf("missing file: exit %d, %s", code, stderr)
	}
}
