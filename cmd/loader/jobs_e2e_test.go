package main_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// jobStatus is `loader status --json` and one element of `loader jobs
// --json`: the job's row and, for a produced job, each group's progress.
type jobStatus struct {
	pushResult
	ProducedAt  string  `json:"produced_at"`
	FinishedAt  string  `json:"finished_at"`
	LoadSeconds float64 `json:"load_seconds"`
	Progress    []struct {
		Group  string `json:"group"`
		Behind int64  `json:"records_behind"`
	} `json:"progress"`
	Stalled bool `json:"stalled"`
}

// behind returns the progress of group, failing if the status has none.
func (s jobStatus) behind(t *testing.T, group string) int64 {
	t.Helper()
	for _, g := range s.Progress {
		if g.Group == group {
			return g.Behind
		}
	}
	t.Fatalf("status of %s has no progress of group %s: %+v", s.ID, group, s.Progress)
	return 0
}

// status runs `loader status --json JOB` with args and returns the status
// and the exit code.
func status(t *testing.T, s *testenv.Stack, id string, args ...string) (jobStatus, int) {
	t.Helper()
	out, stderr, code := run(t, s.Env, nil, append(append([]string{"status", "--json"}, args...), id)...)
	var st jobStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status %s: exit %d, %q: %v\nstderr: %s", id, code, out, err, stderr)
	}
	return st, code
}

// listJobs runs `loader jobs --json` with args.
func listJobs(t *testing.T, s *testenv.Stack, args ...string) []jobStatus {
	t.Helper()
	out, stderr, code := run(t, s.Env, nil, append([]string{"jobs", "--json"}, args...)...)
	var list []jobStatus
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 {
		t.Fatalf("jobs: exit %d, %q: %v\nstderr: %s", code, out, err, stderr)
	}
	return list
}

// sha256sum is the digest coreutils' sha256sum gives for path.
func sha256sum(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatalf("sha256sum %s: %v", path, err)
	}
	sum, _, _ := strings.Cut(string(out), " ")
	return sum
}

// jobRow returns columns of job id's newest row in ingest_jobs, as TSV.
func jobRow(t *testing.T, s *testenv.Stack, id, columns string) string {
	t.Helper()
	return s.CH.Query(t, fmt.Sprintf("SELECT %s FROM skuflow.ingest_jobs FINAL WHERE id = '%s'", columns, id))
}

// A file whose content an earlier job loaded is refused, naming that job,
// as a success that produces nothing; --force pushes it again as a job of
// its own.
func TestPushRefusesLoadedContent(t *testing.T) {
	s := testenv.NewStack(t)
	dir := t.TempDir()
	file := testenv.Gen(t, dir, "a.ndjson", "--rows", "300", "--seed", "3")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	renamed := filepath.Join(dir, "same content.ndjson")
	os.WriteFile(renamed, data, 0o644)

	first := push(t, s, file).Results[0]
	if first.State != "produced" || first.Produced != 300 || first.SHA256 != sha256sum(t, file) || first.RefusedBy != "" {
		t.Fatalf("first push: %+v", first)
	}

	// Again, by its name and under another name: refused, exit 0, nothing
	// produced, the earlier job named.
	for _, f := range []string{file, renamed} {
		out, stderr, code := run(t, s.Env, nil, "push", "--no-progress", f)
		if code != 0 || !strings.Contains(stderr, "refused") || !strings.Contains(stderr, "job "+first.ID) ||
			!strings.Contains(stderr, "--force") {
			t.Fatalf("push %s again: exit %d\n%s%s", f, code, out, stderr)
		}
		sum := push(t, s, f)
		r := sum.Results[0]
		if !sum.OK || r.RefusedBy != first.ID || r.Produced != 0 || r.State != "" ||
			!strings.Contains(r.Error, "refused") {
			t.Fatalf("push %s again, --json: %+v", f, sum)
		}
	}
	if n := len(consume(t, s.Broker.Addr, "products")); n != 300 {
		t.Fatalf("topic holds %d records after refused pushes, want 300", n)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.ingest_jobs FINAL"); n != 1 {
		t.Fatalf("ingest_jobs holds %d jobs, want only the first: a refused push is no job", n)
	}

	// --force: a new job with the same digest, every record again.
	forced := push(t, s, "--force", file).Results[0]
	if forced.State != "produced" || forced.ID == first.ID || forced.RefusedBy != "" || forced.Produced != 300 ||
		forced.SHA256 != first.SHA256 {
		t.Fatalf("forced push: %+v", forced)
	}
	if n := len(consume(t, s.Broker.Addr, "products")); n != 600 {
		t.Fatalf("topic holds %d records after --force, want 600", n)
	}
	// The newest job that loaded the content is the one named now.
	if again := push(t, s, renamed).Results[0]; again.RefusedBy != forced.ID {
		t.Fatalf("after --force, refused by %q, want the newest job %s", again.RefusedBy, forced.ID)
	}
}

// A job that never finished producing (its loader was killed, or it is
// still running) does not block the same content: only a produced or done
// job does.
func TestUnfinishedJobDoesNotBlock(t *testing.T) {
	s := testenv.NewStack(t)
	dir := t.TempDir()

	// Rows written by hand, once a first push has created the tables: a
	// producing job (left by a loader that died) and a failed one with the
	// file's digest.
	push(t, s, testenv.Gen(t, dir, "first.ndjson", "--rows", "1", "--seed", "4"))
	small := testenv.Gen(t, dir, "small.ndjson", "--rows", "50", "--seed", "5")
	s.CH.Query(t, fmt.Sprintf(
		"INSERT INTO skuflow.ingest_jobs (id, source, sha256, state, started_at, updated_at, version) VALUES "+
			"('20200101T000000Z-000000000001', 'small.ndjson', '%[1]s', 'producing', now() - 60, now() - 60, 1), "+
			"('20200101T000000Z-000000000002', 'small.ndjson', '%[1]s', 'failed', now() - 60, now() - 60, 1)\n",
		sha256sum(t, small)))
	if r := push(t, s, small).Results[0]; r.RefusedBy != "" || r.State != "produced" || r.Produced != 50 {
		t.Fatalf("push past a producing and a failed job: %+v", r)
	}
	// That producing job has not been heard from for a minute: its loader
	// is gone, and status says so, without waiting for it.
	st, code := status(t, s, "20200101T000000Z-000000000001", "--wait")
	if code != 0 || st.State != "producing" || !st.Stalled {
		t.Fatalf("status --wait of a stalled job: exit %d, %+v", code, st)
	}
	if out, _, _ := run(t, s.Env, nil, "jobs"); !strings.Contains(out, "producing (stalled)") {
		t.Fatalf("jobs does not show the stalled job:\n%s", out)
	}

	// A loader killed with SIGKILL in the middle of a big file.
	big := testenv.Gen(t, dir, "big.ndjson", "--rows", "500000", "--seed", "6")
	cmd := loaderCmd(t, s.Env, "push", "--no-progress", big)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	producing := fmt.Sprintf("SELECT count() FROM skuflow.ingest_jobs FINAL WHERE source = '%s' AND state = 'producing'", big)
	s.WaitCount(t, producing, 1, time.Minute)
	cmd.Process.Kill() // SIGKILL, to this pid only
	cmd.Wait()
	killed = true
	id := s.CH.Query(t, fmt.Sprintf("SELECT id FROM skuflow.ingest_jobs FINAL WHERE source = '%s'", big))
	if row := jobRow(t, s, id, "state"); row != "producing" {
		t.Fatalf("the killed loader's job is %q, want producing (did the push finish before the kill?)", row)
	}
	if st, _ := status(t, s, id); st.State != "producing" || st.Progress != nil {
		t.Fatalf("status of the killed job: %+v", st)
	}

	retry := push(t, s, big).Results[0]
	if retry.RefusedBy != "" || retry.State != "produced" || retry.Produced != 500000 || retry.ID == id {
		t.Fatalf("push after the killed one: %+v", retry)
	}
	// Now the content is loaded, and refused.
	if r := push(t, s, big).Results[0]; r.RefusedBy != retry.ID {
		t.Fatalf("third push: %+v, want refused by %s", r, retry.ID)
	}
}

// streamPush is `loader push -` reading from a pipe the test writes to.
type streamPush struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   strings.Builder
}

func startStreamPush(t *testing.T, s *testenv.Stack, args ...string) *streamPush {
	t.Helper()
	p := &streamPush{cmd: loaderCmd(t, s.Env, append(append([]string{"push", "--json", "--no-progress"}, args...), "-")...)}
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill() // this pid only
			p.cmd.Wait()
		}
	})
	return p
}

func (p *streamPush) write(t *testing.T, text string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, text); err != nil {
		t.Fatal(err)
	}
}

// end closes stdin and waits for the push to succeed.
func (p *streamPush) end(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("push -: %v\n%s", err, p.out.String())
	}
}

// A loader stopped by SIGTERM mid-file fails its job with the reason, and
// the row counts exactly what reached the topic, with its end offsets.
func TestPushInterrupted(t *testing.T) {
	s := testenv.NewStack(t)
	big := testenv.Gen(t, t.TempDir(), "big.ndjson", "--rows", "500000", "--seed", "6")
	cmd := loaderCmd(t, s.Env, "push", "--no-progress", big)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.WaitCount(t, fmt.Sprintf("SELECT count() FROM skuflow.ingest_jobs FINAL WHERE source = '%s' AND state = 'producing'", big), 1, time.Minute)
	time.Sleep(100 * time.Millisecond) // some records on their way
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("push ended well after SIGTERM: %s", stderr.String())
	}
	row := s.CH.Query(t, fmt.Sprintf("SELECT id, state, records_produced, arraySum(arrayMap(o -> o + 1, end_offsets)), "+
		"error LIKE '%%push interrupted%%', finished_at > 0 FROM skuflow.ingest_jobs FINAL WHERE source = '%s'", big))
	f := strings.Split(row, "\t")
	onTopic := len(consume(t, s.Broker.Addr, "products"))
	if len(f) != 6 || f[1] != "failed" || f[2] != fmt.Sprint(onTopic) || f[3] != f[2] || f[4] != "1" || f[5] != "1" || onTopic >= 500000 {
		t.Fatalf("job of the interrupted push: %q; %d records on the topic", row, onTopic)
	}
	if st, code := status(t, s, f[0]); code != 1 || st.State != "failed" {
		t.Fatalf("status of the interrupted job: exit %d, %+v", code, st)
	}
}

// While a push runs, its row is rewritten every heartbeat with its counts,
// and its rejected records are stored as it goes, not only at the end; a
// push still waiting for enough input to tell its format beats too.
func TestPushHeartbeat(t *testing.T) {
	s := testenv.NewStack(t)
	push(t, s, testenv.Gen(t, t.TempDir(), "first.ndjson", "--rows", "1")) // creates the tables

	counting := startStreamPush(t, s, "--format", "ndjson")
	var lines strings.Builder
	for i := range 10 {
		fmt.Fprintf(&lines, `{"sku":"hb-%d","name":"n"}`+"\n", i)
	}
	lines.WriteString(`{"sku":"","name":"empty"}` + "\n" + `{"sku":` + "\n")
	counting.write(t, lines.String())
	// Without --format, the loader reads ahead to tell the format: a few
	// records are not enough, and it waits for more.
	sniffing := startStreamPush(t, s)
	sniffing.write(t, `{"sku":"sniffed"}`+"\n")

	// The first heartbeat comes jobs.Heartbeat (5 s) after the start.
	counted := "SELECT count() FROM skuflow.ingest_jobs FINAL WHERE source = '-' AND state = 'producing' " +
		"AND records_read = 12 AND records_produced = 10 AND records_rejected = 2"
	s.WaitCount(t, counted, 1, 20*time.Second)
	id := s.CH.Query(t, "SELECT id FROM skuflow.ingest_jobs FINAL WHERE source = '-' AND records_read = 12")
	s.WaitCount(t, "SELECT count() FROM skuflow.ingest_errors WHERE job = '"+id+"'", 2, 20*time.Second)
	if st, _ := status(t, s, id); st.State != "producing" || st.Stalled || st.Read != 12 || st.Format != "ndjson" {
		t.Fatalf("status while producing: %+v", st)
	}
	if out, _, code := run(t, s.Env, nil, "errors", id); code != 0 || !strings.Contains(out, "-:11: validate: ") || !strings.Contains(out, "-:12: decode: ") {
		t.Fatalf("errors while producing: exit %d\n%s", code, out)
	}
	s.WaitCount(t, "SELECT count() FROM skuflow.ingest_jobs FINAL WHERE source = '-' AND format = '' "+
		"AND state = 'producing' AND updated_at >= started_at + 4", 1, 20*time.Second)

	counting.write(t, `{"sku":"hb-last"}`+"\n")
	counting.end(t)
	sniffing.end(t)
	if row := jobRow(t, s, id, "state, records_read, records_produced, records_rejected"); row != "produced\t13\t11\t2" {
		t.Fatalf("ingest_jobs row at the end: %q", row)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.ingest_jobs FINAL WHERE source = '-' AND state = 'produced' AND records_produced > 0"); n != 2 {
		t.Fatalf("%d stdin jobs produced, want 2", n)
	}
}

// Rejected records land in ingest_errors with job, source, line, byte
// offset, stage, reason and the raw record (truncated to 16 KiB); loader
// errors prints them.
func TestIngestErrors(t *testing.T) {
	s := testenv.NewStack(t)
	dir := t.TempDir()
	huge := strings.Repeat("x", 40<<10)
	ndLines := []string{
		`{"sku":"a","name":"A"}`,
		`{"sku":"b","name":`,
		`{"sku":"","name":"empty sku"}`,
		`{"name":"no sku"}`,
		`{"sku":"","name":"huge","description":"` + huge + `"}`,
		`{"sku":"c","name":"` + huge + ``,
		`{"sku":"d","name":"D"}`,
	}
	nd := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(nd, []byte(strings.Join(ndLines, "\n")+"\n"), 0o644)
	csvLines := []string{"sku,name,description", "e,E,fine", "f,F", "g,G,x,extra", "h,H,fine"}
	csvFile := filepath.Join(dir, "bad.csv")
	os.WriteFile(csvFile, []byte(strings.Join(csvLines, "\n")+"\n"), 0o644)

	sum := push(t, s, nd, csvFile)
	if !sum.OK || len(sum.Results) != 2 {
		t.Fatalf("push: %+v", sum)
	}
	ndJob, csvJob := sum.Results[0], sum.Results[1]
	if ndJob.Read != 7 || ndJob.Produced != 2 || ndJob.Rejected != 5 || csvJob.Read != 4 || csvJob.Produced != 2 || csvJob.Rejected != 2 {
		t.Fatalf("counts: %+v", sum.Results)
	}
	if row := jobRow(t, s, ndJob.ID, "state, records_read, records_produced, records_rejected"); row != "produced\t7\t2\t5" {
		t.Fatalf("ingest_jobs row of %s: %q", ndJob.ID, row)
	}

	// What the table holds, row by row. offset is the byte offset of the
	// record in the input; topic is empty: none of them reached it.
	lineOffset := func(lines []string, n int) int {
		off := 0
		for _, l := range lines[:n-1] {
			off += len(l) + 1
		}
		return off
	}
	type want struct {
		job, source    string
		line           int
		stage, reason  string
		raw            string // the stored raw record, or "" to check only its length
		rawLen, offset int
	}
	wants := []want{
		{ndJob.ID, nd, 2, "decode", "invalid JSON", ndLines[1], len(ndLines[1]), lineOffset(ndLines, 2)},
		{ndJob.ID, nd, 3, "validate", `field "sku": required field is empty`, ndLines[2], len(ndLines[2]), lineOffset(ndLines, 3)},
		{ndJob.ID, nd, 4, "validate", `field "sku": required field is missing`, ndLines[3], len(ndLines[3]), lineOffset(ndLines, 4)},
		{ndJob.ID, nd, 5, "validate", `field "sku": required field is empty`, ndLines[4][:16<<10], 16 << 10, lineOffset(ndLines, 5)},
		{ndJob.ID, nd, 6, "decode", "invalid JSON", ndLines[5][:16<<10], 16 << 10, lineOffset(ndLines, 6)},
		{csvJob.ID, csvFile, 3, "decode", "row has 2 fields, header has 3", "", -1, lineOffset(csvLines, 3)},
		{csvJob.ID, csvFile, 4, "decode", "row has 4 fields, header has 3", "", -1, lineOffset(csvLines, 4)},
	}
	got := s.CH.Query(t, "SELECT job, source, line, stage, reason, topic, offset, length(raw), raw FROM skuflow.ingest_errors FINAL "+
		"ORDER BY source = '"+csvFile+"', line FORMAT JSONEachRow")
	rows := strings.Split(got, "\n")
	if len(rows) != len(wants) {
		t.Fatalf("ingest_errors holds %d rows, want %d:\n%s", len(rows), len(wants), got)
	}
	for i, w := range wants {
		// 18.16 quotes 64-bit integers in JSON; Sprint reads both ways.
		var r map[string]any
		if err := json.Unmarshal([]byte(rows[i]), &r); err != nil {
			t.Fatalf("row %q: %v", rows[i], err)
		}
		get := func(col string) string { return fmt.Sprint(r[col]) }
		if get("job") != w.job || get("source") != w.source || get("line") != fmt.Sprint(w.line) || get("stage") != w.stage ||
			!strings.Contains(get("reason"), w.reason) || get("topic") != "" || get("offset") != fmt.Sprint(w.offset) {
			t.Errorf("row %d: job %s source %s line %s stage %s reason %q topic %q offset %s; want %+.100v",
				i, get("job"), get("source"), get("line"), get("stage"), get("reason"), get("topic"), get("offset"), w)
		}
		rawLen := get("length(raw)")
		if w.rawLen >= 0 && rawLen != fmt.Sprint(w.rawLen) || w.raw != "" && get("raw") != w.raw {
			t.Errorf("row %d (line %d): raw of %s bytes %.80q, want %d bytes %.80q", i, w.line, rawLen, get("raw"), w.rawLen, w.raw)
		}
		if w.rawLen < 0 && rawLen == "0" {
			t.Errorf("row %d (line %d): no raw record", i, w.line)
		}
	}

	// Two records on one line: two rows, told apart by their byte offsets.
	arr := filepath.Join(dir, "one line.json")
	doc := `[{"sku":"","name":"x"}, {"sku":"","name":"y"}, {"sku":"z"}]`
	os.WriteFile(arr, []byte(doc+"\n"), 0o644)
	arrJob := push(t, s, arr).Results[0]
	got = s.CH.Query(t, "SELECT line, offset, raw FROM skuflow.ingest_errors FINAL WHERE job = '"+arrJob.ID+"' ORDER BY offset")
	x, y := `{"sku":"","name":"x"}`, `{"sku":"","name":"y"}`
	if want := fmt.Sprintf("1\t%d\t%s\n1\t%d\t%s", strings.Index(doc, x), x, strings.Index(doc, y), y); got != want {
		t.Errorf("ingest_errors of %s:\n%s\nwant\n%s", arr, got, want)
	}

	// Offsets are in the decompressed input; more rejected records than one
	// insert holds (1,000) are all stored.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Join(csvLines, "\n") + "\n"))
	for range 2500 {
		zw.Write([]byte("only,two\n"))
	}
	zw.Close()
	gzFile := filepath.Join(dir, "many.csv.gz")
	os.WriteFile(gzFile, gz.Bytes(), 0o644)
	gzJob := push(t, s, gzFile).Results[0]
	if gzJob.Rejected != 2502 || gzJob.Produced != 2 {
		t.Fatalf("gzip push: %+v", gzJob)
	}
	got = s.CH.Query(t, "SELECT count(), countIf(line = 3 AND offset = "+fmt.Sprint(lineOffset(csvLines, 3))+
		"), countIf(line = 4 AND offset = "+fmt.Sprint(lineOffset(csvLines, 4))+") FROM skuflow.ingest_errors FINAL WHERE job = '"+gzJob.ID+"'")
	if got != "2502\t1\t1" {
		t.Fatalf("ingest_errors of %s: count, rows at lines 3 and 4 with their offsets: %q", gzFile, got)
	}

	// loader errors: file:line, stage and reason for a person.
	out, stderr, code := run(t, s.Env, nil, "errors", ndJob.ID)
	if code != 0 {
		t.Fatalf("errors: exit %d: %s", code, stderr)
	}
	for _, w := range wants[:5] {
		if head := fmt.Sprintf("%s:%d: %s: ", nd, w.line, w.stage); !strings.Contains(out, head) {
			t.Errorf("loader errors lacks %q:\n%s", head, out)
		}
	}
	if !strings.Contains(out, `field "sku": required field is missing`) || !strings.Contains(stderr, "5 of 5 rejected records of job "+ndJob.ID) {
		t.Errorf("loader errors:\n%s\nstderr: %s", out, stderr)
	}
	if strings.Contains(out, csvFile) {
		t.Errorf("loader errors of %s shows another job's records:\n%s", ndJob.ID, out)
	}
	out, _, _ = run(t, s.Env, nil, "errors", csvJob.ID)
	if !strings.Contains(out, csvFile+":3: decode: row has 2 fields, header has 3") || !strings.Contains(out, csvFile+":4: ") {
		t.Errorf("loader errors %s:\n%s", csvJob.ID, out)
	}

	// --json: the raw records as stored; --limit cuts the list, not the total.
	out, stderr, code = run(t, s.Env, nil, "errors", "--json", ndJob.ID)
	var list []struct {
		Source, Stage, Reason, Raw string
		Line, Offset               int64
		Topic                      *string
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 {
		t.Fatalf("errors --json: exit %d, %v: %s%s", code, err, out, stderr)
	}
	if len(list) != 5 {
		t.Fatalf("errors --json: %d rows, want 5", len(list))
	}
	for i, e := range list {
		w := wants[i]
		if e.Source != nd || e.Line != int64(w.line) || e.Stage != w.stage || !strings.Contains(e.Reason, w.reason) ||
			e.Offset != int64(w.offset) || len(e.Raw) != w.rawLen || e.Topic != nil {
			t.Errorf("errors --json row %d: %+.100v, want %+.100v", i, e, w)
		}
	}
	out, stderr, _ = run(t, s.Env, nil, "errors", "--limit", "2", ndJob.ID)
	if strings.Count(out, nd+":") != 2 || !strings.Contains(stderr, "2 of 5 rejected") {
		t.Errorf("errors --limit 2:\n%s\nstderr: %s", out, stderr)
	}

	// status points at them.
	out, _, _ = run(t, s.Env, nil, "status", ndJob.ID)
	if !strings.Contains(out, "7 read, 2 produced, 5 rejected ('loader errors "+ndJob.ID+"' lists them)") {
		t.Errorf("status:\n%s", out)
	}
	// A job id that is not there, and one that cannot be.
	if _, stderr, code := run(t, s.Env, nil, "errors", "20200101T000000Z-000000000000"); code != 1 || !strings.Contains(stderr, "no such job") {
		t.Errorf("errors of a missing job: exit %d, %s", code, stderr)
	}
	if _, stderr, code := run(t, s.Env, nil, "errors", "x' OR 1=1 --"); code != 2 || !strings.Contains(stderr, "not a job id") {
		t.Errorf("errors of a bad id: exit %d, %s", code, stderr)
	}
}

// Invariant 4 through loader status: a job is done only once the
// processor's and the aggregator's committed offsets have passed its end,
// and then products and products_agg hold all of it.
func TestStatusDoneOnlyWhenBothGroupsPassed(t *testing.T) {
	s := testenv.NewStack(t)
	file := testenv.Gen(t, t.TempDir(), "p.ndjson", "--rows", "5000", "--dup-rate", "0.1", "--rename-rate", "0.1", "--seed", "9")
	last := testenv.LastWrites(t, file)

	// No processor, no aggregator: produced, every record behind in both.
	job := push(t, s, file).Results[0]
	if job.State != "produced" || job.Produced != 5000 {
		t.Fatalf("push: %+v", job)
	}
	st, code := status(t, s, job.ID)
	if code != 0 || st.State != "produced" || st.FinishedAt != "" ||
		st.behind(t, "skuflow-processor") != 5000 || st.behind(t, "skuflow-aggregator") != 5000 {
		t.Fatalf("status with nothing consuming: exit %d, %+v", code, st)
	}
	out, _, _ := run(t, s.Env, nil, "status", job.ID)
	if !strings.Contains(out, "produced; loading into ClickHouse (skuflow-processor 5,000 records behind, skuflow-aggregator 5,000 records behind)") {
		t.Fatalf("status:\n%s", out)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.products"); n != 0 {
		t.Fatalf("products holds %d rows with no processor running", n)
	}

	// The processor alone: products is complete, the aggregate is not, so
	// the job is not done.
	s.Service(t, "processor")
	s.WaitCommitted(t, "skuflow-processor", 5000, time.Minute)
	st, _ = status(t, s, job.ID)
	if st.State != "produced" || st.behind(t, "skuflow-processor") != 0 || st.behind(t, "skuflow-aggregator") != 5000 {
		t.Fatalf("status with the processor caught up: %+v", st)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.products FINAL"); n != int64(len(last)) {
		t.Fatalf("products FINAL has %d rows once the processor committed, want %d", n, len(last))
	}
	if row := jobRow(t, s, job.ID, "state"); row != "produced" {
		t.Fatalf("ingest_jobs says %q before the aggregator ran", row)
	}
	// A push refused for the same content waits for the earlier job, which
	// cannot finish yet.
	sum := push(t, s, "--wait", "--wait-timeout", "5s", file)
	if sum.OK || sum.Results[0].RefusedBy != job.ID || sum.Wait == nil ||
		!strings.Contains(sum.Wait.Error, "gave up after 5s (--wait-timeout) with 5,000 records still to go") {
		t.Fatalf("refused push --wait with the aggregator down: %+v", sum)
	}

	// The aggregator too: status --wait returns done, and then both tables
	// hold the whole job.
	s.Service(t, "aggregator")
	st, code = status(t, s, job.ID, "--wait")
	if code != 0 || st.State != "done" || st.behind(t, "skuflow-processor") != 0 || st.behind(t, "skuflow-aggregator") != 0 ||
		st.FinishedAt == "" || st.LoadSeconds <= 0 {
		t.Fatalf("status --wait: exit %d, %+v", code, st)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.products FINAL"); n != int64(len(last)) {
		t.Fatalf("products FINAL has %d rows when the job is done, want %d", n, len(last))
	}
	s.CheckFinal(t, last)
	s.CheckAgg(t, testenv.NameCounts(last))

	if row := jobRow(t, s, job.ID, "state, finished_at > 0, load_seconds > 0"); row != "done\t1\t1" {
		t.Fatalf("ingest_jobs row of the done job: %q", row)
	}
	out, _, _ = run(t, s.Env, nil, "status", job.ID)
	if !strings.Contains(out, "done: products and products_agg hold every record of the job") {
		t.Fatalf("status of the done job:\n%s", out)
	}
	// Refused again, waiting returns at once: the earlier job is done.
	if sum := push(t, s, "--wait", "--wait-timeout", "30s", file); !sum.OK || sum.Results[0].RefusedBy != job.ID {
		t.Fatalf("refused push --wait of done content: %+v", sum)
	}
}

// loader jobs lists jobs newest first with their states; a failed job's
// status exits 1 with its error.
func TestJobsList(t *testing.T) {
	s := testenv.NewStack(t)
	dir := t.TempDir()
	a := testenv.Gen(t, dir, "a.ndjson", "--rows", "100", "--seed", "1")
	b := testenv.Gen(t, dir, "b.csv", "--rows", "100", "--seed", "2")
	broken := filepath.Join(dir, "c.json")
	os.WriteFile(broken, []byte("[{\"sku\":\"x\"},\n{\"sku\": nope}]\n"), 0o644)
	// One loader, three jobs started within the same second or two.
	sum := push(t, s, a, b, broken)
	if len(sum.Results) != 3 {
		t.Fatalf("push: %+v", sum)
	}
	list := listJobs(t, s)
	if len(list) != 3 {
		t.Fatalf("jobs: %d, want 3: %+v", len(list), list)
	}
	wantOrder := []struct{ source, state string }{{broken, "failed"}, {b, "produced"}, {a, "produced"}}
	for i, w := range wantOrder {
		if list[i].Source != w.source || list[i].State != w.state || list[i].ID != sum.Results[2-i].ID {
			t.Errorf("jobs[%d]: %s %s %s, want %s %s %s", i, list[i].ID, list[i].Source, list[i].State, sum.Results[2-i].ID, w.source, w.state)
		}
	}
	if list[1].Format != "csv" || list[1].Produced != 100 || list[1].SHA256 != sha256sum(t, b) || list[1].Progress == nil {
		t.Errorf("jobs[1]: %+v", list[1])
	}
	if l := listJobs(t, s, "--limit", "2"); len(l) != 2 || l[0].ID != list[0].ID || l[1].ID != list[1].ID {
		t.Errorf("jobs --limit 2: %+v", l)
	}

	out, stderr, code := run(t, s.Env, nil, "jobs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) < 4 || !strings.HasPrefix(lines[0], "JOB") || !strings.Contains(lines[0], "STATE") {
		t.Fatalf("jobs: exit %d\n%s%s", code, out, stderr)
	}
	var rows []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "2") { // a job id, not a rule or the count
			rows = append(rows, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(rows) != 3 || lines[len(lines)-1] != "(3 rows)" {
		t.Fatalf("jobs:\n%s", out)
	}
	for i, w := range wantOrder {
		if !strings.HasPrefix(rows[i], list[i].ID+" ") || !strings.Contains(rows[i], w.state) {
			t.Errorf("jobs row %d %q, want %s %s", i, rows[i], list[i].ID, w.state)
		}
	}
	if !strings.Contains(out, "produced (loading)") {
		t.Errorf("jobs does not show produced jobs as loading:\n%s", out)
	}

	st, code := status(t, s, list[0].ID)
	if code != 1 || st.State != "failed" || !strings.Contains(st.Error, "line 2") {
		t.Errorf("status of the failed job: exit %d, %+v", code, st)
	}
	out, _, code = run(t, s.Env, nil, "status", list[0].ID)
	if code != 1 || !strings.Contains(out, "error") || !strings.Contains(out, "line 2") {
		t.Errorf("status of the failed job: exit %d\n%s", code, out)
	}
}

// The job's sha256 is the digest of the stored bytes, as sha256sum says,
// whether the loader hashed the file before the push or while streaming
// it from stdin or a URL; stdin is never refused.
func TestJobSHA256(t *testing.T) {
	s := testenv.NewStack(t)
	dir := t.TempDir()
	for _, name := range []string{"a.ndjson", "b.json", "c.csv", "d.ndjson.gz", "e.csv.zst"} {
		file := testenv.Gen(t, dir, name, "--rows", "200", "--seed", fmt.Sprint(len(name)))
		want := sha256sum(t, file)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// The file with its name first, so that stdin's equal content is
		// one that an earlier job loaded.
		r := push(t, s, file).Results[0]
		if r.SHA256 != want || r.State != "produced" {
			t.Errorf("%s: job sha256 %s, sha256sum %s (%+v)", name, r.SHA256, want, r)
		}
		// stdin has no name: the format is sniffed from the content.
		in := pushIn(t, s, data, "-").Results[0]
		if in.SHA256 != want || in.State != "produced" || in.RefusedBy != "" || in.Produced != 200 {
			t.Errorf("%s from stdin: job sha256 %s, sha256sum %s (%+v)", name, in.SHA256, want, in)
		}
		if row := jobRow(t, s, in.ID, "sha256, source"); row != want+"\t-" {
			t.Errorf("%s from stdin: ingest_jobs row %q", name, row)
		}
		if name == "d.ndjson.gz" {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(data) }))
			u := pushIn(t, s, nil, srv.URL+"/"+name).Results[0]
			srv.Close()
			if u.SHA256 != want || u.State != "produced" || u.Produced != 200 {
				t.Errorf("%s from a URL: job sha256 %s, sha256sum %s (%+v)", name, u.SHA256, want, u)
			}
		}
	}
}

// With the broker down, a produced job's progress is unknown: status
// still shows the job's row, says why the rest is missing and exits 1;
// jobs lists every job and warns.
func TestStatusWithoutKafka(t *testing.T) {
	s := testenv.NewStack(t)
	job := push(t, s, testenv.Gen(t, t.TempDir(), "p.ndjson", "--rows", "10")).Results[0]
	s.Broker.Stop(t)

	out, stderr, code := run(t, s.Env, nil, "status", job.ID)
	if code != 1 || !strings.Contains(out, job.ID) || !strings.Contains(out, "produced; how far processor and aggregator are is unknown") ||
		!strings.Contains(out, "10 read, 10 produced") || !strings.Contains(stderr, "Kafka at ") {
		t.Fatalf("status without Kafka: exit %d\n%s\nstderr: %s", code, out, stderr)
	}
	if st, code := status(t, s, job.ID); code != 1 || st.ID != job.ID || st.State != "produced" || st.Progress != nil {
		t.Fatalf("status --json without Kafka: exit %d, %+v", code, st)
	}
	out, stderr, code = run(t, s.Env, nil, "jobs")
	if code != 0 || !strings.Contains(out, job.ID) || !strings.Contains(stderr, "Kafka at ") {
		t.Fatalf("jobs without Kafka: exit %d\n%s\nstderr: %s", code, out, stderr)
	}

	s.Broker.Start(t)
	if st, code := status(t, s, job.ID); code != 0 || st.behind(t, "skuflow-processor") != 10 {
		t.Fatalf("status with Kafka back: exit %d, %+v", code, st)
	}
}

// A push outlives a ClickHouse outage longer than the 30 s it allows for
// starting: once its job's row exists, the heartbeat, its rejected records
// and its last state wait for the server to come back, and the push ends
// produced, with every record and every rejection.
func TestPushOutlivesClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops ClickHouse for 35 s")
	}
	s, p, id := pushingWithoutClickHouse(t)
	var lines strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&lines, `{"sku":"during-outage-%d","name":"n"}`+"\n", i)
	}
	lines.WriteString(`{"sku":"","name":"rejected during the outage"}` + "\n")
	p.write(t, lines.String())
	p.stdin.Close() // the push has all its input; its job's last state waits
	time.Sleep(35 * time.Second)
	s.CH.Start(t)
	p.end(t)

	if row := jobRow(t, s, id, "state, records_read, records_produced, records_rejected"); row != "produced\t1002\t1001\t1" {
		t.Fatalf("ingest_jobs row after the outage: %q\n%s", row, p.out.String())
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.ingest_errors WHERE job = '"+id+"' AND line = 1002"); n != 1 {
		t.Fatalf("%d rejected records of line 1002 stored, want 1", n)
	}
	if n := len(consume(t, s.Broker.Addr, "products")); n != 1+1001 {
		t.Fatalf("%d records on the topic, want %d", n, 1+1001)
	}
}

// A push stopped by SIGTERM while ClickHouse is down tries to record its
// end for 30 s in all, not 30 s for each write it still has (rejected
// records, then its last state): it exits within about 30 s, failed.
func TestStoppedPushWithClickHouseDown(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 30 s for a ClickHouse that is down")
	}
	s, p, _ := pushingWithoutClickHouse(t)
	p.write(t, `{"sku":"","name":"rejected while ClickHouse is down"}`+"\n"+`{"sku":"during-outage","name":"n"}`+"\n")
	time.Sleep(time.Second) // read and produced
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	took := time.Since(began)
	t.Logf("the push stopped %s after SIGTERM: %v", took.Round(time.Millisecond), err)
	if err == nil {
		t.Fatalf("the push ended well with ClickHouse down:\n%s", p.out.String())
	}
	if took > 45*time.Second {
		t.Fatalf("the push took %s to stop after SIGTERM with ClickHouse down, want about 30 s", took.Round(time.Second))
	}
	s.CH.Start(t)
}

// pushingWithoutClickHouse starts `loader push -` of one record on a new
// stack, waits for its job's row, and kills ClickHouse: a push in
// progress, its input still open, with its job store gone. It returns the
// job's id.
func pushingWithoutClickHouse(t *testing.T) (*testenv.Stack, *streamPush, string) {
	t.Helper()
	s := testenv.NewStack(t)
	push(t, s, testenv.Gen(t, t.TempDir(), "first.ndjson", "--rows", "1")) // creates the tables
	p := startStreamPush(t, s, "--format", "ndjson")
	p.write(t, `{"sku":"before-outage","name":"n"}`+"\n")
	s.WaitCount(t, "SELECT count() FROM skuflow.ingest_jobs FINAL WHERE source = '-' AND state = 'producing'", 1, 20*time.Second)
	id := s.CH.Query(t, "SELECT id FROM skuflow.ingest_jobs FINAL WHERE source = '-'")
	s.CH.Kill(t)
	return s, p, id
}
