package testenv_test

import (
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// A 2x2 cluster replicates within a shard, shards by the Distributed
// table's key, and runs DDL ON CLUSTER on every server.
func TestClickHouseCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and four servers")
	}
	c := testenv.NewClickHouseCluster(t, 2, 2)
	for _, shard := range c.Shards {
		for _, srv := range shard {
			if lb := srv.Query(t, "SELECT value FROM system.settings WHERE name = 'load_balancing'"); lb != "in_order" {
				t.Fatalf("%s: load_balancing %q, want the profile's in_order", srv.TCPAddr, lb)
			}
		}
	}
	any := c.Shards[0][0]
	any.Query(t, "CREATE DATABASE IF NOT EXISTS d ON CLUSTER skuflow")
	any.Query(t, "CREATE TABLE d.l ON CLUSTER skuflow (k String, p UInt32, v UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/d/l', '{replica}', v) ORDER BY k")
	any.Query(t, "CREATE TABLE d.t ON CLUSTER skuflow AS d.l ENGINE = Distributed(skuflow, d, l, p)")
	any.Query(t, "SET insert_distributed_sync = 1; INSERT INTO d.t VALUES ('a', 0, 1), ('b', 1, 1), ('c', 2, 1), ('a', 0, 2)")
	// The insert reached one replica of each shard; the other fetches the
	// part in the background. A read served by a replica that has not yet
	// fetched it misses rows (CI saw "a 2, c 1"), so every replica catches
	// up before anything is read.
	for _, shard := range c.Shards {
		for _, srv := range shard {
			srv.Query(t, "SYSTEM SYNC REPLICA d.l")
		}
	}
	if got := c.Shards[1][1].Query(t, "SELECT k, v FROM d.t FINAL ORDER BY k"); got != "a\t2\nb\t1\nc\t1" {
		t.Fatalf("FINAL through the Distributed table: %q", got)
	}
	for s, shard := range c.Shards {
		var keys []string
		for _, srv := range shard {
			keys = append(keys, srv.Query(t, "SELECT groupUniqArray(k) FROM (SELECT k FROM d.l ORDER BY k)"))
		}
		if keys[0] != keys[1] {
			t.Fatalf("shard %d: replicas hold %v", s+1, keys)
		}
		t.Logf("shard %d holds %s", s+1, keys[0])
	}
	if a, b := c.Shards[0][0].Query(t, "SELECT count() FROM d.l"), c.Shards[1][0].Query(t, "SELECT count() FROM d.l"); a == "0" || b == "0" || strings.Contains(a+b, "4") {
		t.Fatalf("rows per shard: %s and %s", a, b)
	}
}
