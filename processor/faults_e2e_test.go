package processor_test

import (
	"syscall"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// Invariant 1 under a crash: kill -9 of the processor in the middle of a
// 1,000,000-row push, then a restart; the final table is exact.
func TestKillProcessorMidPush(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes a million rows")
	}
	// Large batches, so that an insert takes long enough to be caught.
	s := newStack(t, "SKUFLOW_PROCESSOR_BATCH_ROWS=100000")
	p := s.Service(t, "processor")
	file := testenv.Gen(t, t.TempDir(), "million.ndjson", "--rows", "1000000", "--dup-rate", "0.03", "--rename-rate", "0.03", "--seed", "5")
	want := testenv.LastWrites(t, file)

	started := time.Now()
	done := s.StartPush(t, file)
	// Kill it three times while an INSERT is running: the moment when a
	// processor that committed before inserting would lose a batch.
	for kill := 1; kill <= 3; kill++ {
		// Spread the kills over the push.
		s.WaitCount(t, "SELECT count() FROM skuflow.products", int64(kill-1)*150000, 2*time.Minute)
		if !s.WaitInsertRunning(t, "skuflow.products", started, time.Minute) {
			t.Fatalf("kill %d: no insert seen running: the test proves nothing", kill)
		}
		p.Kill(t)
		t.Logf("kill %d: killed the processor during an insert, %d rows in the table", kill,
			s.Count(t, "SELECT count() FROM skuflow.products"))
		started = time.Now()
		p.Start(t)
	}
	done()
	s.CheckFinal(t, want)
}

// Invariant 6: ClickHouse down for 20 s in the middle of a push. The
// processor waits and retries, never exits, and the table ends exact.
func TestClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops ClickHouse for 20 s")
	}
	s := newStack(t)
	p := s.Service(t, "processor")
	file := testenv.Gen(t, t.TempDir(), "outage.ndjson", "--rows", "300000", "--dup-rate", "0.05", "--rename-rate", "0.05", "--seed", "9")
	want := testenv.LastWrites(t, file)

	done := s.StartPush(t, file)
	s.WaitCount(t, "SELECT count() FROM skuflow.products", 20000, 2*time.Minute)
	// Killed, not stopped: a stop waits for 18.16 to shut down, which took
	// 10 s in one CI run, and the outage then outlasted the loader's 30 s
	// for recording its job (storeTimeout), which is not what this tests.
	s.CH.Kill(t)
	time.Sleep(20 * time.Second)
	if exited, err := p.Exited(); exited {
		t.Fatalf("the processor exited while ClickHouse was down: %v", err)
	}
	if !p.LogContains("insert batch failed; retrying") {
		t.Fatalf("the processor did not retry:\n%s", p.Log(20))
	}
	s.CH.Start(t)
	done()
	s.CheckFinal(t, want)
	if exited, err := p.Exited(); exited {
		t.Fatalf("the processor exited: %v", err)
	}
}

// ClickHouse replaced under a running pipeline (a new server, a restore
// from an older backup, a move to a cluster) while Kafka keeps the groups'
// offsets: the processor starts each partition where the table ends, not
// where the group committed, so the table holds every record again, and
// agrees with the aggregator, which starts where the table ends too.
func TestClickHouseReplaced(t *testing.T) {
	s := newStack(t)
	p := s.Service(t, "processor")
	s.Service(t, "aggregator")
	dir := t.TempDir()
	first := testenv.Gen(t, dir, "first.ndjson", "--rows", "20000", "--rename-rate", "0.05", "--seed", "21")
	s.PushWait(t, first)

	// The records table loses what it held (the aggregates' tables too,
	// as with a new server); the processor is started again, as it would
	// be on a new server.
	p.Stop(t)
	s.CH.Query(t, "DROP TABLE skuflow.products")
	p.Start(t)
	second := testenv.Gen(t, dir, "second.ndjson", "--rows", "5000", "--rename-rate", "0.05", "--seed", "22")
	s.PushWait(t, second)

	want := testenv.LastWrites(t, first, second)
	s.CheckFinal(t, want)
	s.CheckAgg(t, testenv.NameCounts(want))
	if !p.LogContains("the table ends before the group's committed offset") {
		t.Fatalf("the processor did not say it read partitions again:\n%s", p.Log(20))
	}
}

// A ClickHouse that stops answering without an error or a reset (frozen
// with SIGSTOP, as a black-holing network would leave it) while the
// processor streams into it: SIGTERM stops the processor within
// shutdown_timeout and a few seconds, saying why, instead of waiting on a
// block's write for ever; after a restart the table is exact.
func TestStopWithClickHouseFrozen(t *testing.T) {
	s := newStack(t)
	file := testenv.Gen(t, t.TempDir(), "frozen.ndjson", "--rows", "1000000", "--rename-rate", "0.01", "--seed", "31")
	want := testenv.LastWrites(t, file)
	// The topic full before the processor starts: it streams, never
	// caught up, so its INSERT is open when ClickHouse freezes.
	if _, stderr, err := s.Loader(t, "push", "--no-progress", file); err != nil {
		t.Fatalf("push: %v\n%s", err, stderr)
	}
	p := s.Service(t, "processor", "SKUFLOW_PROCESSOR_SHUTDOWN_TIMEOUT=2s", "SKUFLOW_PROCESSOR_BATCH_ROWS=5000",
		"SKUFLOW_PROCESSOR_FLUSH_INTERVAL=1h")
	testenv.WaitMetrics(t, p.MetricsURL(t), time.Minute, "300,000 records read", func(m testenv.Metrics) bool {
		v, _ := m.Value("skuflow_records_consumed_total", "type", "products")
		return v >= 300000
	})
	ch := s.CH.Pid()
	if err := syscall.Kill(ch, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := true
	thaw := func() {
		if frozen {
			frozen = false
			if err := syscall.Kill(ch, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	defer thaw()
	// Its socket buffers fill first: let the processor block on them.
	time.Sleep(2 * time.Second)
	began := time.Now()
	if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		if exited, err := p.Exited(); exited {
			t.Logf("the processor stopped %s after SIGTERM: %v", time.Since(began).Round(time.Millisecond), err)
			if err == nil || !p.LogContains("stopped without waiting") {
				t.Fatalf("the processor did not say why it stopped without its last INSERT:\n%s", p.Log(10))
			}
			break
		}
		if time.Since(began) > 20*time.Second {
			t.Fatalf("the processor did not stop within 20 s of SIGTERM with ClickHouse frozen (shutdown_timeout 2s):\n%s", p.Log(10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	thaw()
	p.Start(t)
	s.WaitCount(t, "SELECT count() FROM skuflow.products FINAL", int64(len(want)), 2*time.Minute)
	s.CheckFinal(t, want)
}
