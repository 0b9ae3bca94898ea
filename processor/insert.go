package processor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/clickhouse"
	"skuflow/schemas"
)

// maxRawBytes bounds the raw record kept in ingest_errors.
const maxRawBytes = 64 << 10

// errorRow is one record set aside, with why.
type errorRow struct {
	rec    *kgo.Record
	stage  string // decode or insert
	reason string
}

// insert writes recs: those that decode go into the table, the others into
// ingest_errors. When ClickHouse refuses the rows themselves (a data error),
// the batch is split until the refused records are found; they go to
// ingest_errors and the rest is inserted. Any other error is returned for
// the caller to retry the whole batch; rows inserted before it are inserted
// again then, which the table's versioning makes harmless.
func (p *Processor) insert(ctx context.Context, recs []*kgo.Record) (inserted, quarantined int, err error) {
	good := make([]*kgo.Record, 0, len(recs))
	var bad []errorRow
	probe := p.schema.NewBlock()
	for _, r := range recs {
		if err := probe.Append(r.Value); err != nil {
			bad = append(bad, errorRow{rec: r, stage: "decode", reason: err.Error()})
			continue
		}
		good = append(good, r)
	}
	n, refused, err := p.insertRows(ctx, good)
	if err != nil {
		return 0, 0, err
	}
	bad = append(bad, refused...)
	if len(bad) > 0 {
		if err := p.insertErrors(ctx, bad); err != nil {
			return 0, 0, err
		}
		for _, b := range bad {
			p.log.Warn("record set aside in "+clickhouse.ErrorsTable, "partition", b.rec.Partition, "offset", b.rec.Offset,
				"stage", b.stage, "reason", b.reason)
		}
	}
	return n, len(bad), nil
}

func (p *Processor) insertRows(ctx context.Context, recs []*kgo.Record) (int, []errorRow, error) {
	if len(recs) == 0 {
		return 0, nil, nil
	}
	err := p.send(ctx, recs)
	switch {
	case err == nil:
		return len(recs), nil, nil
	case !clickhouse.IsDataError(err):
		return 0, nil, err
	case len(recs) == 1:
		return 0, []errorRow{{rec: recs[0], stage: "insert", reason: err.Error()}}, nil
	}
	half := len(recs) / 2
	n1, bad1, err := p.insertRows(ctx, recs[:half])
	if err != nil {
		return 0, nil, err
	}
	n2, bad2, err := p.insertRows(ctx, recs[half:])
	if err != nil {
		return 0, nil, err
	}
	return n1 + n2, append(bad1, bad2...), nil
}

// send inserts recs, all decodable, with one columnar INSERT.
func (p *Processor) send(ctx context.Context, recs []*kgo.Record) error {
	block := p.schema.NewBlock()
	n := len(recs)
	var (
		jobs, sources = make([]string, 0, n), make([]string, 0, n)
		lines         = make([]uint64, 0, n)
		partitions    = make([]uint32, 0, n)
		offsets       = make([]uint64, 0, n)
		at            = make([]time.Time, 0, n)
		now           = time.Now().Truncate(time.Second)
	)
	for _, r := range recs {
		if err := block.Append(r.Value); err != nil {
			return fmt.Errorf("record %d/%d no longer decodes: %w", r.Partition, r.Offset, err)
		}
		job, source, line := provenance(r)
		jobs, sources, lines = append(jobs, job), append(sources, source), append(lines, line)
		partitions, offsets = append(partitions, uint32(r.Partition)), append(offsets, uint64(r.Offset))
		at = append(at, now)
	}
	cols := make([]string, 0, len(p.schema.Columns)+1+len(schemas.Provenance))
	data := make([]any, 0, cap(cols))
	for _, c := range p.schema.Columns {
		cols = append(cols, c.Name)
		data = append(data, block.Column(c.Name))
	}
	cols = append(cols, p.schema.Extra)
	data = append(data, block.Column(p.schema.Extra))
	for _, pc := range schemas.Provenance {
		cols = append(cols, pc.Name)
	}
	data = append(data, jobs, sources, lines, partitions, offsets, at)

	b, err := p.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", p.db, p.schema.Name, strings.Join(cols, ", ")))
	if err != nil {
		return fmt.Errorf("prepare insert of %d rows into %s.%s: %w", n, p.db, p.schema.Name, err)
	}
	for i, d := range data {
		if err := b.Column(i).Append(d); err != nil {
			_ = b.Abort()
			return fmt.Errorf("column %s: %w", cols[i], err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s.%s: %w", n, p.db, p.schema.Name, err)
	}
	return nil
}

func (p *Processor) insertErrors(ctx context.Context, bad []errorRow) error {
	b, err := p.conn.PrepareBatch(ctx, fmt.Sprintf(
		"INSERT INTO %s.%s (job, source, line, stage, reason, raw, topic, partition, offset, at)", p.db, clickhouse.ErrorsTable))
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", clickhouse.ErrorsTable, err)
	}
	now := time.Now()
	for _, e := range bad {
		job, source, line := provenance(e.rec)
		raw := e.rec.Value
		if len(raw) > maxRawBytes {
			raw = raw[:maxRawBytes]
		}
		if err := b.Append(job, source, line, e.stage, e.reason, string(raw), e.rec.Topic,
			uint32(e.rec.Partition), uint64(e.rec.Offset), now); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append to %s: %w", clickhouse.ErrorsTable, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(bad), clickhouse.ErrorsTable, err)
	}
	return nil
}
