package aggregator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/kafka"
	"skuflow/internal/testenv"
)

// writeProducts writes an NDJSON file of sku -> name records, in order.
func writeProducts(t *testing.T, name string, recs ...string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(recs); i += 2 {
		line, _ := json.Marshal(map[string]string{"sku": recs[i], "name": recs[i+1], "description": name})
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fastChecks makes services and pushes notice a changed topic quickly.
const fastChecks = "SKUFLOW_KAFKA_TOPIC_CHECK_INTERVAL=300ms"

// Drill: the broker's data is wiped (a new Kafka, or the topic deleted and
// created again). Offsets start from 0, yet a newer write wins under FINAL,
// the aggregate is exact, and a job is done only once FINAL shows it.
func TestDrillTopicRecreated(t *testing.T) {
	s := testenv.NewStack(t, fastChecks)
	proc := s.Service(t, "processor")
	agg := s.Service(t, "aggregator")
	first := testenv.Gen(t, t.TempDir(), "first.ndjson", "--rows", "3000", "--names", "20", "--seed", "41")
	defer func() {
		for _, svc := range []*testenv.ServiceProcess{proc, agg} {
			if !svc.LogContains("the topic was recreated; starting again on it") {
				t.Errorf("service pid %d did not say it started again on the new topic:\n%s", svc.Pid(), svc.Log(20))
			}
		}
	}()
	s.PushWait(t, first)

	inbox := t.TempDir()
	w := s.Watcher(t, inbox, "SKUFLOW_WATCH_QUIET_PERIOD=100ms", "SKUFLOW_WATCH_POLL_INTERVAL=100ms")
	// A push nobody waited for: its job stays produced until looked at.
	unsettled := writeProducts(t, "unsettled.ndjson", "u1", "U")
	if o, e, err := s.Loader(t, "push", "--no-progress", unsettled); err != nil {
		t.Fatalf("push: %v\n%s%s", err, o, e)
	}

	// The services run on while the broker's data is wiped: they notice
	// the new topic ID and start again on it.
	s.Broker.Stop(t)
	if err := os.RemoveAll(filepath.Join(s.Broker.Dir, "data")); err != nil {
		t.Fatal(err)
	}
	s.Broker.Start(t)
	// The same skus under other names, fewer records: every offset of the
	// new topic is below the old rows' offsets.
	var recs []string
	for sku, p := range testenv.LastWrites(t, first) {
		if len(recs) < 2000 {
			recs = append(recs, sku, "Renamed "+p.Name)
		}
	}
	recs = append(recs, "brand-new", "Renamed")
	second := writeProducts(t, "second.ndjson", recs...)
	if o, e, err := s.Loader(t, "push", "--wait", "--wait-timeout", "2m", "--no-progress", second); err != nil {
		t.Fatalf("push: %v\n%s%s", err, o, e)
	}
	// The same content again: the earlier job produced to the old topic
	// and was never seen loaded, so it does not block; it failed.
	if o, e, err := s.Loader(t, "push", "--wait", "--no-progress", unsettled); err != nil || strings.Contains(o+e, "refused") {
		t.Fatalf("push again after the topic was recreated: %v\n%s%s", err, o, e)
	}
	if got := s.CH.Query(t, "SELECT state, error LIKE '%recreated%' FROM skuflow.ingest_jobs FINAL WHERE source LIKE '%unsettled.ndjson' ORDER BY started_at LIMIT 1 FORMAT TSV"); got != "failed\t1" {
		t.Errorf("the job produced to the old topic: %q, want failed, saying the topic was recreated", got)
	}
	want := testenv.LastWrites(t, first, second, unsettled)
	s.CheckFinal(t, want)
	s.CheckAgg(t, testenv.NameCounts(want))

	// The watcher's producer client started on the old topic: a file
	// dropped now is not lost and not retried for ever; the watcher stops
	// saying why, and the file waits in processing/ for its next run.
	if err := os.WriteFile(filepath.Join(inbox, "late.ndjson"), []byte(`{"sku":"late","name":"L"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exited, err := w.Exited(); exited {
			if err == nil || !w.LogContains("topic was recreated") {
				t.Errorf("the watcher stopped without the reason (%v):\n%s", err, w.Log(10))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher still runs on a recreated topic:\n%s", w.Log(10))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(inbox, "processing", "late.ndjson")); err != nil {
		t.Errorf("the late file is not waiting in processing/: %v", err)
	}
}

// Drill: s1->A is counted and committed; then s1->B and s2->C; the broker
// compacts s1->A away; the aggregator restarts. The counts are B 1, C 1,
// never A 1, B 1, C 1.
func TestDrillCompactionThenRestart(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	a := s.Service(t, "aggregator")
	s.PushWait(t, writeProducts(t, "one.ndjson", "s1", "A"))
	a.Stop(t)
	out, stderr, err := s.Loader(t, "push", "--no-progress", writeProducts(t, "two.ndjson", "s1", "B", "s2", "C"))
	if err != nil {
		t.Fatalf("push: %v\n%s%s", err, out, stderr)
	}
	// A later batch: the broker never compacts the last one.
	out, stderr, err = s.Loader(t, "push", "--no-progress", writeProducts(t, "three.ndjson", "s1", "B", "s2", "C"))
	if err != nil {
		t.Fatalf("push: %v\n%s%s", err, out, stderr)
	}
	if err := syscall.Kill(s.Broker.Pid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	// The compaction must have removed s1->A, or the test proves nothing.
	deadline := time.Now().Add(30 * time.Second)
	for topicHasValue(t, s.Broker.Addr, `"name":"A"`) {
		if time.Now().After(deadline) {
			t.Fatal("s1->A is still on the topic after compaction")
		}
		time.Sleep(200 * time.Millisecond)
	}
	a.Start(t)
	s.PushWait(t, writeProducts(t, "four.ndjson", "s3", "C"))
	s.CheckAgg(t, map[string]int64{"B": 1, "C": 2})
}

// topicHasValue reads the whole topic with kcat and reports whether a
// record's value contains s.
func topicHasValue(t *testing.T, broker, s string) bool {
	t.Helper()
	out, err := exec.Command(testenv.Kcat(t), "-C", "-b", broker, "-t", "products", "-e", "-q", "-f", "%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}
	return strings.Contains(string(out), s)
}

// Drill: records written by another client with no key, another key, or
// to a partition their key does not belong to, are set aside by the
// processor and skipped by the aggregator; the sku's real versions win.
func TestDrillForeignKeysSetAside(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	s.PushWait(t, writeProducts(t, "one.ndjson", "s1", "A", "s2", "B"))
	kcat := func(args ...string) {
		t.Helper()
		cmd := exec.Command(testenv.Kcat(t), append([]string{"-P", "-b", s.Broker.Addr, "-t", "products"}, args...)...)
		cmd.Stdin = strings.NewReader(`{"sku":"s1","name":"Intruder"}` + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat %v: %v %s", args, err, out)
		}
	}
	other := fmt.Sprint((kafka.PartitionOf([]byte("s1"), 6) + 1) % 6)
	kcat()                        // no key
	kcat("-k", "s2")              // another sku's key
	kcat("-k", "s1", "-p", other) // its own key, on a partition not its own
	s.PushWait(t, writeProducts(t, "two.ndjson", "s3", "C"))
	s.WaitCount(t, "SELECT count() FROM skuflow.ingest_errors WHERE stage = 'key'", 3, time.Minute)
	s.CheckFinal(t, map[string]testenv.Product{
		"s1": {Sku: "s1", Name: "A", Description: "one.ndjson"},
		"s2": {Sku: "s2", Name: "B", Description: "one.ndjson"},
		"s3": {Sku: "s3", Name: "C", Description: "two.ndjson"},
	})
	s.CheckAgg(t, map[string]int64{"A": 1, "B": 1, "C": 1})
}

// Drill: partitions are added to the topic while a push streams and the
// services run. The push fails with the reason, no key ever lands on a
// second partition (the loader's partitioner keeps the configured count),
// and the services stop saying why.
func TestDrillPartitionsAdded(t *testing.T) {
	s := testenv.NewStack(t, fastChecks)
	proc := s.Service(t, "processor")
	agg := s.Service(t, "aggregator")

	// A push from a pipe that stays open while partitions are added.
	cmd := exec.Command(testenv.BuildBinary(t, "loader"), "push", "--no-progress", "--format", "ndjson", "-")
	cmd.Env = append(os.Environ(), s.Env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		fmt.Fprintf(in, `{"sku":"k%d","name":"before"}`+"\n", i)
	}
	s.WaitCommitted(t, "skuflow-processor", 500, time.Minute)

	s.Broker.AddPartitions(t, 6)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Broker.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st, err := kafka.Describe(ctx, cl, "products"); err != nil || st.Partitions != 12 {
		t.Fatalf("after adding partitions: %+v %v", st, err)
	}
	for i := range 500 {
		fmt.Fprintf(in, `{"sku":"k%d","name":"after"}`+"\n", i)
	}
	in.Close()
	err = cmd.Wait()
	// The push fails whether its periodic check or its last look saw it.
	if err == nil || !strings.Contains(out.String(), "has 12 partitions now, it had 6") {
		t.Errorf("the push went on after partitions were added: %v\n%s", err, out.String())
	}
	// No key on two partitions.
	kc, err := exec.Command(testenv.Kcat(t), "-C", "-b", s.Broker.Addr, "-t", "products", "-e", "-q", "-f", "%k %p\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v %s", err, kc)
	}
	where := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(kc)), "\n") {
		k, p, _ := strings.Cut(line, " ")
		if w, ok := where[k]; ok && w != p {
			t.Fatalf("key %s is on partitions %s and %s", k, w, p)
		}
		where[k] = p
	}
	for _, svc := range []*testenv.ServiceProcess{proc, agg} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if exited, err := svc.Exited(); exited {
				if err == nil || !svc.LogContains("has 12 partitions now, it had 6") {
					t.Errorf("service pid %d stopped without the reason (%v):\n%s", svc.Pid(), err, svc.Log(10))
				}
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("service pid %d still runs on a topic whose partitions changed:\n%s", svc.Pid(), svc.Log(10))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// Drill: the broker is killed (SIGKILL) in the middle of a push and
// started again on its data. The tables end exact, or the push fails with
// a reason and pushing again makes them exact.
func TestDrillBrokerRestartMidPush(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	file := testenv.Gen(t, t.TempDir(), "big.ndjson", "--rows", "200000", "--rename-rate", "0.2", "--names", "300", "--seed", "77")
	cmd := exec.Command(testenv.BuildBinary(t, "loader"), "push", "--wait", "--wait-timeout", "3m", "--no-progress", file)
	cmd.Env = append(os.Environ(), s.Env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.WaitCommitted(t, "skuflow-processor", 20000, 2*time.Minute)
	s.Broker.Kill(t)
	time.Sleep(2 * time.Second)
	s.Broker.Start(t)
	if err := cmd.Wait(); err != nil {
		t.Logf("the push failed across the broker's restart (%v); pushing again:\n%s", err, out.String())
		if !strings.Contains(out.String(), "error") && !strings.Contains(out.String(), "failed") {
			t.Errorf("the push failed without a reason:\n%s", out.String())
		}
		o, e, err := s.Loader(t, "push", "--wait", "--force", "--no-progress", file)
		if err != nil {
			t.Fatalf("push again: %v\n%s%s", err, o, e)
		}
	}
	want := testenv.LastWrites(t, file)
	s.CheckFinal(t, want)
	s.CheckAgg(t, testenv.NameCounts(want))
}
