package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// ClickHouseServer is a ClickHouse server of one test, started from the
// project's deploy/clickhouse/config.xml on free loopback ports.
type ClickHouseServer struct {
	// TCPAddr is the native protocol's address, "127.0.0.1:port", for
	// clickhouse-go and clickhouse-client.
	TCPAddr string
	// HTTPAddr is the HTTP interface's address, "127.0.0.1:port".
	HTTPAddr string
	// Dir holds the server's files: data/, tmp/, user_files/,
	// format_schemas/ and the log clickhouse.log.
	Dir string

	tcpPort int
	client  []string // clickhouse-client, or the single binary and "client"
	proc    *process
}

// ClickHouse starts a ClickHouse server for t and stops it when t ends. The
// test fails if clickhouse-server or clickhouse-client is not installed.
func ClickHouse(t testing.TB) *ClickHouseServer {
	t.Helper()
	cfg := filepath.Join(RepoRoot(t), "deploy", "clickhouse", "config.xml")
	s := newClickHouse(t, cfg, t.TempDir(), FreePort(t), FreePort(t))
	s.Start(t)
	return s
}

// newClickHouse makes (without starting it) a server of config file cfg
// with its files in dir, on the ports given; extra are more overrides of
// the config file's elements ("--name=value").
func newClickHouse(t testing.TB, cfg, dir string, tcpPort, httpPort int, extra ...string) *ClickHouseServer {
	t.Helper()
	server, client := clickHouseCommands(t)
	if _, err := os.Stat(cfg); err != nil {
		t.Fatalf("testenv: clickhouse config: %v", err)
	}
	// Everything after "--" overrides the config file's element of that
	// name; 18.16 supports it, so the file needs no per-run copy. The log
	// goes to the console, which is the process's log file.
	args := append(append([]string{}, server[1:]...),
		"--config-file="+cfg,
		"--",
		"--tcp_port="+strconv.Itoa(tcpPort),
		"--http_port="+strconv.Itoa(httpPort),
		"--path="+filepath.Join(dir, "data")+"/",
		"--tmp_path="+filepath.Join(dir, "tmp")+"/",
		"--user_files_path="+filepath.Join(dir, "user_files")+"/",
		"--format_schema_path="+filepath.Join(dir, "format_schemas")+"/",
		"--logger.console=1",
		"--logger.log=",
		"--logger.errorlog=",
	)
	args = append(args, extra...)
	s := &ClickHouseServer{
		TCPAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort)),
		HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		Dir:      dir,
		tcpPort:  tcpPort,
		client:   client,
		proc: &process{
			name:    "clickhouse",
			path:    server[0],
			args:    args,
			dir:     dir,
			env:     childEnv(),
			logPath: filepath.Join(dir, "clickhouse.log"),
		},
	}
	s.proc.cleanup(t)
	return s
}

// clickHouseCommands finds Debian's clickhouse-server and clickhouse-client
// (18.16), or else the single `clickhouse` binary of current releases.
func clickHouseCommands(t testing.TB) (server, client []string) {
	t.Helper()
	srv, okSrv := lookProgram("clickhouse-server")
	cli, okCli := lookProgram("clickhouse-client")
	if okSrv && okCli {
		return []string{srv}, []string{cli}
	}
	if one, ok := lookProgram("clickhouse"); ok {
		return []string{one, "server"}, []string{one, "client"}
	}
	missing := "clickhouse-server"
	if okSrv {
		missing = "clickhouse-client"
	}
	program(t, missing, missing) // fails the test with what to install
	return nil, nil
}

// Start starts the server again on the same ports and data after Stop or
// Kill, and waits until it answers.
func (s *ClickHouseServer) Start(t testing.TB) {
	t.Helper()
	s.proc.startReady(t, s.answers, s.TCPAddr+" (http "+s.HTTPAddr+")")
}

// answers reports whether the HTTP interface says Ok. to /ping. The server
// binds all its ports before it serves any, so the native port listens by
// then too. (Probing it with a bare connection would log a warning.)
func (s *ClickHouseServer) answers() bool {
	// No keep-alive: the server's shutdown waits for idle HTTP connections
	// (keep_alive_timeout, 3 s), which would slow every Stop.
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + s.HTTPAddr + "/ping")
	if err != nil {
		return false
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && bytes.HasPrefix(body, []byte("Ok."))
}

// Stop stops the server with SIGTERM and waits for it to exit. The test
// fails if it had to be killed.
func (s *ClickHouseServer) Stop(t testing.TB) {
	t.Helper()
	if s.proc.stop(syscall.SIGTERM, stopGrace) {
		t.Errorf("testenv: clickhouse did not stop within %s of SIGTERM and was killed", stopGrace)
	}
}

// Kill kills the server with SIGKILL and waits for it to exit.
func (s *ClickHouseServer) Kill(t testing.TB) {
	t.Helper()
	s.proc.stop(syscall.SIGKILL, stopGrace)
}

// Pid returns the server's process id, or 0 while it is stopped.
func (s *ClickHouseServer) Pid() int { return s.proc.pid() }

// Query runs sql with clickhouse-client --multiquery and returns its output
// without the final newline; the test fails if the client fails.
//
// The 18.16 client reads an INSERT's inline data (VALUES ...) up to the end
// of the line and silently drops statements after it on the same line: put
// each statement that follows an INSERT ... VALUES on a line of its own.
func (s *ClickHouseServer) Query(t testing.TB, sql string) string {
	t.Helper()
	out, err := s.TryQuery(sql)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return out
}

// TryQuery is Query returning the client's error (with its stderr) instead
// of failing the test, for tests that expect a query to fail.
func (s *ClickHouseServer) TryQuery(sql string) (string, error) {
	cmd := s.ClientCmd("--multiquery", "--query", sql)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("clickhouse-client --query %q: %w: %s", abbreviate(sql, 300), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(bytes.TrimSuffix(stdout.Bytes(), []byte("\n"))), nil
}

// ClientCmd returns a clickhouse-client command connected to the server,
// with args appended, for callers that stream data through its stdin (for
// example --query "INSERT INTO t FORMAT JSONEachRow").
func (s *ClickHouseServer) ClientCmd(args ...string) *exec.Cmd {
	all := append(append([]string{}, s.client[1:]...), "--host", "127.0.0.1", "--port", strconv.Itoa(s.tcpPort))
	cmd := exec.Command(s.client[0], append(all, args...)...)
	cmd.Env = childEnv()
	return cmd
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
