package processor

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/schemas"
)

// A stream ends once it holds a batch's worth of set-aside records (copies
// kept until it ends), whatever else would keep it open: a topic of bad
// records costs no more memory than one of good ones. (ends asks the lag
// last; with no client, reaching it panics, so the bound must decide.)
func TestStreamEndsOnSetAsideRecords(t *testing.T) {
	cfg := config.Default().Processor
	cfg.BatchRows, cfg.InsertRows, cfg.FlushInterval = 10, 1000, time.Hour
	p := &Processor{cfg: cfg}
	b := newBatch(schemas.Products, &topicInfo{})
	for i := range 10 {
		b.add(record(0, int64(i), `{"sku":"ok"}`))
	}
	s := newStream()
	s.first = time.Now()
	for i := range 10 {
		s.bad = append(s.bad, errorRow{rec: record(1, int64(i), "not json")})
	}
	if !p.ends(s, b, time.Now()) {
		t.Fatal("a stream holding a batch's worth of set-aside records goes on")
	}
	s.bad, s.badBytes = nil, int(cfg.BatchBytes)
	if !p.ends(s, b, time.Now()) {
		t.Fatal("a stream holding batch_bytes of set-aside records goes on")
	}
}

// fakeInsert is an INSERT whose Send returns what is sent on result, after
// saying on sending that it was called.
type fakeInsert struct {
	driver.Batch
	sending chan struct{}
	result  chan error
}

func (f *fakeInsert) Send() error {
	close(f.sending)
	return <-f.result
}

// Streams ended at once commit in order: a stream whose INSERT went in
// waits for the one before it, and does not commit when that one failed;
// both are then read again, up to where the later one got.
func TestStreamsEndedAtOnceCommitInOrder(t *testing.T) {
	p := &Processor{log: slog.New(slog.DiscardHandler), m: newMeters("order_test"), schema: schemas.Products, unsent: map[*stream]int64{},
		careful: map[int32]int64{}, readFrom: map[int32]kgo.EpochOffset{}, pending: newBatch(schemas.Products, &topicInfo{})}
	p.noCommit.Store(true) // committed counts, without a Kafka client
	start := func(offset int64, prev *finish) (*finish, *fakeInsert) {
		ins := &fakeInsert{sending: make(chan struct{}), result: make(chan error, 1)}
		s := newStream()
		s.ins, s.rows, s.oldest = ins, 10, offset
		s.next[0] = kgo.EpochOffset{Offset: offset}
		p.unsent[s] = s.oldest
		f := &finish{s: s, prev: prev, done: make(chan struct{})}
		go func() {
			f.err = p.end(context.Background(), s, prev)
			close(f.done)
		}()
		p.finishing = append(p.finishing, f)
		return f, ins
	}
	first, firstIns := start(100, nil)
	second, secondIns := start(200, first)
	secondIns.result <- nil
	<-secondIns.sending
	<-firstIns.sending
	select {
	case <-second.done:
		t.Fatal("the second stream ended before the first had gone in")
	case <-time.After(100 * time.Millisecond):
	}
	firstIns.result <- errors.New("refused")
	<-second.done
	if !errors.Is(second.err, errEarlier) {
		t.Fatalf("the second stream's end says %v, want errEarlier", second.err)
	}
	if got := p.Stats().Batches; got != 0 {
		t.Fatalf("%d streams committed, want none", got)
	}
	p.reapFinish(true)
	if !p.rewind || p.careful[0] != 200 || len(p.finishing) != 0 || len(p.unsent) != 0 {
		t.Fatalf("after the failure: rewind %v, careful %v, finishing %d, unsent %d; want a rewind, careful up to 200, nothing left",
			p.rewind, p.careful, len(p.finishing), len(p.unsent))
	}

	// Both go in: the second commits after the first, and both pass.
	p.rewind, p.careful = false, map[int32]int64{}
	first, firstIns = start(300, nil)
	second, secondIns = start(400, first)
	secondIns.result <- nil
	firstIns.result <- nil
	p.reapFinish(true)
	if first.err != nil || second.err != nil || p.Stats().Batches != 2 || p.readFrom[0].Offset != 400 || p.rewind {
		t.Fatalf("errors %v, %v; %d committed; read from %d; rewind %v", first.err, second.err, p.Stats().Batches, p.readFrom[0].Offset, p.rewind)
	}
}
