package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"skuflow/internal/clickhouse"
)

// Month is one month of a bookkeeping table: one partition, since
// ingest_jobs is partitioned by toYYYYMM(started_at) and ingest_errors by
// toYYYYMM(at).
type Month struct {
	Table string
	// Start is the month's first day (UTC), End the next month's.
	Start, End time.Time
	// Rows is how many rows the month holds as stored (each version of a
	// job is a row until ClickHouse merges them).
	Rows int64
	// ID is the partition as ClickHouse names it: 202501.
	ID string
}

// ErrNotPartitioned is returned by Prune for a table created before the
// bookkeeping tables were partitioned by month: its rows cannot be dropped
// a month at a time.
var ErrNotPartitioned = errors.New("not partitioned by month")

// Prune drops the months of ingest_jobs and ingest_errors that ended
// before `before`, a whole partition at a time (ALTER TABLE ... DROP
// PARTITION; 18.16 has no TTL), and returns them with the months it kept.
// With dryRun it drops nothing and returns what it would drop. A table that
// is not partitioned by month is left alone and reported with
// ErrNotPartitioned; the other is pruned all the same.
func (s *Store) Prune(ctx context.Context, before time.Time, dryRun bool) (dropped, kept []Month, err error) {
	var errs []error
	for _, table := range []string{clickhouse.JobsTable, clickhouse.ErrorsTable} {
		months, err := s.months(ctx, table)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, m := range months {
			if m.End.After(before) {
				kept = append(kept, m)
				continue
			}
			if !dryRun {
				stmt := fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", clickhouse.Table(s.db, table), m.ID)
				if s.cluster != "" {
					// The months are the shards' local tables'; a replicated
					// table's drop reaches its other replicas by itself.
					stmt = fmt.Sprintf("ALTER TABLE %s ON CLUSTER %s DROP PARTITION %s",
						clickhouse.Table(s.db, table+clickhouse.LocalSuffix), clickhouse.Ident(s.cluster), m.ID)
				}
				if err := s.exec(ctx, stmt); err != nil {
					errs = append(errs, fmt.Errorf("drop %s of %s.%s: %w", m.Start.Format("2006-01"), s.db, table, err))
					continue
				}
			}
			dropped = append(dropped, m)
		}
	}
	return dropped, kept, errors.Join(errs...)
}

// months lists the months table holds, oldest first.
func (s *Store) months(ctx context.Context, table string) ([]Month, error) {
	if s.cluster != "" {
		return s.clusterMonths(ctx, table)
	}
	var key string
	q := fmt.Sprintf("SELECT partition_key FROM system.tables WHERE database = %s AND name = %s", clickhouse.Quote(s.db), clickhouse.Quote(table))
	if err := s.conn.QueryRow(ctx, q).Scan(&key); err != nil {
		return nil, fmt.Errorf("read the partitioning of %s.%s: %w", s.db, table, err)
	}
	if !strings.HasPrefix(strings.ReplaceAll(key, " ", ""), "toYYYYMM(") {
		return nil, fmt.Errorf("%s.%s is %w (it was created before skuflow partitioned it): "+
			"its rows cannot be dropped a month at a time; the README (Pruning old jobs) shows how to rebuild it", s.db, table, ErrNotPartitioned)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(
		"SELECT partition, sum(rows) FROM system.parts WHERE database = %s AND table = %s AND active GROUP BY partition ORDER BY partition",
		clickhouse.Quote(s.db), clickhouse.Quote(table)))
	if err != nil {
		return nil, fmt.Errorf("read the partitions of %s.%s: %w", s.db, table, err)
	}
	defer rows.Close()
	return s.scanMonths(rows, table)
}

// scanMonths reads rows of (month as YYYYMM, rows) as Months of table.
func (s *Store) scanMonths(rows driver.Rows, table string) ([]Month, error) {
	var out []Month
	for rows.Next() {
		var (
			id string
			n  uint64
		)
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("read the partitions of %s.%s: %w", s.db, table, err)
		}
		ym, err := strconv.Atoi(id)
		if err != nil || ym < 100001 || ym > 999912 || ym%100 < 1 || ym%100 > 12 {
			return nil, fmt.Errorf("%s.%s has partition %q, not a month (YYYYMM)", s.db, table, id)
		}
		start := time.Date(ym/100, time.Month(ym%100), 1, 0, 0, 0, 0, time.UTC)
		out = append(out, Month{Table: table, Start: start, End: start.AddDate(0, 1, 0), Rows: int64(n), ID: id})
	}
	return out, rows.Err()
}

// clusterMonths lists the months of table on a cluster, whose parts are
// the shards' own: read through the Distributed table, by the month
// column the local tables are partitioned by.
func (s *Store) clusterMonths(ctx context.Context, table string) ([]Month, error) {
	column := map[string]string{clickhouse.JobsTable: "started_at", clickhouse.ErrorsTable: "at"}[table]
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT toString(toYYYYMM(%s)) AS m, count() FROM %s GROUP BY m ORDER BY m",
		clickhouse.Ident(column), clickhouse.Table(s.db, table)))
	if err != nil {
		return nil, fmt.Errorf("read the months of %s.%s: %w", s.db, table, err)
	}
	defer rows.Close()
	return s.scanMonths(rows, table)
}

// exec runs a DROP PARTITION; on a cluster it asks again, up to ten times
// a second apart, while a shard's replicas are choosing their leader.
func (s *Store) exec(ctx context.Context, stmt string) error {
	err := s.conn.Exec(ctx, stmt)
	for try := 1; s.cluster != "" && try < 10 && clickhouse.IsCode(err, clickhouse.CodeLeadershipChanged); try++ {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
		err = s.conn.Exec(ctx, stmt)
	}
	return err
}
