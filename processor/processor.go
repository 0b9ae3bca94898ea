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

// flight is a batch being inserted and committed by its own goroutine.
type flight struct {
	b    *batch
	done chan struct{} // closed when it is over; err is set then
	err  error
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
func (p *Processor) Run(ctx context.Context, extra ...kgo.Opt) error {
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

// maxPoll bounds the records one poll hands over, so that a batch
// overshoots its row limit by little.
const maxPoll = 10000

// loop polls records into the pending batch and hands batches to be
// inserted, until ctx ends.
func (p *Processor) loop(ctx context.Context) {
	for {
		p.mu.Lock()
		p.reap(false, nil)
		wait, inflight := p.cfg.FlushInterval, p.inflight
		switch {
		case inflight != nil:
			// Until it ends and wakes the poll.
		case p.ready(time.Now()):
			wait = 0
		case p.pending.len() > 0:
			wait = time.Until(p.pending.first.Add(p.cfg.FlushInterval))
			if p.lag.CaughtUp(p.cl) {
				wait = time.Until(p.pending.first.Add(p.eagerAge()))
			}
		}
		p.mu.Unlock()

		if wait > 0 {
			pollCtx, cancel := context.WithTimeout(ctx, wait)
			p.setWake(cancel)
			if inflight != nil {
				select {
				case <-inflight.done: // it ended before the wake was set
					cancel()
				default:
				}
			}
			fetches := p.cl.PollRecords(pollCtx, maxPoll)
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
			fetches.EachPartition(p.track)
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
	return consume.Earlier(p.pendingOldest.Load(), p.flightOldest.Load())
}

// ready reports whether the pending batch should go in now: it is full, its
// oldest record has waited FlushInterval, or there is nothing more to read
// and it is of a fair size or has waited a little (see eagerFraction and
// consume.EagerFraction). Callers hold p.mu.
func (p *Processor) ready(now time.Time) bool {
	b := p.pending
	if b.len() == 0 {
		return false
	}
	if b.full(p.cfg) || now.Sub(b.first) >= p.cfg.FlushInterval {
		return true
	}
	return (b.len() >= p.eagerRows || now.Sub(b.first) >= p.eagerAge()) && p.lag.CaughtUp(p.cl)
}

// eagerAge is how old a batch may get once nothing more is waiting.
func (p *Processor) eagerAge() time.Duration {
	return p.cfg.FlushInterval / consume.EagerFraction
}

// dispatch starts the insert of the pending batch when it is ready and
// nothing is in flight. A full batch waits for the insert in flight to end:
// the poll loop stops while ClickHouse is slow or down (backpressure), so
// an instance holds at most two batches. Callers hold p.mu.
func (p *Processor) dispatch(ctx context.Context) {
	for p.failed == nil && p.ready(time.Now()) {
		if p.inflight == nil {
			b := p.pending
			p.pending, p.spare = p.spare, nil
			if p.pending == nil {
				p.pending = newBatch(p.schema, &p.topic)
			}
			f := &flight{b: b, done: make(chan struct{})}
			p.inflight = f
			// In flight before out of pending: the age never skips it.
			p.flightOldest.Store(b.oldest)
			p.notePending()
			go p.fly(f)
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

// fly inserts and commits a batch, on its own goroutine. It takes no lock
// of p's: the callbacks wait for it while holding p.mu.
func (p *Processor) fly(f *flight) {
	f.err = p.flush(p.flushCtx, f.b, func() {
		// Its records are in ClickHouse, whatever the commit does. This
		// runs before done: the next flight's age is set only after it.
		p.flightOldest.Store(0)
		p.m.RefreshAge()
	})
	close(f.done)
	p.wakeMu.Lock()
	if p.wake != nil {
		p.wake()
	}
	p.wakeMu.Unlock()
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
	if f.err != nil {
		p.failed = f.b
		p.notePending()
		p.flightOldest.Store(0)
		return true
	}
	f.b.reset()
	p.spare = f.b
	return true
}

// drain waits for the insert in flight, then inserts and commits what is
// held, in order: a batch given up earlier, then the pending one. Callers
// hold p.mu.
func (p *Processor) drain() error {
	p.reap(true, nil)
	for _, b := range []*batch{p.failed, p.pending} {
		if b == nil || b.len() == 0 {
			continue
		}
		if err := p.flush(p.flushCtx, b, nil); err != nil {
			return err
		}
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
	if p.inflight == nil && p.failed == nil && p.pending.len() == 0 {
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
	p.drop(parts)
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

// forget forgets the lag of partitions no longer ours. Callers hold p.mu.
func (p *Processor) forget(partitions []int32) { p.lag.Forget(partitions) }

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
	if p.noCommit.Load() {
		p.log.Info("batch inserted; its offsets are not committed: the topic was recreated", "rows", inserted)
	} else if err := p.commit(ctx, b.next); err != nil {
		// The rows are in; a replay after a failed commit is harmless.
		p.log.Warn("commit after insert failed; records will be read again", "err", err)
	}
	p.stats.mu.Lock()
	p.stats.Inserted += int64(inserted)
	p.stats.Errors += int64(quarantined)
	p.stats.Batches++
	p.stats.mu.Unlock()
	p.log.Debug("batch flushed", "rows", inserted, "errors", quarantined, "bytes", b.bytes,
		"partitions", len(b.next), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (p *Processor) commit(ctx context.Context, next map[int32]kgo.EpochOffset) error {
	return consume.Commit(ctx, p.cl, p.kafka.Topic, next)
}
