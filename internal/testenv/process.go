package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a stopped service may take to exit before it is
// killed (and the test fails). ClickHouse 18.16 usually stops in under a
// second but has taken 10 s in CI; the broker stops at once; skuflow's
// services may take their shutdown_timeout (30 s by default) to hand over
// what they hold.
const stopGrace = 60 * time.Second

// startTimeout bounds the wait for a started service to answer. Both
// services answer in well under a second; the margin covers a loaded CI
// machine running several test packages at once.
const startTimeout = 60 * time.Second

// process is one child program of a test. It can be started again with the
// same arguments after it stopped; every run appends its output to the same
// log file.
type process struct {
	name    string
	path    string
	args    []string
	dir     string // working directory
	env     []string
	logPath string

	mu  sync.Mutex
	run *run // the latest run, nil before the first start
}

// run is one execution of a process.
type run struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // cmd.Wait's result; read only after done
}

func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// start launches the program and returns the log file's size before its
// output, so that callers can look for a ready line of this run only.
func (p *process) start() (logOffset int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil && !p.run.exited() {
		return 0, fmt.Errorf("%s is already running (pid %d)", p.name, p.run.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close() // the child has its own copy
	fmt.Fprintf(f, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", p.name, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	p.run = r
	return st.Size(), nil
}

// current returns the running run, or nil.
func (p *process) current() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil || p.run.exited() {
		return nil
	}
	return p.run
}

// pid returns the running process's id, or 0.
func (p *process) pid() int {
	if r := p.current(); r != nil {
		return r.cmd.Process.Pid
	}
	return 0
}

// exitError returns why the latest run ended, or nil while it runs.
func (p *process) exitError() error {
	p.mu.Lock()
	r := p.run
	p.mu.Unlock()
	if r == nil || !r.exited() {
		return nil
	}
	if r.err == nil {
		return errors.New("exited with status 0")
	}
	return r.err
}

// stop sends sig and waits for the process to exit; after grace it sends
// SIGKILL. It reports whether SIGKILL was needed. Stopping a stopped process
// does nothing.
func (p *process) stop(sig syscall.Signal, grace time.Duration) (killed bool) {
	r := p.current()
	if r == nil {
		return false
	}
	_ = r.cmd.Process.Signal(sig) // it may have exited meanwhile; done tells
	select {
	case <-r.done:
		return sig == syscall.SIGKILL
	case <-time.After(grace):
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	return true
}

// waitFor polls ready until it returns true, the process exits, or timeout
// passes.
func (p *process) waitFor(timeout time.Duration, ready func() bool) error {
	r := p.current()
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if r == nil || r.exited() {
			return fmt.Errorf("%s exited during start: %v", p.name, p.exitError())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s", p.name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logContains reports whether the log holds s after offset.
func (p *process) logContains(offset int64, s string) bool {
	return bytes.Contains(p.logSince(offset), []byte(s))
}

// logSince returns the log after offset (nil when it cannot be read).
func (p *process) logSince(offset int64) []byte {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	return b
}

// tail returns the last n lines of the log.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cleanup registers the end of the process with t: the log's tail when the
// test failed, then a graceful stop.
func (p *process) cleanup(t testing.TB) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of %s's log %s:\n%s", p.name, p.logPath, p.tail(40))
		}
		if p.stop(syscall.SIGTERM, stopGrace) {
			t.Logf("%s did not stop within %s of SIGTERM and was killed", p.name, stopGrace)
		}
	})
}

// fail ends the test with err and the log's tail.
func (p *process) fail(t testing.TB, err error) {
	t.Helper()
	t.Fatalf("%v\nlast lines of %s:\n%s", err, p.logPath, p.tail(40))
}

// childEnv is the environment of a started service: the test's, without
// SKUFLOW_* variables, so that a developer's settings (SKUFLOW_CONFIG, log
// format, ports) cannot change what a test runs against.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKUFLOW_") {
			env = append(env, kv)
		}
	}
	// A test names the services it started; one that forgets must not
	// reach a local stack on the default ports (`make up`) and pass on
	// it. Port 1 refuses at once.
	env = append(env, "SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:1", "SKUFLOW_KAFKA_BROKERS=127.0.0.1:1")
	return append(env, extra...)
}

// startReady starts p and waits until ready says so, failing the test with
// p's log if it exits or does not get there within startTimeout; then it
// logs "NAME: pid N ready on WHERE after D". It returns the log offset of
// the start.
func (p *process) startReady(t testing.TB, ready func() bool, where string) int64 {
	t.Helper()
	began := time.Now()
	off, err := p.start()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := p.waitFor(startTimeout, ready); err != nil {
		p.fail(t, err)
	}
	t.Logf("%s: pid %d ready on %s after %s", p.name, p.pid(), where, time.Since(began).Round(time.Millisecond))
	return off
}
