package testenv

import (
	"fmt"
	"testing"
)

// Watcher starts `loader watch dir` against the stack, with env added, and
// waits until it watches.
func (s *Stack) Watcher(t testing.TB, dir string, env ...string) *ServiceProcess {
	t.Helper()
	return Service(t, "loader", append(append([]string{}, s.Env...), env...), "watch", dir)
}

// API starts cmd/api against the stack on a free loopback port, with env
// added (SKUFLOW_API_* settings, tokens), and returns its base URL
// ("http://127.0.0.1:PORT") once it serves.
func (s *Stack) API(t testing.TB, env ...string) (string, *ServiceProcess) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	base := []string{"SKUFLOW_API_ADDR=" + addr, "SKUFLOW_API_SPOOL_DIR=" + t.TempDir()}
	p := Service(t, "api", append(append(append([]string{}, s.Env...), base...), env...))
	return "http://" + addr, p
}
