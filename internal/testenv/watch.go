package testenv

import "testing"

// Watcher starts `loader watch dir` against the stack, with env added, and
// waits until it watches.
func (s *Stack) Watcher(t testing.TB, dir string, env ...string) *ServiceProcess {
	t.Helper()
	return Service(t, "loader", append(append([]string{}, s.Env...), env...), "watch", dir)
}
