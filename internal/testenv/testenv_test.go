package testenv_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/testenv"
)

func TestRepoRootAndTestdata(t *testing.T) {
	root := testenv.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "deploy", "clickhouse", "config.xml")); err != nil {
		t.Fatalf("RepoRoot %s: %v", root, err)
	}
	testenv.ExternalTestdata(t, "JSONTestSuite")
	a, b := testenv.FreePort(t), testenv.FreePort(t)
	if a == b {
		t.Fatalf("FreePort returned %d twice", a)
	}
}

func TestClickHouse(t *testing.T) {
	t.Parallel()
	ch := testenv.ClickHouse(t)
	t.Logf("version %s", ch.Query(t, "SELECT version()"))

	ch.Query(t, "CREATE TABLE t (k UInt32, s String) ENGINE = MergeTree ORDER BY k")
	ch.Query(t, "INSERT INTO t (k, s) VALUES (1, 'a'), (2, 'b')")
	const want = "1\ta\n2\tb"
	if got := ch.Query(t, "SELECT k, s FROM t ORDER BY k"); got != want {
		t.Fatalf("select = %q, want %q", got, want)
	}

	first := ch.Pid()
	ch.Stop(t)
	if ch.Pid() != 0 {
		t.Fatalf("Pid after Stop = %d", ch.Pid())
	}
	if _, err := ch.TryQuery("SELECT 1"); err == nil {
		t.Fatal("query of a stopped server succeeded")
	}
	ch.Start(t)
	if ch.Pid() == first || ch.Pid() == 0 {
		t.Fatalf("Pid after restart = %d, before %d", ch.Pid(), first)
	}
	if got := ch.Query(t, "SELECT k, s FROM t ORDER BY k"); got != want {
		t.Fatalf("after Stop/Start: select = %q, want %q", got, want)
	}

	// An insert that returned is on disk: a kill -9 keeps it.
	ch.Query(t, "INSERT INTO t (k, s) VALUES (3, 'c')")
	ch.Kill(t)
	ch.Start(t)
	if got := ch.Query(t, "SELECT count() FROM t"); got != "3" {
		t.Fatalf("after Kill/Start: count = %s, want 3", got)
	}
}

// TestClickHouseReplacingFinal pins what the design relies on in 18.16: a
// ReplacingMergeTree keeps the highest version per key under FINAL, also
// through a view.
func TestClickHouseReplacingFinal(t *testing.T) {
	t.Parallel()
	ch := testenv.ClickHouse(t)
	ch.Query(t, `CREATE TABLE t (sku String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY sku;
CREATE VIEW t_final AS SELECT sku, v FROM t FINAL`)
	// One INSERT per line: see Query about inline data.
	ch.Query(t, "INSERT INTO t (sku, v) VALUES ('a', 1), ('b', 1)\nINSERT INTO t (sku, v) VALUES ('a', 3), ('a', 2), ('b', 0)")
	if got := ch.Query(t, "SELECT count() FROM t"); got != "5" {
		t.Fatalf("rows before merge = %s, want 5", got)
	}
	const want = "a\t3\nb\t1"
	if got := ch.Query(t, "SELECT sku, v FROM t FINAL ORDER BY sku"); got != want {
		t.Fatalf("FINAL = %q, want %q", got, want)
	}
	if got := ch.Query(t, "SELECT sku, v FROM t_final ORDER BY sku"); got != want {
		t.Fatalf("view over FINAL = %q, want %q", got, want)
	}
}

func TestBrokerKcat(t *testing.T) {
	t.Parallel()
	kcat := testenv.Kcat(t)
	b := testenv.Broker(t, testenv.Topic("kcat-test"))
	keys := produce(t, b, 100)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-C", "-b", b.Addr, "-t", b.Topic, "-e", "-q", "-f", `%k\n`).Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	if !slices.Equal(got, keys) {
		t.Fatalf("kcat read %d keys %v..., want the %d produced", len(got), got[:min(len(got), 5)], len(keys))
	}
}

func TestBrokerRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		restart func(*testing.T, *testenv.BrokerProcess)
	}{
		{"graceful", func(t *testing.T, b *testenv.BrokerProcess) { b.Stop(t); b.Start(t) }},
		{"kill -9", func(t *testing.T, b *testenv.BrokerProcess) { b.Kill(t); b.Start(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := testenv.Broker(t, testenv.Partitions(3))
			produce(t, b, 100)
			const group = "testenv-restart"
			consumeAndCommit(t, b, group, 60)
			before := committed(t, b, group)
			if sum(before) != 60 {
				t.Fatalf("committed %v, want 60 records' worth", before)
			}
			pid := b.Pid()

			tc.restart(t, b)
			if b.Pid() == pid {
				t.Fatalf("pid %d did not change", pid)
			}
			if after := committed(t, b, group); !maps(before, after) {
				t.Errorf("committed offsets after restart = %v, before %v", after, before)
			}
			if n := sum(endOffsets(t, b)); n != 100 {
				t.Errorf("end offsets after restart sum to %d, want 100", n)
			}
			// The group goes on where it was: 40 records are left.
			consumeAndCommit(t, b, group, 40)
			if n := sum(committed(t, b, group)); n != 100 {
				t.Errorf("committed after consuming the rest = %d, want 100", n)
			}
		})
	}
}

// produce writes n records keyed sku-000... to the broker's topic and
// returns the keys in order.
func produce(t *testing.T, b *testenv.BrokerProcess, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic(b.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := make([]string, n)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		keys[i] = fmt.Sprintf("sku-%03d", i)
		recs[i] = &kgo.Record{Key: []byte(keys[i]), Value: []byte(`{"sku":"` + keys[i] + `"}`)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return keys
}

// consumeAndCommit reads n records as a member of group, commits exactly
// those, and leaves the group.
func consumeAndCommit(t *testing.T, b *testenv.BrokerProcess, group string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(b.Topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var took []*kgo.Record
	for len(took) < n {
		fs := cl.PollRecords(ctx, n-len(took))
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after %d of %d records: %v", len(took), n, err)
		}
		took = append(took, fs.Records()...)
	}
	if err := cl.CommitRecords(ctx, took...); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func committed(t *testing.T, b *testenv.BrokerProcess, group string) map[int32]int64 {
	t.Helper()
	adm, ctx := admin(t, b)
	resp, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	return out
}

func endOffsets(t *testing.T, b *testenv.BrokerProcess) map[int32]int64 {
	t.Helper()
	adm, ctx := admin(t, b)
	resp, err := adm.ListEndOffsets(ctx, b.Topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

func admin(t *testing.T, b *testenv.BrokerProcess) (*kadm.Client, context.Context) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(func() { cancel(); cl.Close() })
	return kadm.NewClient(cl), ctx
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func maps(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A service restarted on port 0 listens for metrics on another port, and
// MetricsURL gives the new one, not the first start's.
func TestMetricsURLAfterRestart(t *testing.T) {
	st := testenv.NewStack(t)
	p := st.Service(t, "processor")
	first := p.MetricsURL(t)
	p.Stop(t)
	p.Start(t)
	second := p.MetricsURL(t)
	if second == first {
		t.Fatalf("MetricsURL after the restart is the first start's %s", first)
	}
	if v, n := testenv.ScrapeMetrics(t, second, nil).Sum("skuflow_backing_off"); n == 0 || v != 0 {
		t.Fatalf("%s: skuflow_backing_off %v in %d samples", second, v, n)
	}
}

// A group that has not joined yet has committed nothing: Committed says 0
// rather than failing the test. (kfake answers such a fetch with
// GROUP_ID_NOT_FOUND; a test that starts a service and at once waits for
// its commits used to fail there, when its first look came before the
// service's join.)
func TestCommittedBeforeTheGroupExists(t *testing.T) {
	st := testenv.NewStack(t)
	if n := st.Committed(t, "skuflow-never-joined"); n != 0 {
		t.Fatalf("committed by a group that never joined: %d", n)
	}
	produce(t, st.Broker, 30)
	consumeAndCommit(t, st.Broker, "skuflow-joined", 30)
	if n := st.Committed(t, "skuflow-joined"); n != 30 {
		t.Fatalf("committed by a group that took 30 records: %d", n)
	}
}
