package testenv

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ZooKeeperServer is a standalone ZooKeeper of one test (Debian's
// zookeeper package), on a free loopback port.
type ZooKeeperServer struct {
	Addr string
	port int
	proc *process
}

// zooKeeperJars is the class path of Debian's zookeeper package.
const zooKeeperJars = "/usr/share/java/zookeeper.jar"

// ZooKeeper starts ZooKeeper for t and stops it by pid when t ends. The test
// fails if java or Debian's zookeeper is not installed.
func ZooKeeper(t testing.TB) *ZooKeeperServer {
	t.Helper()
	java := program(t, "java", "default-jre-headless")
	if _, err := os.Stat(zooKeeperJars); err != nil {
		t.Fatalf("testenv: %s is missing: install Debian's zookeeper (make deps)", zooKeeperJars)
	}
	dir := t.TempDir()
	port := FreePort(t)
	cfg := filepath.Join(dir, "zoo.cfg")
	conf := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=srvr
`, filepath.Join(dir, "data"), port)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	z := &ZooKeeperServer{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		port: port,
		proc: &process{
			name: "zookeeper",
			path: java,
			// Only what Debian's zookeeper package installs: without a
			// logging binding ZooKeeper logs nothing, which the tests do
			// not need (a binding found without its dependencies once
			// stopped it at start).
			args:    []string{"-Xmx256m", "-cp", "/etc/zookeeper/conf:" + zooKeeperJars, "org.apache.zookeeper.server.ZooKeeperServerMain", cfg},
			dir:     dir,
			env:     childEnv(),
			logPath: filepath.Join(dir, "zookeeper.log"),
		},
	}
	z.proc.cleanup(t)
	z.proc.startReady(t, z.ok, z.Addr)
	return z
}

// ok reports whether ZooKeeper serves requests: "srvr" tells its mode only
// then ("ruok" says imok earlier, while sessions are still refused, and a
// ClickHouse 18.16 whose DDL worker found no session crashes on the first
// DDL ON CLUSTER).
func (z *ZooKeeperServer) ok() bool {
	c, err := net.DialTimeout("tcp", z.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return strings.Contains(string(b), "Mode: standalone")
}

// Stop stops ZooKeeper by pid.
func (z *ZooKeeperServer) Stop(t testing.TB) { z.proc.stop(syscall.SIGTERM, stopGrace) }

// ClickHouseCluster is a replicated, sharded ClickHouse of one test:
// shards x replicas clickhouse-server processes on loopback ports and the
// ZooKeeper they replicate through, declared to each server as the
// cluster Name (remote_servers), with macros {shard} and {replica} and
// ON CLUSTER DDL.
type ClickHouseCluster struct {
	Name string
	ZK   *ZooKeeperServer
	// Shards holds each shard's replicas.
	Shards [][]*ClickHouseServer
}

// ClusterProfile is the users.d file of a cluster's servers: the default
// profile's load_balancing in_order.
const ClusterProfile = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <load_balancing>in_order</load_balancing>
    </default>
  </profiles>
</yandex>
`

// ClusterName is the name of the test clusters.
const ClusterName = "skuflow"

// NewClickHouseCluster starts ZooKeeper and shards x replicas servers from
// the project's config with the cluster's settings beside it (config.d),
// and stops them by pid when t ends.
func NewClickHouseCluster(t testing.TB, shards, replicas int) *ClickHouseCluster {
	t.Helper()
	zk := ZooKeeper(t)
	src := filepath.Join(RepoRoot(t), "deploy", "clickhouse")
	type node struct{ tcp, http, inter int }
	nodes := make([][]node, shards)
	for s := range nodes {
		nodes[s] = make([]node, replicas)
		for r := range nodes[s] {
			nodes[s][r] = node{FreePort(t), FreePort(t), FreePort(t)}
		}
	}
	var remote strings.Builder
	for s := range nodes {
		remote.WriteString("      <shard>\n        <internal_replication>true</internal_replication>\n")
		for _, n := range nodes[s] {
			fmt.Fprintf(&remote, "        <replica><host>127.0.0.1</host><port>%d</port></replica>\n", n.tcp)
		}
		remote.WriteString("      </shard>\n")
	}
	zkHost, zkPort, _ := net.SplitHostPort(zk.Addr)
	c := &ClickHouseCluster{Name: ClusterName, ZK: zk, Shards: make([][]*ClickHouseServer, shards)}
	for s := range nodes {
		for r, n := range nodes[s] {
			dir := t.TempDir()
			conf := filepath.Join(dir, "conf")
			if err := os.MkdirAll(filepath.Join(conf, "config.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"config.xml", "users.xml"} {
				b, err := os.ReadFile(filepath.Join(src, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(conf, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			extra := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>%d</interserver_http_port>
  <remote_servers>
    <%s>
%s    </%s>
  </remote_servers>
  <zookeeper>
    <node><host>%s</host><port>%s</port></node>
    <session_timeout_ms>10000</session_timeout_ms>
  </zookeeper>
  <macros>
    <shard>%02d</shard>
    <replica>r%d</replica>
  </macros>
  <distributed_ddl>
    <path>/clickhouse/task_queue/ddl</path>
  </distributed_ddl>
</yandex>
`, n.inter, ClusterName, remote.String(), ClusterName, zkHost, zkPort, s+1, r+1)
			if err := os.WriteFile(filepath.Join(conf, "config.d", "cluster.xml"), []byte(extra), 0o644); err != nil {
				t.Fatal(err)
			}
			// Reads and writes of a shard to its first live replica
			// (internal/clickhouse/cluster.go).
			if err := os.MkdirAll(filepath.Join(conf, "users.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(conf, "users.d", "cluster.xml"), []byte(ClusterProfile), 0o644); err != nil {
				t.Fatal(err)
			}
			srv := newClickHouse(t, filepath.Join(conf, "config.xml"), dir, n.tcp, n.http)
			c.Shards[s] = append(c.Shards[s], srv)
		}
	}
	for _, shard := range c.Shards {
		for _, srv := range shard {
			srv.Start(t)
		}
	}
	c.WaitZooKeeper(t)
	return c
}

// WaitZooKeeper waits until every running server has a ZooKeeper session:
// a DDL ON CLUSTER sent before fails.
func (c *ClickHouseCluster) WaitZooKeeper(t testing.TB) {
	t.Helper()
	began := time.Now()
	for _, shard := range c.Shards {
		for _, srv := range shard {
			if srv.Pid() == 0 {
				continue
			}
			var err error
			for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if _, err = srv.TryQuery("SELECT count() FROM system.zookeeper WHERE path = '/'"); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("testenv: clickhouse %s has no ZooKeeper session after %s: %v", srv.TCPAddr, startTimeout, err)
			}
		}
	}
	t.Logf("clickhouse cluster: every server on ZooKeeper after %s", time.Since(began).Round(time.Millisecond))
}

// Addrs returns every server's native address, comma separated, as
// clickhouse.addr takes them.
func (c *ClickHouseCluster) Addrs() string {
	var out []string
	for _, shard := range c.Shards {
		for _, srv := range shard {
			out = append(out, srv.TCPAddr)
		}
	}
	return strings.Join(out, ",")
}

// Any returns the first server that is running.
func (c *ClickHouseCluster) Any() *ClickHouseServer {
	for _, shard := range c.Shards {
		for _, srv := range shard {
			if srv.Pid() != 0 {
				return srv
			}
		}
	}
	return nil
}

// Log returns the last n lines of ZooKeeper's log.
func (z *ZooKeeperServer) Log(n int) string { return z.proc.tail(n) }
