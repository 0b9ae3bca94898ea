package processor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/clickhouse"
	"skuflow/schemas"
)

// errorRow is one record set aside, with why.
type errorRow struct {
	rec    *kgo.Record
	stage  string // stageDecode, stageKey or stageInsert
	reason string
}

// The stages at which the processor sets a record aside, as ingest_errors
// and metrics.RecordsRejected name them.
const (
	stageDecode = "decode" // not a valid record of the type
	stageKey    = "key"    // not where its key belongs (kafka.CheckKey)
	stageInsert = "insert" // ClickHouse refused it
)

// insert writes b: the records that decoded go into the table, the others
// into ingest_errors. When ClickHouse refuses the rows themselves (a data
// error), the rows are split until the refused records are found; they go
// to ingest_errors and the rest is inserted. Any other error is returned for
// the caller to retry the whole batch; rows inserted before it are inserted
// again then, which the table's versioning makes harmless.
//
// The batch was decoded as its records arrived; a retry sends the same
// rows, and only the halves of a split batch are decoded again.
func (p *Processor) insert(ctx context.Context, b *batch) (inserted, quarantined int, err error) {
	b.seal()
	n, refused, err := p.insertRows(ctx, b.rows)
	if err != nil {
		return 0, 0, err
	}
	bad := slices.Concat(b.bad, refused)
	if len(bad) > 0 {
		if err := p.insertErrors(ctx, bad); err != nil {
			return 0, 0, err
		}
		p.setAside(bad)
	}
	return n, len(bad), nil
}

// setAside counts and logs records that went into ingest_errors.
func (p *Processor) setAside(bad []errorRow) {
	p.m.rejected(bad)
	for _, b := range bad {
		p.log.Warn("record set aside in "+clickhouse.ErrorsTable, "partition", b.rec.Partition, "offset", b.rec.Offset,
			"stage", b.stage, "reason", b.reason)
	}
}

// insertRows inserts rs, splitting it on a data error as insert says.
func (p *Processor) insertRows(ctx context.Context, rs *rows) (int, []errorRow, error) {
	if rs.len() == 0 {
		return 0, nil, nil
	}
	err := p.send(ctx, rs)
	switch {
	case err == nil:
		return rs.len(), nil, nil
	case !clickhouse.IsDataError(err):
		return 0, nil, err
	case rs.len() == 1:
		return 0, []errorRow{{rec: rs.recs[0], stage: stageInsert, reason: err.Error()}}, nil
	}
	var n int
	var bad []errorRow
	half := rs.len() / 2
	for _, part := range [][]*kgo.Record{rs.recs[:half], rs.recs[half:]} {
		sub := newRows(p.schema, rs.topic)
		for _, r := range part {
			if err := sub.add(r); err != nil {
				return 0, nil, fmt.Errorf("record %d/%d no longer decodes: %w", r.Partition, r.Offset, err)
			}
		}
		k, refused, err := p.insertRows(ctx, sub)
		if err != nil {
			return 0, nil, err
		}
		n += k
		bad = append(bad, refused...)
	}
	return n, bad, nil
}

// send inserts rs with one columnar INSERT.
func (p *Processor) send(ctx context.Context, rs *rows) error {
	n := rs.len()
	start := time.Now()
	b, err := p.conn.PrepareBatch(ctx, p.insertSQL)
	if err != nil {
		return fmt.Errorf("prepare insert of %d rows into %s.%s: %w", n, p.db, p.schema.Name, err)
	}
	if err := p.appendRows(b, rs); err != nil {
		_ = b.Abort()
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s.%s: %w", n, p.db, p.schema.Name, err)
	}
	p.m.duration.Observe(time.Since(start).Seconds())
	p.m.batchRows.Observe(float64(n))
	return nil
}

// appendRows puts rs into b's columns, in the order of p.columns: the
// block's (the schema's, extra, the identity columns), then provenance;
// ch-go columns where they can be, handed over without a copy (rs must then
// stay unchanged until b has sent them).
func (p *Processor) appendRows(b driver.Batch, rs *rows) error {
	data := make([]any, 0, len(p.columns))
	for _, c := range p.columns[:len(p.columns)-len(schemas.Provenance)] {
		data = append(data, rs.block.Input(c))
	}
	data = append(data, rs.jobs, rs.sources, proto.ColUInt64(rs.lines), proto.ColUInt32(rs.partitions),
		proto.ColUInt64(rs.offsets), proto.ColUInt64(rs.versions), rs.ingested(time.Now()))
	cols := b.Columns()
	for i, d := range data {
		if err := clickhouse.AppendColumn(b, cols, i, d); err != nil {
			return fmt.Errorf("column %s: %w", p.columns[i], err)
		}
	}
	return nil
}

func (p *Processor) insertErrors(ctx context.Context, bad []errorRow) error {
	rows := make([]clickhouse.ErrorRow, len(bad))
	for i, e := range bad {
		job, source, line := provenance(e.rec)
		rows[i] = clickhouse.ErrorRow{Job: job, Source: source, Line: int64(line), Stage: e.stage, Reason: e.reason,
			Raw: e.rec.Value, Topic: e.rec.Topic, Partition: e.rec.Partition, Offset: e.rec.Offset}
	}
	return clickhouse.InsertErrors(ctx, p.conn, p.db, rows)
}
