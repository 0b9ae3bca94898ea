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
// offset to commit once they are in ClickHouse. A batch keeps its memory
// across reset.
type batch struct {
	recs  []*kgo.Record // every record, in poll order
	rows  *rows         // the records that decode, decoded
	bad   []errorRow    // the records that do not
	bytes int
	first time.Time // arrival of the oldest record; zero when empty
	// oldest is the earliest Kafka timestamp of the records (Unix
	// nanoseconds), 0 when empty: the data age is measured from it.
	oldest int64
	next   map[int32]kgo.EpochOffset
}

func newBatch(s *schemas.Schema, t *topicInfo) *batch {
	return &batch{rows: newRows(s, t), next: map[int32]kgo.EpochOffset{}}
}

func (b *batch) len() int { return len(b.recs) }

// add appends r and decodes it.
func (b *batch) add(r *kgo.Record) {
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
	b.bytes = 0
	b.first = time.Time{}
	b.oldest = 0
	clear(b.next)
}
