package watcher_test

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"skuflow/internal/testenv"
)

// inboxEnv makes the watcher quick to take files in tests.
var inboxEnv = []string{
	"SKUFLOW_WATCH_QUIET_PERIOD=300ms",
	"SKUFLOW_WATCH_POLL_INTERVAL=100ms",
	"SKUFLOW_WATCH_PARALLEL=2",
}

// products returns n records with skus unique to prefix; one in five
// repeats an earlier sku of the file under another name (a rename), so the
// last write of a sku is not its first.
func products(prefix string, n int) []testenv.Product {
	out := make([]testenv.Product, 0, n)
	for i := range n {
		k := i
		if i%5 == 4 {
			k = i / 2
		}
		out = append(out, testenv.Product{
			Sku:         fmt.Sprintf("%s-%d", prefix, k),
			Name:        fmt.Sprintf("name %d", (i*7)%13),
			Description: fmt.Sprintf("record %d of %s, with \"quotes\", commas,\nand a second line", i, prefix),
		})
	}
	return out
}

// encode writes records in a format: ndjson, json (an array) or csv.
func encode(t *testing.T, format string, recs []testenv.Product) []byte {
	t.Helper()
	var b bytes.Buffer
	switch format {
	case "ndjson":
		for _, r := range recs {
			line, _ := json.Marshal(map[string]string{"sku": r.Sku, "name": r.Name, "description": r.Description})
			b.Write(append(line, '\n'))
		}
	case "json":
		b.WriteString("[\n")
		for i, r := range recs {
			line, _ := json.Marshal(map[string]string{"sku": r.Sku, "name": r.Name, "description": r.Description})
			b.Write(line)
			if i < len(recs)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString("]\n")
	case "csv":
		w := csv.NewWriter(&b)
		_ = w.Write([]string{"sku", "name", "description"})
		for _, r := range recs {
			_ = w.Write([]string{r.Sku, r.Name, r.Description})
		}
		w.Flush()
	default:
		t.Fatalf("format %q", format)
	}
	return b.Bytes()
}

func compress(t *testing.T, codec string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch codec {
	case "":
		return data
	case "gz":
		w := gzip.NewWriter(&b)
		_, _ = w.Write(data)
		_ = w.Close()
	case "zst":
		w, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(data)
		_ = w.Close()
	}
	return b.Bytes()
}

// jobFile is a .job.json the watcher writes beside a loaded file.
type jobFile struct {
	ID       string `json:"id"`
	Source   string `json:"source"`
	State    string `json:"state"`
	SHA256   string `json:"sha256"`
	Produced int64  `json:"records_produced"`
	Rejected int64  `json:"records_rejected"`
}

func readJob(t *testing.T, path string) jobFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j jobFile
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return j
}

// names lists the names in dir, without hidden ones.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitFiled waits until done/ and failed/ hold n files between them.
func waitFiled(t *testing.T, inbox string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var filed int
		for _, d := range []string{"done", "failed"} {
			for _, name := range names(t, filepath.Join(inbox, d)) {
				if !strings.HasSuffix(name, ".job.json") && !strings.HasSuffix(name, ".error.txt") {
					filed++
				}
			}
		}
		if filed >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d files filed; inbox %v, processing %v, done %v, failed %v", timeout, filed, n,
				names(t, inbox), names(t, filepath.Join(inbox, "processing")), names(t, filepath.Join(inbox, "done")), names(t, filepath.Join(inbox, "failed")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Ten files of mixed formats land in the inbox at once, one malformed and
// one a copy of another: the valid ones end in done/ and exactly in
// ClickHouse, the malformed one in failed/ with the line at fault, and the
// copy is refused with the id of the job that loaded its content.
func TestWatchMixedFiles(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	inbox := t.TempDir()
	w := s.Watcher(t, inbox, inboxEnv...)

	type input struct{ name, format, codec string }
	inputs := []input{
		{"a.ndjson", "ndjson", ""},
		{"b.ndjson.gz", "ndjson", "gz"},
		{"c.json", "json", ""},
		{"d.json.gz", "json", "gz"},
		{"e.csv", "csv", ""},
		{"f.csv.gz", "csv", "gz"},
		{"g.ndjson.zst", "ndjson", "zst"},
		{"h.jsonl", "ndjson", ""},
	}
	want := map[string]testenv.Product{}
	records := map[string]int64{}
	staging := t.TempDir()
	for i, in := range inputs {
		recs := products(strings.Split(in.name, ".")[0], 500+100*i)
		for _, r := range recs {
			want[r.Sku] = r
		}
		records[in.name] = int64(len(recs))
		if err := os.WriteFile(filepath.Join(staging, in.name), compress(t, in.codec, encode(t, in.format, recs)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The copy of e.csv under another name, and a JSON array whose third
	// line is broken: its first record is produced before the error.
	e, _ := os.ReadFile(filepath.Join(staging, "e.csv"))
	if err := os.WriteFile(filepath.Join(staging, "e-copy.csv"), e, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := "[\n{\"sku\":\"bad-1\",\"name\":\"name 1\",\"description\":\"ok\"},\n{\"sku\":\"bad-2\" \"name\":\"name 2\"}\n]\n"
	if err := os.WriteFile(filepath.Join(staging, "bad.json"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	want["bad-1"] = testenv.Product{Sku: "bad-1", Name: "name 1", Description: "ok"}

	// Copy them in as a user would (written in place, not renamed), plus a
	// hidden file and a temporary one, which must be left alone.
	for _, name := range names(t, staging) {
		data, _ := os.ReadFile(filepath.Join(staging, name))
		if name == "h.jsonl" {
			// A symbolic link is taken for its file, a hidden one in the
			// inbox; the link is relative, read from the inbox.
			if err := os.WriteFile(filepath.Join(inbox, ".h.data"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(".h.data", filepath.Join(inbox, name)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(inbox, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{".hidden.ndjson", "upload.ndjson.part"} {
		if err := os.WriteFile(filepath.Join(inbox, name), []byte(`{"sku":"never","name":"x"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFiled(t, inbox, 10, 2*time.Minute)

	// bad.json failed, naming the line at fault.
	reason, err := os.ReadFile(filepath.Join(inbox, "failed", "bad.json.error.txt"))
	if err != nil {
		t.Fatalf("bad.json was not filed in failed/: %v; log:\n%s", err, w.Log(60))
	}
	if !strings.Contains(string(reason), "line 3") {
		t.Errorf("the reason does not name line 3: %s", reason)
	}

	// Of e.csv and its copy, one loaded and the other was refused naming
	// the loaded one's job.
	loaded, refused := "e.csv", "e-copy.csv"
	if _, err := os.Stat(filepath.Join(inbox, "done", loaded)); err != nil {
		loaded, refused = refused, loaded
	}
	records[loaded] = records["e.csv"]
	if loaded != "e.csv" {
		delete(records, "e.csv")
	}
	loadedJob := readJob(t, filepath.Join(inbox, "done", loaded+".job.json"))
	why, err := os.ReadFile(filepath.Join(inbox, "failed", refused+".error.txt"))
	if err != nil {
		t.Fatalf("the copy %s was not refused: %v", refused, err)
	}
	if !strings.Contains(string(why), "refused") || !strings.Contains(string(why), loadedJob.ID) {
		t.Errorf("the refusal of %s does not name job %s: %s", refused, loadedJob.ID, why)
	}

	// Every valid file is done, with its job beside it.
	var done []string
	for _, name := range names(t, filepath.Join(inbox, "done")) {
		if !strings.HasSuffix(name, ".job.json") {
			done = append(done, name)
		}
	}
	var wantDone []string
	for name := range records {
		wantDone = append(wantDone, name)
	}
	slices.Sort(wantDone)
	if !slices.Equal(done, wantDone) {
		t.Fatalf("done/ holds %v, want %v", done, wantDone)
	}
	ids := map[string]bool{}
	for _, name := range done {
		j := readJob(t, filepath.Join(inbox, "done", name+".job.json"))
		if j.State != "done" || j.Produced != records[name] || j.Rejected != 0 || j.Source != filepath.Join(inbox, name) || len(j.SHA256) != 64 {
			t.Errorf("%s: job %+v, want done with %d records from %s", name, j, records[name], filepath.Join(inbox, name))
		}
		ids[j.ID] = true
	}
	if len(ids) != len(done) {
		t.Errorf("%d jobs for %d files", len(ids), len(done))
	}
	// Nothing is left behind but the files the watcher must ignore.
	if left := names(t, inbox); !slices.Equal(left, []string{"done", "failed", "processing", "upload.ndjson.part"}) {
		t.Errorf("the inbox holds %v", left)
	}
	if left := names(t, filepath.Join(inbox, "processing")); len(left) != 0 {
		t.Errorf("processing/ holds %v", left)
	}

	s.CheckFinal(t, want)
	s.CheckAgg(t, testenv.NameCounts(want))
	if n := s.Count(t, "SELECT count() FROM skuflow.ingest_jobs FINAL WHERE state = 'done'"); n != int64(len(done)) {
		t.Errorf("ingest_jobs holds %d done jobs, want %d", n, len(done))
	}
}

// The watcher is killed (SIGKILL) in the middle of a large file. Restarted,
// it pushes the file again, marks the interrupted job failed, and the tables
// end exact.
func TestWatchKilledMidFile(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	inbox := t.TempDir()
	staging := t.TempDir()
	big := testenv.Gen(t, staging, "big.ndjson", "--rows", "1000000", "--rename-rate", "0.1", "--dup-rate", "0.05", "--seed", "11")
	want := testenv.LastWrites(t, big)

	// A slow producer (small buffer, gzip) leaves time to kill it mid-file.
	w := s.Watcher(t, inbox, append(inboxEnv, "SKUFLOW_LOADER_MAX_BUFFERED_RECORDS=500", "SKUFLOW_KAFKA_COMPRESSION=gzip")...)
	// Renamed in: taken at once.
	if err := os.Rename(big, filepath.Join(inbox, "big.ndjson")); err != nil {
		t.Fatal(err)
	}
	// Kill once the processor is loading records of it, while the loader
	// is still producing (the file is still in processing/).
	s.WaitCommitted(t, "skuflow-processor", 1, time.Minute)
	if _, err := os.Stat(filepath.Join(inbox, "processing", "big.ndjson")); err != nil {
		t.Fatalf("the file left processing/ before the kill: %v", err)
	}
	note, err := os.ReadFile(filepath.Join(inbox, "processing", ".big.ndjson.job"))
	if err != nil {
		t.Fatalf("no job note beside the claimed file: %v", err)
	}
	first := strings.TrimSpace(string(note))
	if state := s.CH.Query(t, "SELECT state FROM skuflow.ingest_jobs FINAL WHERE id = '"+first+"' FORMAT TSV"); state != "producing" {
		t.Fatalf("job %s is %q before the kill, want producing: the file is too small to kill mid-way", first, state)
	}
	w.Kill(t)

	w.Start(t)
	waitFiled(t, inbox, 1, 3*time.Minute)
	j := readJob(t, filepath.Join(inbox, "done", "big.ndjson.job.json"))
	if j.ID == first || j.State != "done" || j.Produced != 1000000 {
		t.Fatalf("job after the restart %+v; the interrupted one was %s", j, first)
	}
	state := s.CH.Query(t, "SELECT state, error FROM skuflow.ingest_jobs FINAL WHERE id = '"+first+"' FORMAT TSV")
	if !strings.HasPrefix(state, "failed\tinterrupted") {
		t.Errorf("the interrupted job %s is %q, want failed and interrupted", first, state)
	}
	s.CheckFinal(t, want)
	s.CheckAgg(t, testenv.NameCounts(want))
}

// A watcher killed after its file is produced, but before the consumer
// groups have it, waits for that job on restart instead of pushing the
// file again; the file is done only once the tables hold it.
func TestWatchKilledWhileWaiting(t *testing.T) {
	s := testenv.NewStack(t)
	inbox := t.TempDir()
	file := testenv.Gen(t, t.TempDir(), "p.ndjson", "--rows", "20000", "--rename-rate", "0.2", "--seed", "5")
	want := testenv.LastWrites(t, file)
	w := s.Watcher(t, inbox, inboxEnv...)
	if err := os.Rename(file, filepath.Join(inbox, "p.ndjson")); err != nil {
		t.Fatal(err)
	}
	// No processor or aggregator yet: the job stops at produced.
	s.WaitCount(t, "SELECT count() FROM skuflow.ingest_jobs FINAL WHERE state = 'produced'", 1, time.Minute)
	first := strings.TrimSpace(s.CH.Query(t, "SELECT id FROM skuflow.ingest_jobs FINAL FORMAT TSV"))
	time.Sleep(time.Second)
	if left := names(t, filepath.Join(inbox, "done")); len(left) != 0 {
		t.Fatalf("done/ holds %v before any consumer ran", left)
	}
	w.Kill(t)
	w.Start(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	waitFiled(t, inbox, 1, 2*time.Minute)
	j := readJob(t, filepath.Join(inbox, "done", "p.ndjson.job.json"))
	if j.ID != first || j.State != "done" {
		t.Fatalf("job after the restart %+v, want %s done", j, first)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.ingest_jobs FINAL"); n != 1 {
		t.Errorf("%d jobs, want 1: the file was pushed again", n)
	}
	if n := s.Committed(t, "skuflow-processor"); n != 20000 {
		t.Errorf("the topic holds %d records, want the file's 20000 once", n)
	}
	s.CheckFinal(t, want)
	s.CheckAgg(t, testenv.NameCounts(want))
}
