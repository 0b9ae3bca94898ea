package processor_test

import (
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// startPush starts `loader push --wait` in the background; the returned
// function waits until it returns, that is until the processor group has
// committed past everything the push produced (invariant 4), and fails the
// test if it failed.
func (s *stack) startPush(t *testing.T, file string) func() {
	t.Helper()
	s.aggregator(t)
	cmd := exec.Command(testenv.BuildBinary(t, "loader"), "push", "--wait", "--wait-timeout", "5m", "--no-progress", file)
	cmd.Env = append(cmd.Environ(), s.env...)
	cmd.Dir = t.TempDir()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("push: %v\n%s", err, out.String())
		}
	}
}

// Invariant 1 under a crash: kill -9 of the processor in the middle of a
// 1,000,000-row push, then a restart; the final table is exact.
func TestKillProcessorMidPush(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes a million rows")
	}
	// Large batches, so that an insert takes long enough to be caught.
	s := newStack(t, "SKUFLOW_PROCESSOR_BATCH_ROWS=100000")
	p := s.processor(t)
	file := gen(t, t.TempDir(), "million.ndjson", "--rows", "1000000", "--dup-rate", "0.03", "--rename-rate", "0.03", "--seed", "5")
	want := lastWrites(t, file)

	done := s.startPush(t, file)
	// Kill it three times while an INSERT is running: the moment when a
	// processor that committed before inserting would lose a batch.
	for kill := 1; kill <= 3; kill++ {
		// Spread the kills over the push.
		s.waitRows(t, int64(kill-1)*150000, 2*time.Minute)
		if !s.waitInsertRunning(t, time.Minute) {
			t.Fatalf("kill %d: no insert seen running: the test proves nothing", kill)
		}
		p.Kill(t)
		t.Logf("kill %d: killed the processor during an insert, %d rows in the table", kill,
			s.count(t, "SELECT count() FROM skuflow.products"))
		p.Start(t)
	}
	done()
	s.checkFinal(t, want)
}

// waitInsertRunning waits until ClickHouse is running an INSERT into the
// products table, asking over HTTP, which is quick enough to catch one.
func (s *stack) waitInsertRunning(t *testing.T, timeout time.Duration) bool {
	t.Helper()
	q := url.QueryEscape("SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO skuflow.products %'")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.ch.HTTPAddr + "/?query=" + q)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.TrimSpace(string(body)) != "0" && resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// Invariant 6: ClickHouse down for 20 s in the middle of a push. The
// processor waits and retries, never exits, and the table ends exact.
func TestClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops ClickHouse for 20 s")
	}
	s := newStack(t)
	p := s.processor(t)
	file := gen(t, t.TempDir(), "outage.ndjson", "--rows", "300000", "--dup-rate", "0.05", "--rename-rate", "0.05", "--seed", "9")
	want := lastWrites(t, file)

	done := s.startPush(t, file)
	s.waitRows(t, 20000, 2*time.Minute)
	s.ch.Stop(t)
	time.Sleep(20 * time.Second)
	if exited, err := p.Exited(); exited {
		t.Fatalf("the processor exited while ClickHouse was down: %v", err)
	}
	if !p.LogContains("insert batch failed; retrying") {
		t.Fatalf("the processor did not retry:\n%s", p.Log(20))
	}
	s.ch.Start(t)
	done()
	s.checkFinal(t, want)
	if exited, err := p.Exited(); exited {
		t.Fatalf("the processor exited: %v", err)
	}
}
