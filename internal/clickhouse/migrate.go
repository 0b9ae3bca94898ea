package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"skuflow/config"
	"skuflow/internal/retry"
	"skuflow/schemas"
)

// Table names of the bookkeeping tables, in the configured database.
const (
	// JobsTable holds one row per job (a push of one input), rewritten as
	// the job moves on: the newest row of an id is its state.
	JobsTable = "ingest_jobs"
	// ErrorsTable holds every record that did not make it: rejected by the
	// loader, undecodable by the processor, or refused by ClickHouse.
	ErrorsTable = "ingest_errors"
	// TopicsTable records each topic's partition count when data was first
	// written, so that a changed count is noticed (invariant 2).
	TopicsTable = "topics"
)

// FinalView names the view that gives a schema's table with FINAL applied:
// one row per key, the last write.
func FinalView(s *schemas.Schema) string { return s.Name + "_final" }

// table is a table's shape: its columns, in order, and the engine clause
// that follows them; orderBy, when set, is its sorting key, which a table
// of that name must have.
type table struct {
	name    string
	columns [][2]string // name, type
	engine  string
	orderBy []string
	// shardBy is the Distributed table's sharding key on a cluster: all
	// the rows FINAL must see together (a key's versions, a job's) go to
	// one shard.
	shardBy string
}

func (t table) ddl(db string) string { return t.ddlOn(db, "") }

// ddlOn is ddl with ON CLUSTER cluster when cluster is set.
func (t table) ddlOn(db, cluster string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s%s\n(\n", Table(db, t.name), onCluster(cluster))
	for i, c := range t.columns {
		sep := ","
		if i == len(t.columns)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    %s %s%s\n", Ident(c[0]), c[1], sep)
	}
	fmt.Fprintf(&b, ")\n%s", t.engine)
	return b.String()
}

// recordColumns are the columns of the table of schema s's records, whose
// DDL the schema gives.
func recordColumns(s *schemas.Schema) [][2]string {
	return pairs(s.TableColumns())
}

func pairs(tcs []schemas.TableColumn) [][2]string {
	cols := make([][2]string, len(tcs))
	for i, c := range tcs {
		cols[i] = [2]string{c.Name, c.Type}
	}
	return cols
}

// aggregateTable is the table of aggregate a's partial results: one row
// per (partition, group), the newest version of each the true one.
func aggregateTable(s *schemas.Schema, a *schemas.Aggregate) table {
	by := make([]string, len(a.By))
	for i, b := range a.By {
		by[i] = Ident(b)
	}
	return table{
		name:    a.Table,
		columns: pairs(s.AggregateColumns(a)),
		engine:  fmt.Sprintf("ENGINE = ReplacingMergeTree(version)\nORDER BY (partition, %s)", strings.Join(by, ", ")),
		orderBy: append([]string{"partition"}, a.By...),
		shardBy: "partition",
	}
}

// bookkeeping are the tables every service shares, whatever the schema.
var bookkeeping = []table{
	{
		// One row per version of a job; version grows with every write.
		name: JobsTable,
		columns: [][2]string{
			{"id", "String"},
			{"source", "String"},
			{"size", "Int64"},
			{"sha256", "String"},
			{"format", "String"},
			{"compression", "String"},
			// The record type; empty in rows written before types existed
			// (all products).
			{"type", "String"},
			{"topic", "String"},
			// The topic's Kafka ID when the job produced: its end offsets
			// mean nothing on another incarnation of the topic.
			{"topic_id", "String"},
			{"origin", "String"},
			{"records_read", "UInt64"},
			{"records_produced", "UInt64"},
			{"records_rejected", "UInt64"},
			// The job's last offset in each partition it wrote to.
			{"end_partitions", "Array(UInt32)"},
			{"end_offsets", "Array(UInt64)"},
			{"state", "String"},
			{"error", "String"},
			{"started_at", "DateTime"},
			{"produced_at", "DateTime"},
			{"finished_at", "DateTime"},
			{"produce_seconds", "Float64"},
			{"load_seconds", "Float64"},
			{"updated_at", "DateTime"},
			{"version", "UInt64"},
			// A CSV input's header line, as read: what `loader errors
			// --raw` and `loader redrive` put before the rejected rows.
			// Empty for other formats and in rows of earlier releases.
			{"csv_header", "String"},
			// The job whose rejected records this job pushed again
			// (`loader redrive`), empty for any other push.
			{"redrive_of", "String"},
		},
		// By month of the job's start, which every version of a job
		// shares: `loader prune` drops whole months (18.16 has no TTL).
		engine:  "ENGINE = ReplacingMergeTree(version)\nPARTITION BY toYYYYMM(started_at)\nORDER BY id",
		shardBy: "cityHash64(id)",
	},
	{
		// For a record the loader rejected, topic is empty and offset is
		// its byte offset in the (decompressed) input; for one the
		// processor set aside, they are its place on the topic.
		name: ErrorsTable,
		columns: [][2]string{
			{"job", "String"},
			{"source", "String"},
			{"line", "UInt64"},
			{"stage", "String"},
			{"reason", "String"},
			{"raw", "String"},
			{"topic", "String"},
			{"partition", "UInt32"},
			{"offset", "UInt64"},
			{"at", "DateTime"},
			// The record's full size in bytes; raw keeps its first
			// MaxRawBytes (a CSV row longer than MaxRecordBytes its first
			// 4 KiB), so raw_size > length(raw) says raw was cut. 0 in
			// rows of earlier releases (see RawTruncated).
			{"raw_size", "UInt64"},
		},
		// By month of writing, for `loader prune`. A record set aside
		// twice across a month's end is kept twice.
		engine:  "ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(at)\nORDER BY (job, source, stage, line, partition, offset)",
		shardBy: "cityHash64(job)",
	},
	{
		name: TopicsTable,
		columns: [][2]string{
			{"topic", "String"},
			{"partitions", "UInt32"},
			{"recorded_at", "DateTime"},
			// One row per incarnation of the topic (its Kafka topic ID),
			// numbered from 1 in the order they were first seen; rows of
			// older releases have neither (see Incarnation).
			{"topic_id", "String"},
			{"incarnation", "UInt32"},
		},
		engine:  "ENGINE = MergeTree\nORDER BY topic",
		shardBy: "cityHash64(topic)",
	},
}

// tables returns every table of a database holding schema s, with the
// statement that creates each.
func tables(db string, s *schemas.Schema) (ts []table, create []string) {
	ts = append([]table{{name: s.Name, columns: recordColumns(s), orderBy: s.OrderBy()}}, bookkeeping...)
	// The schema's DDL names its table and columns as they are: CheckNames
	// has made sure they are plain identifiers.
	create = []string{s.DDL(Ident(db))[1]}
	for _, t := range bookkeeping {
		create = append(create, t.ddl(db))
	}
	for i := range s.Aggregates {
		t := aggregateTable(s, &s.Aggregates[i])
		ts = append(ts, t)
		create = append(create, t.ddl(db))
	}
	return ts, create
}

// view is a view over the tables: its name, the columns it shows, and the
// statement that creates it.
type view struct {
	name    string
	columns []string
	query   string // the SELECT
}

// create is the view's CREATE, ON CLUSTER cluster when it is set.
func (v view) create(db, cluster string) string {
	return fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s%s AS %s", Table(db, v.name), onCluster(cluster), v.query)
}

// views returns the views over the tables, which need their columns.
func views(db string, s *schemas.Schema) []view {
	var names, cols []string
	for _, c := range recordColumns(s) {
		names = append(names, c[0])
		cols = append(cols, Ident(c[0]))
	}
	vs := []view{
		{FinalView(s), names, fmt.Sprintf("SELECT %s FROM %s FINAL", strings.Join(cols, ", "), Table(db, s.Name))},
	}
	for _, a := range s.Aggregates {
		vs = append(vs, aggregateView(db, &a))
	}
	return vs
}

// aggregateView is the view users query of aggregate a: its partial
// results summed over partitions, groups without keys left out. For
// products: SELECT name, sum(count) AS no_of_products FROM product_counts
// FINAL GROUP BY name HAVING sum(count) > 0.
func aggregateView(db string, a *schemas.Aggregate) view {
	by := make([]string, len(a.By))
	for i, b := range a.By {
		by[i] = Ident(b)
	}
	of := schemas.AggCount
	if !a.Counts() {
		of = schemas.AggTotal
	}
	group := strings.Join(by, ", ")
	// HAVING repeats the sum: 18.16 cannot use the alias there.
	return view{a.Name, append(slices.Clone(a.By), a.As), fmt.Sprintf(
		"SELECT %s, sum(%s) AS %s FROM %s FINAL GROUP BY %s HAVING sum(%s) > 0",
		group, Ident(of), Ident(a.As), Table(db, a.Table), group, Ident(schemas.AggCount))}
}

// Statements returns the DDL for a database holding schema s: the
// database, its tables, and the views over them. Every statement is
// idempotent and runs on ClickHouse 18.16 and current releases.
func Statements(db string, s *schemas.Schema) []string {
	_, create := tables(db, s)
	for _, v := range views(db, s) {
		create = append(create, v.create(db, ""))
	}
	return slices.Concat(s.DDL(Ident(db))[:1], create)
}

// Migrate brings the database up to schema s: it creates what is missing,
// adds columns a table lacks, and recreates a view whose columns are not
// the ones it should show (after a column was added to its table). It
// never drops or changes a column: a column whose type differs is an error
// for a person to resolve.
//
// Several services may migrate at once: a database, table or view that
// another created meanwhile, or a column it added, is success, not an
// error. (18.16 has no ADD COLUMN IF NOT EXISTS, and its IF NOT EXISTS
// on CREATE still fails when another creation is under way.)
func Migrate(ctx context.Context, conn Conn, db string, s *schemas.Schema) error {
	return MigrateOn(ctx, conn, db, "", s)
}

// MigrateOn is Migrate of a database on cluster, or on the one server
// conn reaches when cluster is empty (see migrateCluster).
func MigrateOn(ctx context.Context, conn Conn, db, cluster string, s *schemas.Schema) error {
	if err := CheckNames(s); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if cluster != "" {
		return migrateCluster(ctx, conn, db, cluster, s)
	}
	// The tables first, then their missing columns, then what reads them:
	// a view over a column that is not there yet cannot be created.
	if err := execAll(ctx, conn, s.DDL(Ident(db))[:1]); err != nil {
		return err
	}
	if err := upgradeVersion(ctx, conn, db, s); err != nil {
		return err
	}
	ts, create := tables(db, s)
	for i, t := range ts {
		if err := execAll(ctx, conn, create[i:i+1]); err != nil {
			return err
		}
		if err := addColumns(ctx, conn, db, t); err != nil {
			return err
		}
		if err := checkOrderBy(ctx, conn, db, t); err != nil {
			return err
		}
	}
	for _, v := range views(db, s) {
		if err := ensureView(ctx, conn, db, "", v); err != nil {
			return err
		}
	}
	return nil
}

// ensureView creates view v, or drops and creates it again when the
// columns it shows are not v's: 18.16 has no CREATE OR REPLACE VIEW, and a
// view keeps the columns its table had when it was created. Between the
// drop and the create (only after a migration changed the view) a query
// of the view fails for a moment.
func ensureView(ctx context.Context, conn Conn, db, cluster string, v view) error {
	have, err := columns(ctx, conn, db, v.name)
	if err != nil {
		return err
	}
	if len(have) > 0 {
		// Only a view is ever dropped: a table of that name holds data.
		engine, err := tableInfo(ctx, conn, db, v.name, "engine")
		if err != nil {
			return err
		}
		if engine != "" && engine != "View" {
			return fmt.Errorf("%w: %s.%s is a table (%s), where skuflow wants a view; rename it, or the aggregate", ErrIncompatible, db, v.name, engine)
		}
		same := len(have) == len(v.columns)
		for _, c := range v.columns {
			_, ok := have[c]
			same = same && ok
		}
		if same {
			return nil
		}
		// Another service may drop it at the same moment.
		if err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+Table(db, v.name)+onCluster(cluster)); err != nil && !isCode(err, codeUnknownTable) {
			return fmt.Errorf("migrate: drop outdated view %s.%s: %w", db, v.name, err)
		}
	}
	return execAll(ctx, conn, []string{v.create(db, cluster)})
}

// addColumns adds the columns of t that its table lacks, and refuses one
// whose type differs.
func addColumns(ctx context.Context, conn Conn, db string, t table) error {
	return addColumnsOn(ctx, conn, db, "", t)
}

// addColumnsOn is addColumns ON CLUSTER cluster when it is set.
func addColumnsOn(ctx context.Context, conn Conn, db, cluster string, t table) error {
	have, err := columns(ctx, conn, db, t.name)
	if err != nil {
		return err
	}
	for _, w := range t.columns {
		typ, ok := have[w[0]]
		switch {
		case !ok:
			if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s%s ADD COLUMN %s %s", Table(db, t.name), onCluster(cluster), Ident(w[0]), w[1])); err != nil {
				// Another service may have added it meanwhile: then it is
				// there now (and its type is checked on the next start).
				now, cerr := columns(ctx, conn, db, t.name)
				if _, added := now[w[0]]; cerr != nil || !added {
					return fmt.Errorf("migrate: add column %s.%s.%s: %w", db, t.name, w[0], err)
				}
			}
		case typ != w[1]:
			return fmt.Errorf("%w: column %s.%s.%s is %s in ClickHouse but %s in skuflow; only additive changes are made automatically",
				ErrIncompatible, db, t.name, w[0], typ, w[1])
		}
	}
	return nil
}

// checkOrderBy refuses a table whose sorting key is not t's: the key of a
// record type (or the groups of an aggregate) changed in the
// configuration, which no migration can make true of the rows stored.
func checkOrderBy(ctx context.Context, conn Conn, db string, t table) error {
	if len(t.orderBy) == 0 {
		return nil
	}
	have, err := tableInfo(ctx, conn, db, t.name, "sorting_key")
	if err != nil {
		return err
	}
	if want := strings.Join(t.orderBy, ", "); have != want {
		return fmt.Errorf("%w: table %s.%s is keyed by (%s) in ClickHouse but by (%s) in the configuration; "+
			"a key cannot change under stored rows: keep the old key, or load the type under a new name", ErrIncompatible, db, t.name, have, want)
	}
	return nil
}

// tableInfo reads a column of system.tables (engine, sorting_key) for
// table name, "" when there is no such table.
func tableInfo(ctx context.Context, conn Conn, db, name, column string) (string, error) {
	var v string
	q := fmt.Sprintf("SELECT any(%s) FROM system.tables WHERE database = %s AND name = %s", column, Quote(db), Quote(name))
	if err := readTables(ctx, func() error { return conn.QueryRow(ctx, q).Scan(&v) }); err != nil {
		return "", fmt.Errorf("migrate: read the %s of %s.%s: %w", column, db, name, err)
	}
	return v, nil
}

// readTables runs read, a query of system.tables, again while it fails
// because a table vanished under it. ClickHouse 18.16 reads every table of
// the database for system.tables, so a table or view that another service
// renames, or drops and creates again, meanwhile (upgradeVersion,
// ensureView) fails the query with "doesn't exist" even when the query
// asks for another table.
func readTables(ctx context.Context, read func() error) error {
	err := read()
	for try := 0; try < 10 && isCode(err, codeUnknownTable); try++ {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
		err = read()
	}
	return err
}

// ErrIncompatible marks what ClickHouse holds that the configuration
// contradicts in a way no migration can resolve (a changed column type or
// key, a table where a view should be, a type moved to another topic):
// a person must decide, so services stop with it instead of retrying.
var ErrIncompatible = errors.New("ClickHouse holds data the configuration contradicts")

// CheckTopic refuses to load type s from topic when its table holds rows
// and topic has never been loaded: the type moved to another topic. Row
// versions (internal/kafka.Version) and the aggregator's reading position
// belong to one topic's incarnations, so the new topic's records would
// lose to the old ones under FINAL.
func CheckTopic(ctx context.Context, conn Conn, db string, s *schemas.Schema, topic string) error {
	var known, rows uint64
	q := fmt.Sprintf("SELECT (SELECT count() FROM %s WHERE topic = %s), (SELECT count() FROM %s)",
		Table(db, TopicsTable), Quote(topic), Table(db, s.Name))
	if err := conn.QueryRow(ctx, q).Scan(&known, &rows); err != nil {
		return fmt.Errorf("check the topic of %s: %w", s.Name, err)
	}
	if known == 0 && rows > 0 {
		return fmt.Errorf("%w: table %s.%s holds %d rows loaded from another topic, and its topic is %s now, never loaded before; "+
			"row versions restart with a new topic, so its records would lose to the old ones: keep the old topic, or load the new one as a new type",
			ErrIncompatible, db, s.Name, rows, topic)
	}
	return nil
}

// ClickHouse exception codes a concurrent migration can meet.
const (
	codeUnknownTable          = 60
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

func isCode(err error, codes ...int32) bool {
	var ex *ch.Exception
	return errors.As(err, &ex) && slices.Contains(codes, ex.Code)
}

// execAll runs idempotent statements (CREATE ... IF NOT EXISTS) in order.
// "Already exists" is success: another service created it meanwhile.
func execAll(ctx context.Context, conn Conn, stmts []string) error {
	for _, stmt := range stmts {
		if err := conn.Exec(ctx, stmt); err != nil && !isCode(err, codeTableAlreadyExists, codeDatabaseAlreadyExists) {
			return fmt.Errorf("migrate: %s: %w", firstLine(stmt), err)
		}
	}
	return nil
}

func columns(ctx context.Context, conn Conn, db, table string) (map[string]string, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT name, type FROM system.columns WHERE database = %s AND table = %s", Quote(db), Quote(table)))
	if err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		out[name] = typ
	}
	return out, rows.Err()
}

// ErrPartitionsChanged is returned when a topic's partition count differs
// from the one recorded when data was first written to it.
var ErrPartitionsChanged = fmt.Errorf("topic partition count changed")

// CheckPartitions records the topic's partition count on first use and
// returns ErrPartitionsChanged if a count recorded earlier differs.
func CheckPartitions(ctx context.Context, conn Conn, db, topic string, partitions int) error {
	var recorded uint32
	var n uint64
	q := fmt.Sprintf("SELECT count(), argMin(partitions, recorded_at) FROM %s WHERE topic = %s", Table(db, TopicsTable), Quote(topic))
	if err := conn.QueryRow(ctx, q).Scan(&n, &recorded); err != nil {
		return fmt.Errorf("read recorded partitions of %s: %w", topic, err)
	}
	if n == 0 {
		// Inserts go through batches: ClickHouse 18.16 waits for a data
		// block after an INSERT ... VALUES sent as a plain query.
		b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (topic, partitions, recorded_at)", Table(db, TopicsTable)))
		if err == nil {
			err = b.Append(topic, uint32(partitions), time.Now())
		}
		if err == nil {
			err = b.Send()
		}
		if err != nil {
			return fmt.Errorf("record partitions of %s: %w", topic, err)
		}
		return nil
	}
	if int(recorded) != partitions {
		return fmt.Errorf("%w: topic %s had %d partitions when data was first written and has %d now; "+
			"keys would move between partitions and break last-write-wins", ErrPartitionsChanged, topic, recorded, partitions)
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Prepare migrates the database and checks the topic's recorded partition
// count, retrying while ClickHouse cannot be reached. Every service that
// writes to ClickHouse runs it at start-up.
func Prepare(ctx context.Context, conn Conn, cfg config.Config, s *schemas.Schema, log *slog.Logger, b retry.Backoff) error {
	db := cfg.ClickHouse.Database
	permanent := func(err error) bool { return Retriable(err) && !errors.Is(err, ErrIncompatible) }
	err := retry.Forever(ctx, b, log, "migrate ClickHouse", permanent, func(ctx context.Context) error {
		if err := MigrateOn(ctx, conn, db, cfg.ClickHouse.Cluster, s); err != nil {
			return err
		}
		return CheckTopic(ctx, conn, db, s, cfg.Kafka.Topic)
	})
	if err != nil {
		return err
	}
	return retry.Forever(ctx, b, log, "check recorded partitions",
		func(err error) bool { return !errors.Is(err, ErrPartitionsChanged) },
		func(ctx context.Context) error {
			return CheckPartitions(ctx, conn, db, cfg.Kafka.Topic, cfg.Kafka.Partitions)
		})
}
