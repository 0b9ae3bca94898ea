package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"skuflow/config"
	"skuflow/internal/kafka"
)

// Stack is one test's real services, ClickHouse and the broker, and the
// environment that points skuflow's commands at them.
type Stack struct {
	// CH is the server the test's own queries go to (on a cluster: the
	// second replica of the first shard, through the Distributed tables).
	CH     *ClickHouseServer
	Broker *BrokerProcess
	// Cluster is the ClickHouse cluster of NewClusterStack, nil otherwise.
	Cluster *ClickHouseCluster
	// Env holds SKUFLOW_* settings for every command the stack runs; later
	// entries win.
	Env []string
}

// NewStack starts ClickHouse and the broker. Services flush small batches
// often, so that crashes land between and during writes.
func NewStack(t testing.TB, env ...string) *Stack {
	t.Helper()
	return NewStackOn(t, ClickHouse(t), env...)
}

// NewStackOn is NewStack with the ClickHouse server given.
func NewStackOn(t testing.TB, ch *ClickHouseServer, env ...string) *Stack {
	t.Helper()
	s := &Stack{CH: ch, Broker: Broker(t)}
	s.Env = append([]string{
		"SKUFLOW_KAFKA_BROKERS=" + s.Broker.Addr,
		"SKUFLOW_CLICKHOUSE_ADDR=" + s.CH.TCPAddr,
		"SKUFLOW_PROCESSOR_FLUSH_INTERVAL=200ms",
		"SKUFLOW_PROCESSOR_BATCH_ROWS=20000",
		"SKUFLOW_PROCESSOR_SESSION_TIMEOUT=3s",
		"SKUFLOW_AGGREGATOR_FLUSH_INTERVAL=200ms",
		"SKUFLOW_AGGREGATOR_BATCH_RECORDS=20000",
		"SKUFLOW_AGGREGATOR_SESSION_TIMEOUT=3s",
		// Any free port: tests run side by side; MetricsURL finds it.
		"SKUFLOW_PROCESSOR_METRICS_ADDR=127.0.0.1:0",
		"SKUFLOW_AGGREGATOR_METRICS_ADDR=127.0.0.1:0",
		"SKUFLOW_WATCH_METRICS_ADDR=127.0.0.1:0",
	}, env...)
	return s
}

// NewClusterStack is NewStack on a ClickHouse cluster of shards x
// replicas: the services reach it through every server in turn
// (clickhouse.addr), the first one first, with clickhouse.cluster set.
func NewClusterStack(t testing.TB, shards, replicas int, env ...string) *Stack {
	t.Helper()
	c := NewClickHouseCluster(t, shards, replicas)
	s := NewStackOn(t, c.Shards[0][min(1, replicas-1)], append([]string{
		"SKUFLOW_CLICKHOUSE_ADDR=" + c.Addrs(),
		"SKUFLOW_CLICKHOUSE_CLUSTER=" + c.Name,
	}, env...)...)
	s.Cluster = c
	return s
}

// Service starts cmd/name against the stack, with env added.
func (s *Stack) Service(t testing.TB, name string, env ...string) *ServiceProcess {
	t.Helper()
	return Service(t, name, append(append([]string{}, s.Env...), env...))
}

// Loader runs the loader against the stack.
func (s *Stack) Loader(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(BuildBinary(t, "loader"), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = childEnv(s.Env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// PushWait pushes files with `loader push --wait`: it returns once every
// consumer group has committed past what the push produced.
func (s *Stack) PushWait(t testing.TB, files ...string) {
	t.Helper()
	out, stderr, err := s.Loader(t, append([]string{"push", "--wait", "--wait-timeout", "5m", "--no-progress", "--json"}, files...)...)
	if err != nil {
		t.Fatalf("push %v: %v\n%s\n%s", files, err, out, stderr)
	}
}

// StartPush starts `loader push --wait` of file (with more flags, if
// given) in the background; the returned function waits for it to return
// and fails the test if it failed.
func (s *Stack) StartPush(t testing.TB, file string, flags ...string) func() {
	t.Helper()
	args := append([]string{"push", "--wait", "--wait-timeout", "5m", "--no-progress"}, flags...)
	cmd := exec.Command(BuildBinary(t, "loader"), append(args, file)...)
	cmd.Env = childEnv(s.Env...)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("push %s: %v\n%s", file, err, out.String())
		}
	}
}

// Count runs a query that returns one number.
func (s *Stack) Count(t testing.TB, query string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s.CH.Query(t, query), &n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// WaitCount waits until query returns at least n. A query that fails (a
// table a service has not created yet) counts as not yet.
func (s *Stack) WaitCount(t testing.TB, query string, n int64, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%s reaching %d", query, n), func() bool {
		out, err := s.CH.TryQuery(query)
		var got int64
		if err == nil {
			_, err = fmt.Sscan(out, &got)
		}
		return err == nil && got >= n
	})
}

// eventually polls cond until it holds, and fails the test after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitInsertRunning waits until ClickHouse runs an INSERT into table
// (database.name) that began after since, asking over HTTP, which is quick
// enough to catch one in flight. It reports whether it saw one before
// timeout. since tells a restarted service's INSERTs from those of the
// process it replaced: ClickHouse goes on with a killed client's INSERT
// until it notices the connection is gone, and a test that took that one
// for the new process's killed the new process before it had even joined
// its group.
func (s *Stack) WaitInsertRunning(t testing.TB, table string, since time.Time, timeout time.Duration) bool {
	t.Helper()
	// The services quote their identifiers: `db`.`name`.
	db, name, _ := strings.Cut(table, ".")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		q := url.QueryEscape(fmt.Sprintf("SELECT count() FROM system.processes WHERE (query LIKE 'INSERT INTO %s %%' OR query LIKE 'INSERT INTO `%s`.`%s` %%') AND elapsed < %f",
			table, db, name, time.Since(since).Seconds()))
		resp, err := http.Get("http://" + s.CH.HTTPAddr + "/?query=" + q)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) != "0" {
				return true
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// Gen writes a synthetic products file with `loader gen` into dir.
func Gen(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	cmd := exec.Command(BuildBinary(t, "loader"), append([]string{"gen", "--out", path}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen: %v: %s", err, out)
	}
	return path
}

// Product is a products record.
type Product struct{ Sku, Name, Description string }

// LastWrites reads NDJSON files in push order and returns the last record
// per sku: what the products table must hold.
func LastWrites(t testing.TB, files ...string) map[string]Product {
	t.Helper()
	want := map[string]Product{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var p Product
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			want[p.Sku] = p
		}
		fh.Close()
	}
	return want
}

// NameCounts is what products_agg must hold for the last writes.
func NameCounts(last map[string]Product) map[string]int64 {
	out := map[string]int64{}
	for _, p := range last {
		out[p.Name]++
	}
	return out
}

// CheckFinal compares `products FINAL` with want row by row, streaming the
// table out of clickhouse-client.
func (s *Stack) CheckFinal(t testing.TB, want map[string]Product) {
	t.Helper()
	cmd := s.CH.ClientCmd("--query", "SELECT sku, name, description FROM skuflow.products FINAL FORMAT TSV")
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
		got := Product{UnescapeTSV(f[0]), UnescapeTSV(f[1]), UnescapeTSV(f[2])}
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

// Agg returns products_agg as name -> no_of_products.
func (s *Stack) Agg(t testing.TB) map[string]int64 {
	t.Helper()
	return s.nameCounts(t, "SELECT name, no_of_products FROM skuflow.products_agg FORMAT TSV")
}

// CheckAgg checks invariant 3: products_agg equals want, and equals the
// counts ClickHouse computes from products FINAL.
func (s *Stack) CheckAgg(t testing.TB, want map[string]int64) {
	t.Helper()
	got := s.Agg(t)
	fromFinal := s.nameCounts(t, "SELECT name, count() FROM skuflow.products FINAL GROUP BY name FORMAT TSV")
	diff := 0
	for name, n := range want {
		if got[name] != n || fromFinal[name] != n {
			if diff < 10 {
				t.Errorf("name %q: products_agg %d, products FINAL %d, want %d", name, got[name], fromFinal[name], n)
			}
			diff++
		}
	}
	for name, n := range got {
		if _, ok := want[name]; !ok {
			if diff < 10 {
				t.Errorf("name %q: products_agg %d, want none", name, n)
			}
			diff++
		}
	}
	if diff > 0 || len(fromFinal) != len(want) {
		t.Fatalf("%d names differ; products_agg has %d names, FINAL %d, want %d", diff, len(got), len(fromFinal), len(want))
	}
}

func (s *Stack) nameCounts(t testing.TB, query string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	text := s.CH.Query(t, query)
	if text == "" {
		return out
	}
	for _, line := range strings.Split(text, "\n") {
		name, n, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("%s: line %q", query, line)
		}
		var c int64
		fmt.Sscan(n, &c)
		out[UnescapeTSV(name)] = c
	}
	return out
}

// UnescapeTSV undoes ClickHouse's TabSeparated escaping.
func UnescapeTSV(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\\`, `\`, `\'`, `'`, `\r`, "\r", `\0`, "\x00", `\b`, "\b", `\f`, "\f").Replace(s)
}

// Committed returns the sum over partitions of group's committed offsets on
// the stack's topic: how far the group has got.
func (s *Stack) Committed(t testing.TB, group string) int64 {
	t.Helper()
	cl, err := kafka.NewClient(config.Kafka{Brokers: []string{s.Broker.Addr}, DialTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err == nil {
		err = resp.Error()
	}
	// A group that has not joined yet has committed nothing (kfake answers
	// for it with this error).
	if errors.Is(err, kerr.GroupIDNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("committed offsets of %s: %v", group, err)
	}
	var sum int64
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == s.Broker.Topic && o.At > 0 {
			sum += o.At
		}
	})
	return sum
}

// WaitCommitted waits until group has committed at least n records.
func (s *Stack) WaitCommitted(t testing.TB, group string, n int64, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("commit of %d records by group %s", n, group), func() bool { return s.Committed(t, group) >= n })
}
