package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/consume"
	"skuflow/internal/kafka"
	"skuflow/internal/metrics"
	"skuflow/internal/retry"
	"skuflow/schemas"
)

// Processor is one instance of the topic -> ClickHouse service.
type Processor struct {
	full    config.Config
	cfg     config.Processor
	kafka   config.Kafka
	db      string
	schema  *schemas.Schema
	conn    clickhouse.Conn
	log     *slog.Logger
	backoff retry.Backoff // of inserts, and
	prepare retry.Backoff // of the start (migration, topic); each with its metrics hook
	cl      *kgo.Client
	// topic is the incarnation and partition count the rows are built
	// with; it changes only between two runs on the topic, when nothing
	// is held.
	topic topicInfo
	// noCommit is set once the topic is known to be recreated: batches
	// still go in, but their offsets, positions in the old topic, are
	// never committed (by name, they would land on the new one).
	noCommit atomic.Bool

	// columns names the INSERT's columns: the schema's, extra, provenance.
	columns   []string
	insertSQL string
	// eagerRows is the size from which a batch goes in as soon as nothing
	// more is waiting to be read, before it is full or old.
	eagerRows int
	// lastEnd is when the last INSERT's end began (a part written); see
	// eagerDue. Guarded by mu.
	lastEnd time.Time

	// mu guards the batches and lag. The poll loop and the rebalance
	// callbacks take turns (BlockRebalanceOnPoll), so it is never contended
	// by them; the goroutine of the insert in flight never takes it.
	mu sync.Mutex
	// pending is being filled by the poll loop. At most one batch is in
	// flight, inserted and then committed by its own goroutine, while the
	// next one fills: batches go in, and are committed, in poll order.
	pending  *batch
	spare    *batch // an empty batch, kept for its memory
	inflight *flight
	// failed is a batch whose insert was given up because flushCtx ended,
	// which happens only once the instance is stopping; it goes in before
	// pending, or nothing after it does.
	failed *batch
	// open is the INSERT kept open across batches (see stream), nil for
	// none; while a flight sends to it, the flight has it.
	open *stream
	// finishing are the streams being ended, each by its own goroutine,
	// oldest first: they commit in that order (see finish), and no more
	// than maxFinishing are ended at once.
	finishing []*finish
	// readFrom is, per partition, where it is read again from if what is
	// held is given up: the offset after the last commit, or the first
	// record polled since it was assigned.
	readFrom map[int32]kgo.EpochOffset
	// rewind is set when a stream failed: what it held is no longer in
	// memory, so everything held is dropped and the partitions are read
	// again from readFrom, after the next poll.
	rewind bool
	// careful holds, per partition, the offset a failed stream had reached:
	// until every partition is past it, batches go in one INSERT each,
	// retried and split as they need.
	careful map[int32]int64
	// lag tells when everything the broker holds has been polled.
	lag consume.Lag

	// flushCtx bounds every insert and commit: it ends ShutdownTimeout
	// after Run's context, so that a stopping instance still gets its
	// batches in, but not forever.
	flushCtx context.Context

	// wake cancels the poll in progress, when the insert in flight ends.
	wakeMu sync.Mutex
	wake   context.CancelFunc

	stats Stats
	m     meters
	// pendingOldest and flightOldest are the Kafka timestamps (Unix
	// nanoseconds) of the oldest record of the pending batch (and of a
	// failed one) and of the batch in flight, 0 for none: what the data
	// age is measured from, read by the meter's ticker without p.mu.
	pendingOldest, flightOldest atomic.Int64
	// unsent is the same for each stream being ended whose INSERT has not
	// yet gone in, under its own lock (the ticker reads it).
	unsentMu sync.Mutex
	unsent   map[*stream]int64
}

// meters are the processor's metrics of its type, bound to it once.
type meters struct {
	*consume.Meter
	inserted  prometheus.Counter
	duration  prometheus.Observer
	batchRows prometheus.Observer
	// rejected by stage: decode, key, insert.
	decode, key, insert prometheus.Counter
}

func newMeters(typ string) meters {
	metrics.Register(metrics.RecordsInserted, metrics.InsertDuration, metrics.BatchRows, metrics.RecordsRejected)
	return meters{
		Meter:     consume.NewMeter(typ),
		inserted:  metrics.RecordsInserted.WithLabelValues(typ),
		duration:  metrics.InsertDuration.WithLabelValues(typ),
		batchRows: metrics.BatchRows.WithLabelValues(typ),
		decode:    metrics.RecordsRejected.WithLabelValues(typ, stageDecode),
		key:       metrics.RecordsRejected.WithLabelValues(typ, stageKey),
		insert:    metrics.RecordsRejected.WithLabelValues(typ, stageInsert),
	}
}

// rejected counts records set aside in ingest_errors.
func (m *meters) rejected(bad []errorRow) {
	for _, b := range bad {
		switch b.stage {
		case stageDecode:
			m.decode.Inc()
		case stageKey:
			m.key.Inc()
		default:
			m.insert.Inc()
		}
	}
}

// flight is a batch being inserted and committed by its own goroutine: on
// its own (classic), or as a block of a stream, which it ends with end (b
// nil: end it with nothing more).
type flight struct {
	b       *batch
	classic bool
	s       *stream
	end     bool
	fin     *finish       // the stream's end, started by an end flight
	prev    *finish       // the end of the stream before, if still ending
	done    chan struct{} // closed when it is over; err is set then
	err     error
}

// Stats count what an instance has done since it started.
type Stats struct {
	mu       sync.Mutex
	Inserted int64 // rows inserted into the table
	Errors   int64 // records set aside in ingest_errors
	Batches  int64
}

// Options wire a Processor.
type Options struct {
	Config     config.Config
	Schema     *schemas.Schema
	Conn       clickhouse.Conn
	Log        *slog.Logger
	Backoff    retry.Backoff
	ClientOpts []kgo.Opt // extra franz-go options, for tests
}

// New returns a processor; Run starts it.
func New(o Options) *Processor {
	var cols []string
	for _, c := range o.Schema.TableColumns() {
		cols = append(cols, c.Name)
	}
	db := o.Config.ClickHouse.Database
	p := &Processor{
		full:      o.Config,
		cfg:       o.Config.Processor,
		kafka:     o.Config.Kafka,
		db:        db,
		schema:    o.Schema,
		conn:      o.Conn,
		log:       o.Log,
		columns:   cols,
		insertSQL: insertSQL(db, o.Schema.Name, cols),
		eagerRows: max(o.Config.Processor.BatchRows/eagerFraction, 1),
		readFrom:  map[int32]kgo.EpochOffset{},
		unsent:    map[*stream]int64{},
		careful:   map[int32]int64{},
	}
	p.m = newMeters(o.Schema.Name)
	p.prepare = p.m.Backoff("prepare", o.Backoff)
	p.backoff = p.m.Backoff("insert", o.Backoff)
	p.topic.partitions = o.Config.Kafka.Partitions
	p.pending, p.spare = newBatch(o.Schema, &p.topic), newBatch(o.Schema, &p.topic)
	return p
}

// eagerFraction: once the instance has read everything the broker holds, a
// batch of at least BatchRows/eagerFraction rows (1000 by default, the
// smallest insert ClickHouse's documentation recommends) goes in at once,
// rather than waiting to fill up or for FlushInterval. The end of a push is
// then loaded without delay, while a trickle of records still makes few,
// larger inserts.
const eagerFraction = 50

// fetchMaxBytes bounds one fetch from the broker.
const fetchMaxBytes = 8 << 20

// Run migrates the database, joins the group and loads records until ctx is
// cancelled; then it flushes what it holds, commits, leaves the group and
// returns nil. When the topic is recreated it starts again on the new one.
// It returns an error when it cannot go on: the topic's partition count
// differs from the one recorded or configured (invariant 2), at start or
// while running, or the database cannot be migrated.
//
// Once ctx is cancelled, Run returns within ShutdownTimeout and
// giveUpAfter, whatever it is waiting for (see awaitStop).
func (p *Processor) Run(ctx context.Context, extra ...kgo.Opt) error {
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, extra...) }()
	return p.awaitStop(ctx, done)
}

// giveUpAfter is how long a stopping instance waits, once ShutdownTimeout
// has passed, for what is still blocked to return.
const giveUpAfter = 5 * time.Second

// awaitStop returns run's result (done). A server that stops answering
// without an error or a reset (frozen, or black-holed by a network) can
// hold a call for ever: clickhouse-go bounds Send by its context, but not
// Flush, nor the read of an INSERT's first answer, and the loop, a
// rebalance or the final flush may be waiting on one. Once ctx has ended
// and ShutdownTimeout and giveUpAfter have passed, the instance stops
// without it and says so: nothing it did not commit is lost, it is read
// again on restart.
func (p *Processor) awaitStop(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return err
	case <-time.After(p.cfg.ShutdownTimeout + giveUpAfter):
		return fmt.Errorf("still stopping %s after processor.shutdown_timeout (%s) and %s more: ClickHouse at %s (or Kafka) does not answer; "+
			"stopped without waiting: nothing after the last commit is lost, it is read again on restart",
			p.schema.Name, p.cfg.ShutdownTimeout, giveUpAfter, p.full.ClickHouse.Addr)
	}
}

func (p *Processor) run(ctx context.Context, extra ...kgo.Opt) error {
	flushCtx, endFlushes := context.WithCancel(context.WithoutCancel(ctx))
	defer endFlushes()
	p.flushCtx = flushCtx
	stopping := context.AfterFunc(ctx, func() {
		time.AfterFunc(p.cfg.ShutdownTimeout, endFlushes)
	})
	defer stopping()
	defer p.m.WatchAge(p.oldest)()
	if err := clickhouse.Prepare(ctx, p.conn, p.full, p.schema, p.log, p.prepare); err != nil {
		return err
	}
	for {
		t, err := consume.PrepareTopic(ctx, p.conn, p.full, p.log, p.prepare)
		if err != nil {
			return err
		}
		p.topic.incarnation = t.Incarnation
		err = p.runOn(ctx, t, extra...)
		if errors.Is(err, kafka.ErrTopicRecreated) && ctx.Err() == nil {
			p.log.Warn("the topic was recreated; starting again on it", "err", err)
			continue
		}
		return err
	}
}

// runOn consumes one incarnation of the topic until ctx ends or the topic
// changes.
func (p *Processor) runOn(ctx context.Context, t consume.Topic, extra ...kgo.Opt) error {
	opts := append([]kgo.Opt{},
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(p.kafka.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		// Three heartbeats per session, as Kafka advises: franz-go's
		// default of 3s would leave a short session no slack at all.
		kgo.HeartbeatInterval(p.cfg.SessionTimeout/3),
		kgo.OnPartitionsRevoked(p.revoked),
		kgo.OnPartitionsLost(p.lost),
		kgo.AdjustFetchOffsetsFn(p.resume),
		// Bound what is fetched ahead while batches are being inserted:
		// 8 MB (about 40,000 products) a fetch keeps the loop fed; more
		// only costs memory (measured: 64 MB held the processor's peak RSS
		// up by a third and made it slower, through the GC).
		kgo.FetchMaxBytes(int32(min(p.cfg.BatchBytes, fetchMaxBytes))),
		kgo.FetchMaxPartitionBytes(fetchMaxBytes/4),
	)
	cl, err := kafka.NewClient(p.kafka, p.log, append(opts, extra...)...)
	if err != nil {
		return err
	}
	p.cl = cl
	p.lag = consume.Lag{Meter: p.m.Meter}
	p.log.Info("started", "group", p.cfg.Group, "topic", p.kafka.Topic, "topic_id", t.ID, "incarnation", t.Incarnation,
		"batch_rows", p.cfg.BatchRows, "batch_bytes", int64(p.cfg.BatchBytes), "flush_interval", p.cfg.FlushInterval)

	p.noCommit.Store(false)
	// Positions are of this incarnation of the topic: none carried over
	// (the last run's final revoke forgot them, in any case).
	clear(p.readFrom)
	clear(p.careful)
	p.rewind = false
	loopCtx, changed := consume.WatchTopic(ctx, cl, p.kafka, t.TopicState, p.log, func(err error) {
		if errors.Is(err, kafka.ErrTopicRecreated) {
			p.noCommit.Store(true)
		}
	})
	stopLag := p.lag.WatchLag(ctx, cl, p.kafka.Topic)
	p.loop(loopCtx)
	stopLag()

	// Shutting down: the batch in flight and the pending one go in, in
	// that order, within ShutdownTimeout; then leave the group (the final
	// revoke finds nothing left to flush).
	p.mu.Lock()
	err = p.drain()
	p.mu.Unlock()
	if err != nil {
		p.log.Warn("final flush did not finish; its records will be read again on restart", "err", err)
	}
	cl.CloseAllowingRebalance()
	p.log.Info("stopped", "inserted", p.Stats().Inserted, "errors", p.Stats().Errors)
	return changed()
}

// insertSQL is the INSERT of the table's columns, every name quoted.
func insertSQL(db, table string, cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = clickhouse.Ident(c)
	}
	return fmt.Sprintf("INSERT INTO %s (%s)", clickhouse.Table(db, table), strings.Join(quoted, ", "))
}

// maxPoll bounds the records one poll hands over; a poll takes no more
// than the pending batch has room for, so that a batch is never over its
// row limit (and a stream's blocks are full ones).
const maxPoll = 10000

// loop polls records into the pending batch and hands batches to be
// inserted, until ctx ends.
func (p *Processor) loop(ctx context.Context) {
	for {
		p.mu.Lock()
		p.reap(false, nil)
		p.reapFinish(false)
		wait, inflight, rewind := p.cfg.FlushInterval, p.inflight, p.rewind
		switch now := time.Now(); {
		case rewind && inflight == nil:
			// A poll on a context already cancelled returns at once,
			// and blocks rebalances until AllowRebalance, as one that
			// brings records does: the rewind runs in that window.
		case inflight != nil:
			// Until it ends and wakes the poll.
		case p.ready(now) || p.closeDue(now):
			wait = 0
		case p.pending.len() > 0 || p.open != nil:
			first := p.first()
			wait = time.Until(first.Add(p.cfg.FlushInterval))
			if p.lag.CaughtUp(p.cl) {
				wait = time.Until(p.eagerDue(first))
			}
		}
		p.mu.Unlock()

		if wait > 0 {
			pollCtx, cancel := context.WithTimeout(ctx, wait)
			if rewind && inflight == nil {
				cancel()
			}
			p.setWake(cancel)
			if inflight != nil {
				select {
				case <-inflight.done: // it ended before the wake was set
					cancel()
				default:
				}
			}
			p.mu.Lock()
			room := max(1, min(maxPoll, p.cfg.BatchRows-p.pending.len()))
			p.mu.Unlock()
			fetches := p.cl.PollRecords(pollCtx, room)
			p.setWake(nil)
			cancel()
			if fetches.IsClientClosed() || ctx.Err() != nil {
				p.cl.AllowRebalance()
				return
			}
			fetches.EachError(func(topic string, partition int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					p.log.Warn("fetch", "topic", topic, "partition", partition, "err", err)
				}
			})
			p.mu.Lock()
			if p.rewind {
				// Rebalances wait until AllowRebalance: the partitions
				// are ours while they are set back.
				p.rewindNow(fetches)
			} else {
				fetches.EachPartition(p.track)
			}
			p.notePending()
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.dispatch(ctx)
		p.mu.Unlock()
		p.cl.AllowRebalance()
	}
}

// track adds a partition's polled records to the pending batch and notes
// how far behind the broker the partition is.
func (p *Processor) track(fp kgo.FetchTopicPartition) {
	bytes := p.pending.bytes
	p.noteStart(fp)
	for _, r := range fp.Records {
		p.pending.add(r)
	}
	p.m.Consumed(len(fp.Records), p.pending.bytes-bytes)
	p.lag.Track(fp)
}

// notePending notes the oldest record of the pending batch and of a failed
// one, for the data age. Callers hold p.mu.
func (p *Processor) notePending() {
	oldest := p.pending.oldest
	if p.failed != nil {
		oldest = consume.Earlier(oldest, p.failed.oldest)
	}
	p.pendingOldest.Store(oldest)
}

// oldest is the Kafka timestamp of the oldest record read and not yet
// inserted (Unix nanoseconds), 0 for none.
func (p *Processor) oldest() int64 {
	oldest := consume.Earlier(p.pendingOldest.Load(), p.flightOldest.Load())
	p.unsentMu.Lock()
	defer p.unsentMu.Unlock()
	for _, o := range p.unsent {
		oldest = consume.Earlier(oldest, o)
	}
	return oldest
}

// ready reports whether the pending batch should go now: it is full, the
// oldest record held (pending or in the open stream) has waited
// FlushInterval, or there is nothing more to read and the batch is of a
// fair size or has waited a little (see eagerFraction and
// consume.EagerFraction). Callers hold p.mu.
func (p *Processor) ready(now time.Time) bool {
	b := p.pending
	if b.len() == 0 {
		return false
	}
	age := now.Sub(p.first())
	if b.full(p.cfg) || age >= p.cfg.FlushInterval {
		return true
	}
	return (b.len() >= p.eagerRows || !now.Before(p.eagerDue(p.first()))) && p.lag.CaughtUp(p.cl)
}

// first is the arrival of the oldest record held and not in flight: of the
// open stream, else of the pending batch. Callers hold p.mu.
func (p *Processor) first() time.Time {
	if p.open != nil && !p.open.first.IsZero() {
		return p.open.first
	}
	return p.pending.first
}

// eagerDue is when what came at first and after it goes in once nothing
// more is waiting: at once after a quiet spell, else a little after the
// last INSERT's end began (consume.EagerDue). Callers hold p.mu.
func (p *Processor) eagerDue(first time.Time) time.Time {
	return consume.EagerDue(first, p.lastEnd, p.cfg.FlushInterval)
}

// dispatch starts the insert of the pending batch when it is ready and
// nothing is in flight. A full batch waits for the insert in flight to end:
// the poll loop stops while ClickHouse is slow or down (backpressure), so
// an instance holds at most two batches. Callers hold p.mu.
func (p *Processor) dispatch(ctx context.Context) {
	if p.failed == nil && !p.rewind && p.inflight == nil && p.closeDue(time.Now()) {
		if p.reapFinishes(maxFinishing-1, true); p.rewind || p.open == nil {
			return
		}
		p.launch(&flight{s: p.open, end: true, prev: p.lastFinish()})
		p.open = nil
		return
	}
	for p.failed == nil && !p.rewind && p.ready(time.Now()) {
		if p.inflight == nil {
			streams := p.streams()
			end := streams && p.ends(p.openOrNew(), p.pending, time.Now())
			keep := 0 // a batch of its own commits after every stream
			if streams {
				keep = maxFinishing - 1
			}
			if !streams || end {
				if p.reapFinishes(keep, true); p.rewind {
					return
				}
			}
			b := p.pending
			p.pending, p.spare = p.spare, nil
			if p.pending == nil {
				p.pending = newBatch(p.schema, &p.topic)
			}
			f := &flight{b: b, classic: !streams, end: end}
			if end {
				f.prev = p.lastFinish()
			}
			if streams {
				f.s = p.openOrNew()
				p.open = nil
			}
			p.launch(f)
			return
		}
		if !p.pending.full(p.cfg) {
			return // keep gathering while the insert in flight runs
		}
		if !p.reap(true, ctx.Done()) {
			return // stopping: Run takes over
		}
	}
}

// launch starts f on its own goroutine. Callers hold p.mu.
func (p *Processor) launch(f *flight) {
	f.done = make(chan struct{})
	p.inflight = f
	if f.end || f.classic {
		p.lastEnd = time.Now() // ClickHouse writes a part
	}
	// In flight before out of pending: the age never skips it.
	oldest := int64(0)
	if f.s != nil {
		oldest = f.s.oldest
	}
	if f.b != nil {
		oldest = consume.Earlier(oldest, f.b.oldest)
	}
	p.flightOldest.Store(oldest)
	p.notePending()
	go p.fly(f)
}

// fly inserts and commits a batch, or sends it to a stream, on its own
// goroutine. It takes no lock of p's: the callbacks wait for it while
// holding p.mu.
func (p *Processor) fly(f *flight) {
	in := func() {
		// Its records are in ClickHouse, whatever the commit does. This
		// runs before done: the next flight's age is set only after it.
		p.flightOldest.Store(0)
		p.m.RefreshAge()
	}
	if f.classic {
		f.err = p.flush(p.flushCtx, f.b, in)
	} else {
		f.err = p.streamFlush(p.flushCtx, f)
	}
	close(f.done)
	p.wakeUp()
}

// wakeUp cancels the poll in progress, if any, so that the loop looks at
// what has ended.
func (p *Processor) wakeUp() {
	p.wakeMu.Lock()
	if p.wake != nil {
		p.wake()
	}
	p.wakeMu.Unlock()
}

// openOrNew is the open stream, or a new one. Callers hold p.mu.
func (p *Processor) openOrNew() *stream {
	if p.open != nil {
		return p.open
	}
	return newStream()
}

func (p *Processor) setWake(cancel context.CancelFunc) {
	p.wakeMu.Lock()
	p.wake = cancel
	p.wakeMu.Unlock()
}

// reap collects the insert in flight if it has ended; with wait, it waits
// for it to end unless stop is closed first (a nil stop never is). It
// reports whether nothing is in flight any more. A batch that did not go in
// (the instance is stopping) becomes p.failed. Callers hold p.mu.
func (p *Processor) reap(wait bool, stop <-chan struct{}) bool {
	f := p.inflight
	if f == nil {
		return true
	}
	if wait {
		select {
		case <-f.done:
		case <-stop:
			return false
		}
	} else {
		select {
		case <-f.done:
		default:
			return false
		}
	}
	p.inflight = nil
	switch {
	case f.err != nil && f.classic:
		p.failed = f.b
		p.notePending()
		p.flightOldest.Store(0)
		return true
	case f.err != nil:
		p.log.Warn("insert failed; reading its records again, one batch per insert", "err", f.err)
		// The stream before it may still go in: read again from after it.
		p.reapFinish(true)
		p.failStream(f.s.next, f.b)
		if f.b != nil {
			f.b.reset()
			p.spare = f.b
		}
		return true
	case f.classic:
		p.passed(f.b.next)
	case f.end:
		p.finishing = append(p.finishing, f.fin)
	default:
		p.open = f.s
	}
	if f.b != nil {
		f.b.reset()
		p.spare = f.b
	}
	return true
}

// drain waits for the insert in flight, then inserts and commits what is
// held, in order: a batch given up earlier, then the pending one. Callers
// hold p.mu.
func (p *Processor) drain() error {
	p.reap(true, nil)
	p.reapFinish(true)
	if p.rewind {
		return errRewind
	}
	p.lastEnd = time.Now()
	if p.open != nil {
		// The open stream ends with the pending batch: nothing is held
		// by a failed batch (none is made while a stream is open).
		f := &flight{s: p.open, b: p.pending, end: true}
		p.open = nil
		err := p.streamFlush(p.flushCtx, f)
		if err == nil {
			<-f.fin.done
			err = f.fin.err
		}
		if err != nil {
			p.sent(f.s)
			p.failStream(f.s.next, p.pending)
			return err
		}
		p.passed(f.s.next)
		p.pending.reset()
		p.notePending()
		return nil
	}
	for _, b := range []*batch{p.failed, p.pending} {
		if b == nil || b.len() == 0 {
			continue
		}
		if err := p.flush(p.flushCtx, b, nil); err != nil {
			return err
		}
		p.passed(b.next)
		b.reset()
		if b == p.failed {
			p.failed, p.spare = nil, b
		}
		p.notePending()
		p.m.RefreshAge()
	}
	return nil
}

// revoked runs before partitions move to another instance: what we hold of
// them goes into ClickHouse and is committed first, so the next owner starts
// where we stopped.
func (p *Processor) revoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	parts := revoked[p.kafka.Topic]
	defer p.forget(parts)
	if p.inflight == nil && p.failed == nil && p.pending.len() == 0 && p.open == nil && len(p.finishing) == 0 {
		return
	}
	p.log.Info("partitions revoked; flushing first", "partitions", parts)
	if err := p.drain(); err != nil {
		p.log.Warn("flush on revoke did not finish; the next owner reads those records again", "err", err)
		p.drop(parts)
	}
}

// lost runs when partitions were taken from us without a revoke (session
// expired): we may no longer commit them, so we drop what we hold; the new
// owner reads it again. The insert in flight is let finish first: its rows
// are harmless, and its commit is refused if the session is gone.
func (p *Processor) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	parts := lost[p.kafka.Topic]
	p.log.Warn("partitions lost; dropping their pending records", "partitions", parts)
	p.reap(true, nil)
	p.reapFinish(true)
	p.drop(parts)
	if p.open != nil {
		// Their rows in the open stream go in, harmlessly (the new owner
		// writes them again with the same versions); their offsets are
		// not ours to commit.
		for _, part := range parts {
			delete(p.open.next, part)
		}
	}
	p.forget(parts)
}

// drop forgets the held records of partitions. Callers hold p.mu.
func (p *Processor) drop(partitions []int32) {
	if p.failed != nil {
		p.failed.drop(partitions)
	}
	p.pending.drop(partitions)
	p.notePending()
}

// forget forgets the lag and positions of partitions no longer ours.
// Callers hold p.mu.
func (p *Processor) forget(partitions []int32) {
	p.lag.Forget(partitions)
	for _, part := range partitions {
		delete(p.readFrom, part)
		delete(p.careful, part)
	}
}

// Stats returns a copy of the counters.
func (p *Processor) Stats() Stats {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	return Stats{Inserted: p.stats.Inserted, Errors: p.stats.Errors, Batches: p.stats.Batches}
}

// flush inserts b and commits its offsets. It retries ClickHouse until it
// works or ctx ends; on failure nothing is committed. It leaves b as it is.
// in, when set, runs once b is in, before the commit.
func (p *Processor) flush(ctx context.Context, b *batch, in func()) error {
	if b.len() == 0 {
		return nil
	}
	start := time.Now()
	var inserted, quarantined int
	err := retry.Forever(ctx, p.backoff, p.log, "insert batch", func(error) bool { return true }, func(ctx context.Context) error {
		var err error
		inserted, quarantined, err = p.insert(ctx, b)
		return err
	})
	if err != nil {
		return err
	}
	// Counted once in, before the commit that lets a waiting push end.
	p.m.inserted.Add(float64(inserted))
	if in != nil {
		in()
	}
	p.committed(ctx, b.next, inserted, quarantined)
	p.log.Debug("batch flushed", "rows", inserted, "errors", quarantined, "bytes", b.bytes,
		"partitions", len(b.next), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// committed commits next once rows (and bad records set aside) are in, and
// counts them. It takes no lock of p's.
func (p *Processor) committed(ctx context.Context, next map[int32]kgo.EpochOffset, rows, bad int) {
	if p.noCommit.Load() {
		p.log.Info("rows inserted; their offsets are not committed: the topic was recreated", "rows", rows)
	} else if err := p.commit(ctx, next); err != nil {
		// The rows are in; a replay after a failed commit is harmless.
		p.log.Warn("commit after insert failed; records will be read again", "err", err)
	}
	p.stats.mu.Lock()
	p.stats.Inserted += int64(rows)
	p.stats.Errors += int64(bad)
	p.stats.Batches++
	p.stats.mu.Unlock()
}

func (p *Processor) commit(ctx context.Context, next map[int32]kgo.EpochOffset) error {
	return consume.Commit(ctx, p.cl, p.kafka.Topic, next)
}
