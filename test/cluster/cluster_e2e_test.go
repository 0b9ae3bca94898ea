package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// On a 2x2 cluster, with a replica of the first shard killed with SIGKILL
// in the middle of a push (the server the services reach first) and started
// again: products_final and products_agg, read through the Distributed
// tables, equal the model of the pushed files; every key's rows are on
// exactly one shard, the one of its Kafka partition; the replicas of each
// shard hold the same rows.
func TestClusterExactThroughReplicaKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ZooKeeper, four ClickHouse servers and the services")
	}
	st := testenv.NewClusterStack(t, 2, 2)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	dir := t.TempDir()
	first := testenv.Gen(t, dir, "first.ndjson", "--rows", "150000", "--seed", "7", "--dup-rate", "0.05", "--rename-rate", "0.03")
	second := testenv.Gen(t, dir, "second.ndjson", "--rows", "50000", "--seed", "8", "--dup-rate", "0.05", "--rename-rate", "0.03")

	wait := st.StartPush(t, first)
	victim := st.Cluster.Shards[0][0]
	// Mid-push: some rows in, not all.
	deadline := time.Now().Add(2 * time.Minute)
	for st.Count(t, "SELECT count() FROM skuflow.products") < 20000 {
		if time.Now().After(deadline) {
			t.Fatal("no 20,000 rows after 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	victim.Kill(t)
	t.Logf("killed %s with %d rows in", victim.TCPAddr, st.Count(t, "SELECT count() FROM skuflow.products"))
	time.Sleep(3 * time.Second)
	victim.Start(t)
	st.Cluster.WaitZooKeeper(t)
	wait()
	st.PushWait(t, second)

	want := testenv.LastWrites(t, first, second)
	st.CheckFinal(t, want)
	st.CheckAgg(t, testenv.NameCounts(want))
	if n := st.Count(t, "SELECT count() FROM skuflow.products_final"); n != int64(len(want)) {
		t.Fatalf("products_final holds %d rows, want %d", n, len(want))
	}

	// Per shard: its replicas agree, and its keys are those of its
	// partitions and of no other shard.
	seen := map[string]int{}
	for i, shard := range st.Cluster.Shards {
		var held []string
		for _, srv := range shard {
			srv.Query(t, "SYSTEM SYNC REPLICA skuflow.products_local")
			held = append(held, srv.Query(t, "SELECT count(), uniqExact(sku), sum(cityHash64(sku, _version)) FROM skuflow.products_local"))
		}
		if held[0] != held[1] {
			t.Fatalf("shard %d: the replicas hold %q and %q", i+1, held[0], held[1])
		}
		if bad := shard[0].Query(t, fmt.Sprintf("SELECT count() FROM skuflow.products_local WHERE _partition %% 2 != %d", i)); bad != "0" {
			t.Fatalf("shard %d holds %s rows of another shard's partitions", i+1, bad)
		}
		keys := shard[0].Query(t, "SELECT DISTINCT sku FROM skuflow.products_local")
		for _, k := range strings.Split(keys, "\n") {
			seen[k]++
		}
		t.Logf("shard %d: %s (rows, keys, checksum) on both replicas", i+1, held[0])
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("key %s is on %d shards", k, n)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("the shards hold %d keys, the files %d", len(seen), len(want))
	}
}
