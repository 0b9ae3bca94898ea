package processor

import (
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/jsonscan"
	"skuflow/internal/kafka"
	"skuflow/schemas"
)

// rows is one INSERT, column by column: the schema's columns in a
// schemas.Block and the provenance columns beside it, with the records they
// came from. It keeps its memory from one batch to the next, so that
// decoding a record allocates nothing.
type rows struct {
	block *schemas.Block
	recs  []*kgo.Record // the records appended, in order
	sc    jsonscan.Scanner
	// fields is the scanner's output, kept for its memory.
	fields []schemas.Field

	// jobs and sources are ch-go columns, handed to clickhouse-go as they
	// are (clickhouse.AppendColumn).
	jobs, sources proto.ColStr
	lines         []uint64
	partitions    []uint32
	offsets       []uint64
	versions      []uint64
	at            []time.Time // filled by ingested

	topic *topicInfo
	rec   *kgo.Record // the record being added, for the key check

	// Scratch space of sortByKey (schemas.Permute).
	tmpRecs []*kgo.Record
	tmpPos  []proto.Position
	tmp64   []uint64
	tmp32   []uint32
}

// topicInfo is what rows need to know of the topic: its incarnation, which
// row versions are built on, and the configured partition count, which
// says on which partition a key belongs.
type topicInfo struct {
	incarnation uint32
	// partitions is never 0 in a processor (config.Validate); rows of a
	// topicInfo without it check no key, for tests of decoding alone.
	partitions int
}

func newRows(s *schemas.Schema, t *topicInfo) *rows {
	r := &rows{block: s.NewBlock(), topic: t}
	r.sc.End = "value"
	if t.partitions > 0 {
		r.block.CheckKey = func(key []byte) error { return kafka.CheckKey(r.rec, key, r.topic.partitions) }
	}
	return r
}

func (r *rows) len() int { return len(r.recs) }

func (r *rows) reset() {
	r.block.Reset()
	clear(r.recs) // let the records' memory go
	r.recs = r.recs[:0]
	r.jobs.Reset()
	r.sources.Reset()
	r.lines = r.lines[:0]
	r.partitions, r.offsets, r.versions = r.partitions[:0], r.offsets[:0], r.versions[:0]
}

// sortByKey puts the rows in the order of the table where the block can
// (schemas.Block.SortByKey), their records and provenance with them.
// Nothing is added after it until reset.
func (r *rows) sortByKey() {
	perm := r.block.SortByKey()
	if perm == nil {
		return
	}
	schemas.Permute(r.recs, perm, &r.tmpRecs)
	clear(r.tmpRecs) // let the records' memory go with the batch
	for _, c := range []*proto.ColStr{&r.jobs, &r.sources} {
		if !oneValue(c) {
			schemas.Permute(c.Pos, perm, &r.tmpPos)
		}
	}
	schemas.Permute(r.lines, perm, &r.tmp64)
	schemas.Permute(r.partitions, perm, &r.tmp32)
	schemas.Permute(r.offsets, perm, &r.tmp64)
	schemas.Permute(r.versions, perm, &r.tmp64)
}

// ingested returns the _ingested_at column: now, for every row.
func (r *rows) ingested(now time.Time) []time.Time {
	now = now.Truncate(time.Second)
	r.at = r.at[:0]
	for range r.recs {
		r.at = append(r.at, now)
	}
	return r.at
}

// add decodes rec and appends it as a row. A record that cannot be a row is
// not appended, and the error says why.
func (r *rows) add(rec *kgo.Record) error {
	_, fields, err := r.sc.Object(rec.Value, r.fields)
	if err != nil {
		if _, ok := errors.AsType[*jsonscan.NotObjectError](err); ok {
			return err
		}
		return fmt.Errorf("value is not a JSON object: %w", err)
	}
	r.fields = fields
	r.rec = rec
	err = r.block.AppendKeyed(rec.Key, fields)
	r.rec = nil
	if err != nil {
		return err
	}
	r.recs = append(r.recs, rec)
	job, source, line := kafka.Provenance(rec.Headers)
	appendRepeated(&r.jobs, job)
	appendRepeated(&r.sources, source)
	r.lines = append(r.lines, line)
	r.partitions, r.offsets = append(r.partitions, uint32(rec.Partition)), append(r.offsets, uint64(rec.Offset))
	r.versions = append(r.versions, kafka.Version(r.topic.incarnation, rec.Offset))
	return nil
}

// appendRepeated appends v to c, as the previous value again when it is
// the same: the rows of a batch mostly come from one job and one file.
func appendRepeated(c *proto.ColStr, v []byte) {
	if n := len(c.Pos); n > 0 {
		if last := c.Pos[n-1]; string(c.Buf[last.Start:last.End]) == string(v) {
			c.Pos = append(c.Pos, last)
			return
		}
	}
	c.AppendBytes(v)
}

// oneValue reports whether every row of c, filled by appendRepeated, is the
// same value: its buffer holds the first row's value alone, so every later
// row repeats it or is an empty value (which makes no room in the buffer,
// and is then repeated until another value, which would), and the last row
// is the first.
func oneValue(c *proto.ColStr) bool {
	n := len(c.Pos)
	return n > 0 && c.Pos[0].Start == 0 && c.Pos[0].End == len(c.Buf) && c.Pos[n-1] == c.Pos[0]
}

// provenance reads the loader's header of a record.
func provenance(r *kgo.Record) (job, source string, line uint64) {
	j, s, line := kafka.Provenance(r.Headers)
	return string(j), string(s), line
}
