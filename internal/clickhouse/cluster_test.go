package clickhouse_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// On a 2x2 cluster, migration makes every table a Distributed table over a
// replicated _local one on every server, the views on every server, and
// stays idempotent (run twice, and by two types) and additive (a column
// declared later reaches the local and Distributed tables and the view on
// every server); a changed key is refused as on one server.
func TestMigrateCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and four servers")
	}
	c := testenv.NewClickHouseCluster(t, 2, 2)
	conn, err := clickhouse.Open(config.ClickHouse{Addr: c.Addrs(), Username: "default", DialTimeout: 5 * time.Second, Cluster: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	decl := schemas.Decl{Key: []string{"id"}, Columns: []schemas.ColDecl{
		{Name: "id", Type: "String", Required: true}, {Name: "kind", Type: "String", Required: true}, {Name: "n", Type: "Int64"},
	}, Aggs: []schemas.AggDecl{{Name: "n_by_kind", Sum: "n", By: []string{"kind"}}}}
	things, ps := decl.Schema("things")
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	for _, s := range []*schemas.Schema{schemas.Products, things, things} {
		if err := clickhouse.MigrateOn(ctx, conn, "skuflow", c.Name, s); err != nil {
			t.Fatal(err)
		}
	}
	want := strings.Join([]string{
		"ingest_errors\tDistributed", "ingest_errors_local\tReplicatedReplacingMergeTree",
		"ingest_jobs\tDistributed", "ingest_jobs_local\tReplicatedReplacingMergeTree",
		"n_by_kind\tView", "n_by_kind_state\tDistributed", "n_by_kind_state_local\tReplicatedReplacingMergeTree",
		"product_counts\tDistributed", "product_counts_local\tReplicatedReplacingMergeTree",
		"products\tDistributed", "products_agg\tView", "products_final\tView", "products_local\tReplicatedReplacingMergeTree",
		"things\tDistributed", "things_final\tView", "things_local\tReplicatedReplacingMergeTree",
		"topics\tDistributed", "topics_local\tReplicatedMergeTree",
	}, "\n")
	for _, shard := range c.Shards {
		for _, srv := range shard {
			if got := srv.Query(t, "SELECT name, engine FROM system.tables WHERE database = 'skuflow' ORDER BY name FORMAT TSV"); got != want {
				t.Fatalf("%s holds:\n%s\nwant\n%s", srv.TCPAddr, got, want)
			}
		}
	}

	// Rows through the Distributed table, and through the view, read back
	// at once (from the first replica of each shard: the profile's
	// load_balancing).
	any := c.Shards[1][1]
	any.Query(t, "SET insert_distributed_sync = 1; INSERT INTO skuflow.things (id, kind, n, _partition, _version) VALUES ('a', 'x', 1, 0, 1), ('b', 'x', 2, 1, 1), ('a', 'x', 5, 0, 2)")
	if got := any.Query(t, "SELECT id, n FROM skuflow.things_final ORDER BY id"); got != "a\t5\nb\t2" {
		t.Fatalf("things_final: %q", got)
	}

	// A column added to the declaration reaches every server's tables and
	// view.
	decl.Columns = append(decl.Columns, schemas.ColDecl{Name: "color", Type: "String"})
	wider, ps := decl.Schema("things")
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if err := clickhouse.MigrateOn(ctx, conn, "skuflow", c.Name, wider); err != nil {
		t.Fatal(err)
	}
	for _, shard := range c.Shards {
		for _, srv := range shard {
			got := srv.Query(t, "SELECT table FROM system.columns WHERE database = 'skuflow' AND name = 'color' ORDER BY table FORMAT TSV")
			if got != "things\nthings_final\nthings_local" {
				t.Fatalf("%s: color is in %q", srv.TCPAddr, got)
			}
		}
	}
	if got := any.Query(t, "SELECT id, n, color FROM skuflow.things_final ORDER BY id"); got != "a\t5\t\nb\t2\t" {
		t.Fatalf("things_final after the column: %q", got)
	}

	// A changed key is refused, whatever the cluster.
	decl.Key = []string{"kind"}
	rekeyed, _ := decl.Schema("things")
	if err := clickhouse.MigrateOn(ctx, conn, "skuflow", c.Name, rekeyed); !errors.Is(err, clickhouse.ErrIncompatible) {
		t.Fatalf("a changed key: %v", err)
	}
}
