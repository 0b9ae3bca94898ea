package clickhouse

import (
	"context"
	"fmt"
	"strings"

	"skuflow/schemas"
)

// On a cluster (clickhouse.cluster), every table users and services name
// is a Distributed table over a Replicated*MergeTree table of the same
// name with LocalSuffix on each shard:
//
//	products        Distributed(cluster, db, products_local, _partition)
//	products_local  ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/products', '{replica}', _version)
//
// The sharding key of a records table is the Kafka partition (an
// aggregate's state table: its partition column). A key's records all go
// to one partition (the loader keys them), so every version of a key lives
// on one shard, and FINAL run on each shard, which is what FINAL on the
// Distributed table does, is FINAL of the whole table: the views (TYPE_final,
// the aggregates) read the Distributed tables and are right as they are.
// The job and error tables are sharded by job id, so a job's versions meet
// too. Inserts are synchronous (insert_distributed_sync, set on the
// connection by Open): an INSERT returns once each shard has its rows, and
// a batch retried after a failure lands again with the same versions,
// which FINAL and the aggregates take once.
//
// A shard's replicas copy each other's parts a moment after an insert: a
// read through a Distributed table from a replica other than the one
// written to may miss the last rows. The servers' profile of skuflow's user
// should set load_balancing to in_order (as the test clusters and `make
// up-cluster` do), so that reads and writes of a shard go to its first
// replica that is up: a service reads what it wrote, its state after a
// restart included, while that replica lives. (18.16's protocol takes
// only numeric settings from a client, so Open cannot set it.)

// LocalSuffix names the shard-local table under a Distributed one.
const LocalSuffix = "_local"

// onCluster is " ON CLUSTER name", or "" for no cluster.
func onCluster(cluster string) string {
	if cluster == "" {
		return ""
	}
	return " ON CLUSTER " + Ident(cluster)
}

// replicatedEngine turns a table's engine clause (ENGINE = X(args) ...)
// into its Replicated form, with its ZooKeeper path and replica name from
// the servers' macros.
func replicatedEngine(engine, db, name string) string {
	rest, ok := strings.CutPrefix(engine, "ENGINE = ")
	if !ok {
		panic("clickhouse: engine clause without ENGINE = : " + engine)
	}
	kind, tail := rest, ""
	if i := strings.IndexAny(rest, "(\n"); i >= 0 {
		kind, tail = rest[:i], rest[i:]
	}
	args := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", db, name)
	if inner, ok := strings.CutPrefix(tail, "("); ok {
		end := strings.Index(inner, ")")
		if a := inner[:end]; a != "" {
			args += ", " + a
		}
		tail = inner[end+1:]
	}
	return fmt.Sprintf("ENGINE = Replicated%s(%s)%s", kind, args, tail)
}

// clusterTables are the tables of schema s on a cluster: each table of the
// one-server layout (tables), with the records table's engine spelled out.
func clusterTables(s *schemas.Schema) []table {
	ts, _ := tables("", s)
	order := make([]string, len(s.OrderBy()))
	for i, k := range s.OrderBy() {
		order[i] = Ident(k)
	}
	ts[0].engine = fmt.Sprintf("ENGINE = ReplacingMergeTree(%s)\nORDER BY (%s)", schemas.VersionColumn, strings.Join(order, ", "))
	ts[0].shardBy = "_partition"
	return ts
}

// migrateCluster is Migrate on a cluster: the database, each table's
// local table and Distributed table, their missing columns and the views,
// every statement ON CLUSTER. It is as idempotent and additive as on one
// server. A DDL ON CLUSTER waits for every server of the cluster
// (distributed_ddl_task_timeout, 180 s by default): with a server down,
// migration waits and then fails, and is retried, and the server runs the
// queued statements when it is back.
func migrateCluster(ctx context.Context, conn Conn, db, cluster string, s *schemas.Schema) error {
	if err := execAll(ctx, conn, []string{fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s%s", Ident(db), onCluster(cluster))}); err != nil {
		return err
	}
	for _, t := range clusterTables(s) {
		local := t
		local.name = t.name + LocalSuffix
		local.engine = replicatedEngine(t.engine, db, t.name)
		dist := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s\nENGINE = Distributed(%s, %s, %s, %s)",
			Table(db, t.name), onCluster(cluster), Table(db, local.name), Ident(cluster), Ident(db), Ident(local.name), t.shardBy)
		if err := execAll(ctx, conn, []string{local.ddlOn(db, cluster)}); err != nil {
			return err
		}
		if err := addColumnsOn(ctx, conn, db, cluster, local); err != nil {
			return err
		}
		if err := checkOrderBy(ctx, conn, db, local); err != nil {
			return err
		}
		if err := execAll(ctx, conn, []string{dist}); err != nil {
			return err
		}
		if err := refreshDistributed(ctx, conn, db, cluster, t, dist); err != nil {
			return err
		}
	}
	for _, v := range views(db, s) {
		if err := ensureView(ctx, conn, db, cluster, v); err != nil {
			return err
		}
	}
	return nil
}

// refreshDistributed makes the Distributed table of t again when it lacks
// a column the local tables have now. It keeps the columns it was made
// with, and 18.16 refuses ALTER ... ON CLUSTER of a table that is not
// replicated on a cluster that is; it holds no rows (inserts are
// synchronous), so it is dropped and made again, and for that moment a
// query of it fails.
func refreshDistributed(ctx context.Context, conn Conn, db, cluster string, t table, create string) error {
	have, err := columns(ctx, conn, db, t.name)
	if err != nil {
		return err
	}
	for _, c := range t.columns {
		if _, ok := have[c[0]]; !ok {
			if err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+Table(db, t.name)+onCluster(cluster)); err != nil {
				return fmt.Errorf("migrate: drop %s.%s to add column %s: %w", db, t.name, c[0], err)
			}
			return execAll(ctx, conn, []string{create})
		}
	}
	return nil
}

// CodeLeadershipChanged is what a replicated table's ALTER ON CLUSTER
// answers (18.16) when the replica it ran on was not its shard's leader,
// for a while after a replica restarts: asked again, it goes through.
const CodeLeadershipChanged = 292

// IsCode reports whether err is a ClickHouse exception with one of codes.
func IsCode(err error, codes ...int32) bool { return isCode(err, codes...) }
