package processor

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
)

// batch is what an instance holds between inserts: records of all its
// partitions, in poll order, and per partition the offset to commit once
// they are in ClickHouse.
type batch struct {
	recs  []*kgo.Record
	bytes int
	first time.Time // arrival of the oldest record; zero when empty
	next  map[int32]kgo.EpochOffset
}

func newBatch() batch { return batch{next: map[int32]kgo.EpochOffset{}} }

func (b *batch) len() int { return len(b.recs) }

func (b *batch) add(r *kgo.Record) {
	if len(b.recs) == 0 {
		b.first = time.Now()
	}
	b.recs = append(b.recs, r)
	b.bytes += len(r.Key) + len(r.Value)
	// Commit the offset after the record: the next one to read.
	b.next[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
}

// due reports whether the batch should be inserted now: it is full by rows
// or bytes, or its oldest record has waited a flush interval.
func (b *batch) due(c config.Processor, now time.Time) bool {
	if len(b.recs) == 0 {
		return false
	}
	return len(b.recs) >= c.BatchRows || b.bytes >= int(c.BatchBytes) || now.Sub(b.first) >= c.FlushInterval
}

// drop forgets the records of partitions this instance no longer owns.
func (b *batch) drop(partitions []int32) {
	for _, p := range partitions {
		delete(b.next, p)
	}
	b.recs = slices.DeleteFunc(b.recs, func(r *kgo.Record) bool { return slices.Contains(partitions, r.Partition) })
	b.bytes = 0
	for _, r := range b.recs {
		b.bytes += len(r.Key) + len(r.Value)
	}
	if len(b.recs) == 0 {
		b.first = time.Time{}
	}
}

func (b *batch) reset() {
	clear(b.recs) // let the records' memory go
	b.recs = b.recs[:0]
	b.bytes = 0
	b.first = time.Time{}
	clear(b.next)
}
