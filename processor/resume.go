package processor

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/clickhouse"
	"skuflow/internal/kafka"
	"skuflow/internal/retry"
	"skuflow/schemas"
)

// resume is the processor's kgo.AdjustFetchOffsetsFn: a newly assigned
// partition starts where its rows in the table end when that is before the
// group's committed offset. The committed offset says what was inserted
// into some ClickHouse; the table says what this one holds. They part when
// ClickHouse is replaced or restored from an older backup (or moved to a
// cluster) while Kafka keeps the group's offsets: without this, the
// processor would go on past records the table never got, while the
// aggregator, which starts where the table ends, counts them — the table
// and the aggregates would disagree for good. Reading a partition again
// is harmless: a record lands with the version it had.
func (p *Processor) resume(ctx context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	t, ok := offs[p.kafka.Topic]
	if !ok || len(t) == 0 {
		return offs, nil
	}
	parts := make([]int32, 0, len(t))
	for part := range t {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	p.log.Info("partitions assigned", "partitions", parts)
	var ends map[int32]int64
	err := retry.Forever(ctx, p.prepare, p.log, "read where the table ends", clickhouse.Retriable, func(ctx context.Context) error {
		var err error
		ends, err = tableEnds(ctx, p.conn, p.full.ClickHouse.Database, p.schema, p.topic.incarnation, parts)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, part := range parts {
		committed := t[part].EpochOffset().Offset
		if end := ends[part]; committed > end {
			p.log.Warn("the table ends before the group's committed offset (ClickHouse replaced or restored?): reading the partition again from where the table ends",
				"partition", part, "committed", committed, "table_ends", end)
			t[part] = kgo.NewOffset().At(end).WithEpoch(-1)
		}
	}
	return offs, nil
}

// tableEnds returns, for each of parts, the offset after the last record
// of the topic's incarnation that the table of s holds; 0 for a partition
// with none (all of it is to be read). Rows of an earlier incarnation of
// the topic do not count: their offsets are another topic's.
func tableEnds(ctx context.Context, conn clickhouse.Conn, db string, s *schemas.Schema, incarnation uint32, parts []int32) (map[int32]int64, error) {
	in := make([]string, len(parts))
	for i, part := range parts {
		in[i] = strconv.Itoa(int(part))
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT _partition, max(%s) FROM %s WHERE _partition IN (%s) GROUP BY _partition",
		clickhouse.Ident(schemas.VersionColumn), clickhouse.Table(db, s.Name), strings.Join(in, ", ")))
	if err != nil {
		return nil, fmt.Errorf("read where %s ends: %w", s.Name, err)
	}
	defer rows.Close()
	ends := make(map[int32]int64, len(parts))
	for rows.Next() {
		var part uint32
		var version uint64
		if err := rows.Scan(&part, &version); err != nil {
			return nil, fmt.Errorf("read where %s ends: %w", s.Name, err)
		}
		if inc, off := kafka.SplitVersion(version); inc == incarnation {
			ends[int32(part)] = off + 1
		}
	}
	return ends, rows.Err()
}
