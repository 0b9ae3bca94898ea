package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stream is one INSERT kept open across consecutive batches: each batch is
// sent as a block of it (clickhouse-go's Flush), and it ends (Send) when it
// holds Processor.InsertRows rows or InsertBytes bytes, when its oldest
// record has waited FlushInterval, or when the instance has caught up. Its
// offsets are committed after it ends, as a batch's are.
//
// Why: ClickHouse writes one part per INSERT, then merges parts in the
// background. On the 2,000,000-row bench, INSERTs of 50,000 rows (the
// batch the processor can afford to hold, decoded) cost ClickHouse 4.1 CPU
// seconds, 1.8x what the direct load of the same rows costs it, nearly all
// of it in writing and merging 40 parts; INSERTs of 500,000 rows cost 2.3,
// the same as the direct load. The server gathers the blocks of one INSERT
// into one part (up to min_insert_block_size_rows, 1,048,576, and
// min_insert_block_size_bytes, 256 MiB, which InsertRows and InsertBytes
// stay below), so nothing of a stream is in the table before it ends, and a
// stream that fails leaves nothing of itself behind (the one ended beside
// it may go in: see finish). (Through a cluster's
// Distributed table, with insert_distributed_sync, each block goes to the
// shards as it comes: a failed stream may leave some of its rows, which
// are written again with the same versions; harmless, as any replay.)
//
// The processor does not keep what it sent: a failed stream is read again
// from the broker instead (rewind), and what it held goes in batch by batch
// (careful), each its own INSERT, retried and split on a refused record as
// a batch always was, until the instance is past where the stream ended.
type stream struct {
	ins     driver.Batch // nil until the first block with rows
	started time.Time
	rows    int
	bytes   int
	blocks  int
	first   time.Time // arrival of its oldest record
	oldest  int64     // Kafka timestamp of its oldest record, Unix ns
	next    map[int32]kgo.EpochOffset
	bad     []errorRow
	// badBytes is the size of the set-aside records it holds: they are
	// copies, held until it ends (see ends).
	badBytes int
}

func newStream() *stream {
	return &stream{started: time.Now(), next: map[int32]kgo.EpochOffset{}}
}

// add takes b's position, age and set-aside records once b is sent.
func (s *stream) add(b *batch) {
	if s.first.IsZero() || (!b.first.IsZero() && b.first.Before(s.first)) {
		s.first = b.first
	}
	if b.oldest != 0 && (s.oldest == 0 || b.oldest < s.oldest) {
		s.oldest = b.oldest
	}
	s.rows += b.rows.len()
	s.bytes += b.bytes
	maps.Copy(s.next, b.next)
	for _, e := range b.bad {
		e.rec = detach(e.rec)
		s.bad = append(s.bad, e)
		s.badBytes += len(e.rec.Key) + len(e.rec.Value)
	}
}

// detach copies a record out of the fetch it came in: the batch that held
// it is reused, and the fetch's memory is let go.
func detach(r *kgo.Record) *kgo.Record {
	c := *r
	c.Key = append([]byte(nil), r.Key...)
	c.Value = append([]byte(nil), r.Value...)
	c.Headers = make([]kgo.RecordHeader, len(r.Headers))
	for i, h := range r.Headers {
		c.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: append([]byte(nil), h.Value...)}
	}
	c.Context = nil
	return &c
}

// streams reports whether the pending batch goes in as a block of a
// stream: streaming is on (InsertRows above BatchRows) and the instance is
// not going through what a failed stream held. Callers hold p.mu.
func (p *Processor) streams() bool {
	return p.cfg.InsertRows > p.cfg.BatchRows && len(p.careful) == 0
}

// ends reports whether the stream s ends with b as its last block: b was
// not full (it goes because it is old or the instance caught up, so
// nothing more is at hand), another full batch would take s past its
// bounds, or s is old. A stream also ends once it holds a batch's worth of
// set-aside records (copies, held until it ends): a topic of bad records
// costs no more memory than one of good ones. Callers hold p.mu.
func (p *Processor) ends(s *stream, b *batch, now time.Time) bool {
	first := b.first
	if !s.first.IsZero() && s.first.Before(first) {
		first = s.first
	}
	bad := 0
	for _, e := range b.bad {
		bad += len(e.rec.Key) + len(e.rec.Value)
	}
	return !b.full(p.cfg) ||
		len(s.bad)+len(b.bad) >= p.cfg.BatchRows || s.badBytes+bad >= int(p.cfg.BatchBytes) ||
		s.rows+b.len()+p.cfg.BatchRows > p.cfg.InsertRows ||
		s.bytes+b.bytes+int(p.cfg.BatchBytes) > int(p.cfg.InsertBytes) ||
		now.Sub(first) >= p.cfg.FlushInterval ||
		p.lag.CaughtUp(p.cl)
}

// closeDue reports whether the open stream, with nothing pending, should
// end now: it is old, or the instance caught up and it has waited a
// little. Callers hold p.mu.
func (p *Processor) closeDue(now time.Time) bool {
	s := p.open
	if s == nil || p.pending.len() > 0 {
		return false
	}
	return now.Sub(s.first) >= p.cfg.FlushInterval || (!now.Before(p.eagerDue(s.first)) && p.lag.CaughtUp(p.cl))
}

// finish is a stream being ended (Send, its set-aside records, its commit)
// by its own goroutine, while the next stream is sent to: ClickHouse sorts
// and writes the part when the INSERT ends, and the processor decodes and
// sends the next batches meanwhile. Up to maxFinishing streams are ended at
// once, each INSERT on its own connection, so that the server writes their
// parts on as many threads; they commit in order, each after the one
// before it (prev) has. One that fails fails those after it too: their
// rows may be in the table already, and are written again, with the same
// versions, when they are read again (harmless, as any replay).
type finish struct {
	s    *stream
	prev *finish       // the stream before, still being ended when this one began
	done chan struct{} // closed when it is over; err is set then
	err  error
}

// maxFinishing is how many streams may be ended at once. Two measured
// best on the 2-core bench (see docs/performance.md): the processor no
// longer waits for one part to be written before it ends the next INSERT.
const maxFinishing = 2

// errEarlier is what a stream's end says when the stream before it did
// not go in: it may not commit.
var errEarlier = errors.New("the insert before it failed")

// streamFlush sends f's batch as a block of f's stream and, with f.end,
// starts ending the stream (f.fin). It does not retry: a stream that
// failed is read again (see stream). It takes no lock of p's.
func (p *Processor) streamFlush(ctx context.Context, f *flight) error {
	s := f.s
	if b := f.b; b != nil && b.len() > 0 {
		b.seal()
		if b.rows.len() > 0 {
			if s.ins == nil {
				ins, err := p.conn.PrepareBatch(ctx, p.insertSQL)
				if err != nil {
					return fmt.Errorf("prepare insert into %s.%s: %w", p.db, p.schema.Name, err)
				}
				s.ins = ins
			}
			if err := p.appendRows(s.ins, b.rows); err != nil {
				_ = s.ins.Abort()
				return err
			}
			if err := s.ins.Flush(); err != nil {
				_ = s.ins.Abort()
				return fmt.Errorf("send %d rows to %s.%s: %w", b.rows.len(), p.db, p.schema.Name, err)
			}
			s.blocks++
		}
		s.add(b)
	}
	if f.end {
		f.fin = &finish{s: s, prev: f.prev, done: make(chan struct{})}
		// Its records are the finish's now, for the data age.
		p.unsentMu.Lock()
		p.unsent[s] = s.oldest
		p.unsentMu.Unlock()
		p.flightOldest.Store(0)
		go func() {
			f.fin.err = p.end(ctx, s, f.fin.prev)
			close(f.fin.done)
			p.wakeUp()
		}()
	}
	return nil
}

// end ends the stream s: the INSERT, the records set aside, and, once the
// stream before it (prev, nil for none) has gone in and committed, the
// commit of its offsets. It takes no lock of p's.
func (p *Processor) end(ctx context.Context, s *stream, prev *finish) error {
	if s.ins != nil {
		if err := s.ins.Send(); err != nil {
			return fmt.Errorf("insert %d rows (%d blocks) into %s.%s: %w", s.rows, s.blocks, p.db, p.schema.Name, err)
		}
		p.m.duration.Observe(time.Since(s.started).Seconds())
		p.m.batchRows.Observe(float64(s.rows))
	}
	if prev != nil {
		if <-prev.done; prev.err != nil {
			return errEarlier
		}
	}
	if len(s.bad) > 0 {
		if err := p.insertErrors(ctx, s.bad); err != nil {
			return err
		}
		p.setAside(s.bad)
	}
	p.m.inserted.Add(float64(s.rows))
	// Its records are in ClickHouse, whatever the commit does.
	p.sent(s)
	p.m.RefreshAge()
	p.committed(ctx, s.next, s.rows, len(s.bad))
	return nil
}

// sent takes s out of the data age: its rows are in ClickHouse, or it
// failed and is read again.
func (p *Processor) sent(s *stream) {
	p.unsentMu.Lock()
	delete(p.unsent, s)
	p.unsentMu.Unlock()
}

// lastFinish is the stream ended last, if it is still being ended, for
// the next end to commit after. Callers hold p.mu.
func (p *Processor) lastFinish() *finish {
	if n := len(p.finishing); n > 0 {
		return p.finishing[n-1]
	}
	return nil
}

// reapFinish collects the streams being ended, waiting for them with wait.
// It reports whether none is being ended any more. Callers hold p.mu.
func (p *Processor) reapFinish(wait bool) bool {
	return p.reapFinishes(0, wait)
}

// reapFinishes collects the streams that have ended, in the order they
// commit; with wait, it waits until no more than keep are being ended. It
// reports whether none is any more. A failed one is read again, with every
// stream after it, the open one included (rewind). Callers hold p.mu.
func (p *Processor) reapFinishes(keep int, wait bool) bool {
	for len(p.finishing) > 0 {
		fin := p.finishing[0]
		select {
		case <-fin.done:
		default:
			if !wait || len(p.finishing) <= keep {
				return false
			}
			<-fin.done
		}
		p.finishing = p.finishing[1:]
		if fin.err == nil {
			p.passed(fin.s.next)
			continue
		}
		p.log.Warn("insert failed; reading its records again, one batch per insert", "err", fin.err)
		// What was sent after it is dropped too: the streams ending after
		// it (they fail on their own, errEarlier), the block in flight,
		// and the open stream.
		later := p.finishing
		p.finishing = nil
		p.reap(true, nil)
		later = append(later, p.finishing...)
		p.finishing = nil
		if p.open != nil {
			if p.open.ins != nil {
				_ = p.open.ins.Abort()
			}
			p.failStream(p.open.next, nil)
		}
		for _, l := range append(later, fin) {
			<-l.done
			p.sent(l.s)
			p.failStream(l.s.next, nil)
		}
		return true
	}
	return true
}

// errRewind is what a flush says when a failed stream must be read again
// before anything held can go in.
var errRewind = errors.New("an insert failed; its records are read again from the broker")

// noteStart notes where a partition is read again from, if it is the
// first time it is polled since it was assigned. Callers hold p.mu.
func (p *Processor) noteStart(fp kgo.FetchTopicPartition) {
	if len(fp.Records) == 0 {
		return
	}
	if _, ok := p.readFrom[fp.Partition]; !ok {
		r := fp.Records[0]
		p.readFrom[fp.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
	}
}

// passed notes that everything before next is in ClickHouse. Callers hold
// p.mu.
func (p *Processor) passed(next map[int32]kgo.EpochOffset) {
	for part, eo := range next {
		p.readFrom[part] = eo
		if c, ok := p.careful[part]; ok && eo.Offset >= c {
			delete(p.careful, part)
		}
	}
}

// failStream gives up a stream that did not go in, with next its position
// and b the batch that was being sent to it: what is held is dropped, the
// partitions are read again after the next poll, and carefully up to where
// the stream got. Callers hold p.mu.
func (p *Processor) failStream(next map[int32]kgo.EpochOffset, b *batch) {
	p.rewind = true
	p.open = nil
	for _, m := range []map[int32]kgo.EpochOffset{next, b.nextOrNil()} {
		for part, eo := range m {
			if eo.Offset > p.careful[part] {
				p.careful[part] = eo.Offset
			}
		}
	}
	p.pending.reset()
	p.flightOldest.Store(0)
	p.notePending()
}

// rewindNow sets every partition back to where it is read again from,
// dropping what this poll brought. It runs between a poll and
// AllowRebalance, when no partition can move. Callers hold p.mu.
func (p *Processor) rewindNow(fetches kgo.Fetches) {
	// A partition first polled now is read again from its first record.
	fetches.EachPartition(p.noteStart)
	p.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{p.kafka.Topic: maps.Clone(p.readFrom)})
	p.pending.reset()
	p.rewind = false
	p.log.Info("reading again from the last insert that went in", "partitions", len(p.readFrom), "careful_until", p.careful)
}
