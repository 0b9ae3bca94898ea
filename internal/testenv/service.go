package testenv

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ServiceProcess is one of skuflow's own services (processor, aggregator,
// watcher) run as a separate process of a test.
type ServiceProcess struct {
	Name string
	Dir  string // working directory; holds the log, Dir/NAME.log
	proc *process
	off  int64 // log size before the latest start
}

// ServiceReadyLine is what every skuflow service logs once it works.
const ServiceReadyLine = "msg=started"

// Service builds cmd/NAME and starts it with args and env (KEY=VALUE pairs
// added to the test's environment less its SKUFLOW_* variables), waits for
// its ready line, and stops it with SIGTERM when t ends.
func Service(t testing.TB, name string, env []string, args ...string) *ServiceProcess {
	t.Helper()
	dir := t.TempDir()
	s := &ServiceProcess{Name: name, Dir: dir, proc: &process{
		name:    name,
		path:    BuildBinary(t, name),
		args:    args,
		dir:     dir,
		env:     childEnv(env...),
		logPath: filepath.Join(dir, name+".log"),
	}}
	s.proc.cleanup(t)
	s.Start(t)
	return s
}

// Start starts the service (again) and waits until it logs its ready line.
func (s *ServiceProcess) Start(t testing.TB) {
	t.Helper()
	began := time.Now()
	off, err := s.proc.start()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s.off = off
	if err := s.proc.waitFor(startTimeout, func() bool { return s.proc.logContains(off, ServiceReadyLine) }); err != nil {
		s.proc.fail(t, err)
	}
	t.Logf("%s: pid %d started after %s", s.Name, s.Pid(), time.Since(began).Round(time.Millisecond))
}

// Stop sends SIGTERM and waits for the service to exit; the test fails if
// it had to be killed.
func (s *ServiceProcess) Stop(t testing.TB) {
	t.Helper()
	if s.proc.stop(syscall.SIGTERM, stopGrace) {
		t.Errorf("testenv: %s did not stop within %s of SIGTERM and was killed", s.Name, stopGrace)
	}
}

// Kill kills the service with SIGKILL, as a crash would.
func (s *ServiceProcess) Kill(t testing.TB) {
	t.Helper()
	s.proc.stop(syscall.SIGKILL, stopGrace)
}

// Pid returns the process id of the latest run.
func (s *ServiceProcess) Pid() int { return s.proc.pid() }

// Exited reports whether the latest run has ended, and its error (nil for
// exit status 0).
func (s *ServiceProcess) Exited() (bool, error) {
	s.proc.mu.Lock()
	r := s.proc.run
	s.proc.mu.Unlock()
	if r == nil || !r.exited() {
		return false, nil
	}
	return true, r.err
}

// LogContains reports whether the latest run logged text.
func (s *ServiceProcess) LogContains(text string) bool { return s.proc.logContains(s.off, text) }

// WaitLog waits until the latest run has logged text, failing the test
// after timeout or if the service exits first.
func (s *ServiceProcess) WaitLog(t testing.TB, text string, timeout time.Duration) {
	t.Helper()
	if err := s.proc.waitFor(timeout, func() bool { return s.LogContains(text) }); err != nil {
		s.proc.fail(t, fmt.Errorf("%s (pid %d) did not log %q: %w", s.Name, s.Pid(), text, err))
	}
}

// Log returns the last n lines of the service's log.
func (s *ServiceProcess) Log(n int) string { return s.proc.tail(n) }

// MetricsURL returns the URL of the service's /metrics, as its log says
// ("metrics listening addr=..."), waiting for the line of its latest start:
// on port 0, a restarted service listens on another port.
func (s *ServiceProcess) MetricsURL(t testing.TB) string {
	t.Helper()
	var url string
	err := s.proc.waitFor(startTimeout, func() bool {
		for _, line := range strings.Split(string(s.proc.logSince(s.off)), "\n") {
			if _, rest, ok := strings.Cut(line, "msg=\"metrics listening\""); ok {
				if _, v, ok := strings.Cut(rest, "addr="); ok {
					url = strings.Fields(v)[0]
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		s.proc.fail(t, fmt.Errorf("%s logged no metrics address: %w", s.Name, err))
	}
	return url
}
