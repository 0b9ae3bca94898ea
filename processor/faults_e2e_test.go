package processor_test

import (
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
	s := newStack(t)
	p := s.processor(t)
	file := gen(t, t.TempDir(), "million.ndjson", "--rows", "1000000", "--dup-rate", "0.03", "--rename-rate", "0.03", "--seed", "5")
	want := lastWrites(t, file)

	done := s.startPush(t, file)
	s.waitRows(t, 150000, 2*time.Minute)
	p.Kill(t)
	killedAt := s.count(t, "SELECT count() FROM skuflow.products")
	t.Logf("killed the processor with %d rows inserted", killedAt)
	if killedAt >= 1000000 {
		t.Fatal("the processor finished before it could be killed: the test proves nothing")
	}
	time.Sleep(500 * time.Millisecond)
	p.Start(t)
	done()
	s.checkFinal(t, want)
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
