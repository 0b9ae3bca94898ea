package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"skuflow/config"
	"skuflow/internal/retry"
	"skuflow/schemas"
)

// Table names of the bookkeeping tables, in the configured database.
const (
	// ErrorsTable holds every record that did not make it: rejected by the
	// loader, undecodable by the processor, or refused by ClickHouse.
	ErrorsTable = "ingest_errors"
	// TopicsTable records each topic's partition count when data was first
	// written, so that a changed count is noticed (invariant 2).
	TopicsTable = "topics"
	// CountsTable holds the aggregator's absolute counts per (partition,
	// value), versioned by the offset they are true at.
	CountsTable = "product_counts"
	// AggView sums CountsTable over partitions and hides zeros: the
	// aggregate users query.
	AggView = "products_agg"
)

// FinalView names the view that gives a schema's table with FINAL applied:
// one row per key, the last write.
func FinalView(s *schemas.Schema) string { return s.Name + "_final" }

// Statements returns the DDL for a database holding schema s: its table,
// the view over it, and the bookkeeping tables. Every statement is
// idempotent and runs on ClickHouse 18.16 and current releases.
func Statements(db string, s *schemas.Schema) []string {
	stmts := s.DDL(db)
	cols := make([]string, 0, len(s.Columns)+1+len(schemas.Provenance))
	for _, c := range s.Columns {
		cols = append(cols, c.Name)
	}
	cols = append(cols, s.Extra)
	for _, p := range schemas.Provenance {
		cols = append(cols, p.Name)
	}
	return append(stmts,
		fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s.%s AS SELECT %s FROM %s.%s FINAL",
			db, FinalView(s), strings.Join(cols, ", "), db, s.Name),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s
(
    job String,
    source String,
    line UInt64,
    stage String,
    reason String,
    raw String,
    topic String,
    partition UInt32,
    offset UInt64,
    at DateTime
)
ENGINE = ReplacingMergeTree
ORDER BY (job, source, stage, line, partition, offset)`, db, ErrorsTable),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s
(
    partition UInt32,
    name String,
    count Int64,
    version UInt64,
    updated_at DateTime
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (partition, name)`, db, CountsTable),
		// HAVING repeats the sum: 18.16 cannot use the alias there.
		fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s.%s AS SELECT name, sum(count) AS no_of_products FROM %s.%s FINAL GROUP BY name HAVING sum(count) > 0",
			db, AggView, db, CountsTable),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s
(
    topic String,
    partitions UInt32,
    recorded_at DateTime
)
ENGINE = MergeTree
ORDER BY topic`, db, TopicsTable),
	)
}

// Migrate brings the database up to schema s: it creates what is missing
// and adds columns the table lacks. It never drops or changes a column: a
// column whose type differs is an error for a person to resolve.
func Migrate(ctx context.Context, conn Conn, db string, s *schemas.Schema) error {
	// The record table first, then its missing columns, then what reads
	// it: a view over a column that is not there yet cannot be created.
	stmts := Statements(db, s)
	table := len(s.DDL(db))
	if err := execAll(ctx, conn, stmts[:table]); err != nil {
		return err
	}
	have, err := columns(ctx, conn, db, s.Name)
	if err != nil {
		return err
	}
	want := make([][2]string, 0, len(s.Columns)+1+len(schemas.Provenance))
	for _, c := range s.Columns {
		want = append(want, [2]string{c.Name, string(c.Type)})
	}
	want = append(want, [2]string{s.Extra, "String"})
	for _, p := range schemas.Provenance {
		want = append(want, [2]string{p.Name, p.Type})
	}
	for _, w := range want {
		typ, ok := have[w[0]]
		switch {
		case !ok:
			if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s %s", db, s.Name, w[0], w[1])); err != nil {
				return fmt.Errorf("migrate: add column %s.%s.%s: %w", db, s.Name, w[0], err)
			}
		case typ != w[1]:
			return fmt.Errorf("migrate: column %s.%s.%s is %s in ClickHouse but %s in the schema; only additive changes are made automatically",
				db, s.Name, w[0], typ, w[1])
		}
	}
	return execAll(ctx, conn, stmts[table:])
}

func execAll(ctx context.Context, conn Conn, stmts []string) error {
	for _, stmt := range stmts {
		if err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("migrate: %s: %w", firstLine(stmt), err)
		}
	}
	return nil
}

func columns(ctx context.Context, conn Conn, db, table string) (map[string]string, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT name, type FROM system.columns WHERE database = %s AND table = %s", quote(db), quote(table)))
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
	q := fmt.Sprintf("SELECT count(), argMin(partitions, recorded_at) FROM %s.%s WHERE topic = %s", db, TopicsTable, quote(topic))
	if err := conn.QueryRow(ctx, q).Scan(&n, &recorded); err != nil {
		return fmt.Errorf("read recorded partitions of %s: %w", topic, err)
	}
	if n == 0 {
		// Inserts go through batches: ClickHouse 18.16 waits for a data
		// block after an INSERT ... VALUES sent as a plain query.
		b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (topic, partitions, recorded_at)", db, TopicsTable))
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
	err := retry.Forever(ctx, b, log, "migrate ClickHouse", Retriable, func(ctx context.Context) error {
		return Migrate(ctx, conn, db, s)
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
