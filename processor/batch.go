package processor

import (
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/schemas"
)

// batch is what an instance gathers for one INSERT: records of all its
// partitions, in poll order, decoded as they arrive, and per partition the
// offset to commit once they are in ClickHouse. Once sealed, to go, its
// rows are in the table's order and nothing more is added until reset. A
// batch keeps its memory across reset.
type batch struct {
	recs   []*kgo.Record // every record, in poll order
	rows   *rows         // the records that decode, decoded
	bad    []errorRow    // the records that do not
	sealed bool
	bytes  int
	first  time.Time // arrival of the oldest record; zero when empty
	// oldest is the earliest Kafka timestamp of the records (Unix
	// nanoseconds), 0 when empty: the data age is measured from it.
	oldest int64
	next   map[int32]kgo.EpochOffset
}

func newBatch(s *schemas.Schema, t *topicInfo) *batch {
	return &batch{rows: newRows(s, t), next: map[int32]kgo.EpochOffset{}}
}

func (b *batch) len() int { return len(b.recs) }

// add appends r and decodes it. A sealed batch takes nothing more until
// reset: its columns are in another order than its records.
func (b *batch) add(r *kgo.Record) {
	if b.sealed {
		panic("processor: a record added to a sealed batch")
	}
	if len(b.recs) == 0 {
		b.first = time.Now()
	}
	if ts := r.Timestamp.UnixNano(); ts > 0 && (b.oldest == 0 || ts < b.oldest) {
		b.oldest = ts
	}
	b.recs = append(b.recs, r)
	b.bytes += len(r.Key) + len(r.Value)
	// Commit the offset after the record: the next one to read.
	b.next[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	if err := b.rows.add(r); err != nil {
		stage := stageDecode
		if errors.Is(err, kafka.ErrKeyMismatch) {
			stage = stageKey
		}
		b.bad = append(b.bad, errorRow{rec: r, stage: stage, reason: err.Error()})
	}
}

// seal readies b to go, once: its rows in the table's order where the
// table is ordered by the bytes of one String key, as products by sku.
//
// Why: ClickHouse sorts every part it writes by the table's ORDER BY. Sent
// the 2,000,000 bench rows as Native through clickhouse-client, it spent
// 3.35-3.53 CPU seconds on them in poll order, 2.20-2.53 in blocks of
// 50,000 each in key order (the processor's batches), and 1.69-1.76 all in
// key order. The sorted text columns are not moved: their positions are,
// and ch-go copies the values in that order as it sends them, as it copied
// them anyway, only no longer from memory in sequence. On the bench the
// processor spends about 0.6 CPU seconds more (the sort, the moves of the
// other columns, the copies out of sequence) and ClickHouse about 1.0 less
// (docs/performance.md). Rows of one key keep their order; any order would
// be exact, as the row versions decide which row a key keeps.
func (b *batch) seal() {
	if !b.sealed {
		b.sealed = true
		b.rows.sortByKey()
	}
}

// nextOrNil is b's offsets to commit, nil for no batch.
func (b *batch) nextOrNil() map[int32]kgo.EpochOffset {
	if b == nil {
		return nil
	}
	return b.next
}

// full reports whether the batch has reached its size in rows or bytes.
func (b *batch) full(c config.Processor) bool {
	return len(b.recs) >= c.BatchRows || b.bytes >= int(c.BatchBytes)
}

// drop forgets the records of partitions this instance no longer owns. It
// is rare (a lost session, a revoke whose flush failed), so the records
// that stay are simply decoded again.
func (b *batch) drop(partitions []int32) {
	keep := slices.DeleteFunc(slices.Clone(b.recs), func(r *kgo.Record) bool { return slices.Contains(partitions, r.Partition) })
	first := b.first
	b.reset()
	for _, r := range keep {
		b.add(r)
	}
	if len(keep) > 0 {
		b.first = first
	}
}

func (b *batch) reset() {
	clear(b.recs) // let the records' memory go
	b.recs = b.recs[:0]
	clear(b.bad)
	b.bad = b.bad[:0]
	b.rows.reset()
	b.sealed = false
	b.bytes = 0
	b.first = time.Time{}
	b.oldest = 0
	clear(b.next)
}
