package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/kafka"
	"skuflow/internal/retry"
	"skuflow/schemas"
)

// Processor is one instance of the topic -> ClickHouse service.
type Processor struct {
	cfg     config.Processor
	kafka   config.Kafka
	db      string
	schema  *schemas.Schema
	conn    clickhouse.Conn
	log     *slog.Logger
	backoff retry.Backoff
	cl      *kgo.Client

	// columns names the INSERT's columns: the schema's, extra, provenance.
	columns   []string
	insertSQL string
	// rows is the INSERT being built, kept for its memory.
	rows *rows

	// mu guards pending. The poll loop and the rebalance callbacks take
	// turns (BlockRebalanceOnPoll), so it is never contended; it is there
	// so that the race detector can prove it.
	mu      sync.Mutex
	pending batch
	// stop is Run's context: retries end when it does.
	stop context.Context

	stats Stats
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
	if o.Backoff == (retry.Backoff{}) {
		o.Backoff = retry.Default
	}
	cols := make([]string, 0, len(o.Schema.Columns)+1+len(schemas.Provenance))
	for _, c := range o.Schema.Columns {
		cols = append(cols, c.Name)
	}
	cols = append(cols, o.Schema.Extra)
	for _, pc := range schemas.Provenance {
		cols = append(cols, pc.Name)
	}
	db := o.Config.ClickHouse.Database
	return &Processor{
		columns:   cols,
		insertSQL: fmt.Sprintf("INSERT INTO %s.%s (%s)", db, o.Schema.Name, strings.Join(cols, ", ")),
		rows:      newRows(o.Schema),
		cfg:       o.Config.Processor,
		kafka:     o.Config.Kafka,
		db:        o.Config.ClickHouse.Database,
		schema:    o.Schema,
		conn:      o.Conn,
		log:       o.Log,
		backoff:   o.Backoff,
		pending:   newBatch(),
	}
}

// Run migrates the database, joins the group and loads records until ctx is
// cancelled; then it flushes what it holds, commits, leaves the group and
// returns nil. It returns an error only when it cannot start: the topic's
// partition count differs from the one recorded (invariant 2), or the
// database cannot be migrated.
func (p *Processor) Run(ctx context.Context, extra ...kgo.Opt) error {
	p.stop = ctx
	if err := p.prepare(ctx); err != nil {
		return err
	}
	opts := append(kafka.ClientOptions(p.kafka, p.log),
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(p.kafka.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.OnPartitionsRevoked(p.revoked),
		kgo.OnPartitionsLost(p.lost),
		// Bound what is fetched ahead while a batch is being inserted.
		kgo.FetchMaxBytes(int32(min(p.cfg.BatchBytes, 64<<20))),
		kgo.FetchMaxPartitionBytes(8<<20),
	)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	p.cl = cl
	p.log.Info("started", "group", p.cfg.Group, "topic", p.kafka.Topic, "batch_rows", p.cfg.BatchRows,
		"batch_bytes", int64(p.cfg.BatchBytes), "flush_interval", p.cfg.FlushInterval)

	p.loop(ctx)

	// Shutting down: flush what is held, with its own deadline, then leave
	// the group (the final revoke finds nothing left to flush).
	done, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
	defer cancel()
	p.stop = done
	p.mu.Lock()
	err = p.flush(done)
	p.mu.Unlock()
	if err != nil {
		p.log.Warn("final flush did not finish; its records will be read again on restart", "err", err)
	}
	cl.CloseAllowingRebalance()
	p.log.Info("stopped", "inserted", p.Stats().Inserted, "errors", p.Stats().Errors)
	return nil
}

// prepare migrates the database and checks the topic's shape, retrying
// while ClickHouse or Kafka cannot be reached.
func (p *Processor) prepare(ctx context.Context) error {
	err := retry.Forever(ctx, p.backoff, p.log, "migrate ClickHouse", clickhouse.Retriable, func(ctx context.Context) error {
		return clickhouse.Migrate(ctx, p.conn, p.db, p.schema)
	})
	if err != nil {
		return err
	}
	admin, err := kgo.NewClient(kafka.ClientOptions(p.kafka, p.log)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admin.Close()
	err = retry.Forever(ctx, p.backoff, p.log, "check topic", func(err error) bool {
		return !errors.Is(err, kafka.ErrPartitionCount)
	}, func(ctx context.Context) error {
		return kafka.EnsureTopic(ctx, admin, p.kafka)
	})
	if err != nil {
		return err
	}
	return retry.Forever(ctx, p.backoff, p.log, "check recorded partitions", func(err error) bool {
		return !errors.Is(err, clickhouse.ErrPartitionsChanged)
	}, func(ctx context.Context) error {
		return clickhouse.CheckPartitions(ctx, p.conn, p.db, p.kafka.Topic, p.kafka.Partitions)
	})
}

// maxPoll bounds the records one poll hands over, so that a batch
// overshoots its row limit by little.
const maxPoll = 10000

func (p *Processor) loop(ctx context.Context) {
	for {
		wait := p.cfg.FlushInterval
		p.mu.Lock()
		if !p.pending.first.IsZero() {
			wait = max(time.Until(p.pending.first.Add(p.cfg.FlushInterval)), 0)
		}
		p.mu.Unlock()

		pollCtx, cancel := context.WithTimeout(ctx, wait)
		fetches := p.cl.PollRecords(pollCtx, maxPoll)
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
		fetches.EachRecord(p.pending.add)
		if p.pending.due(p.cfg, time.Now()) {
			// A failure here means ctx ended mid-retry: Run's final flush
			// tries again with its own deadline.
			_ = p.flush(ctx)
		}
		p.mu.Unlock()
		p.cl.AllowRebalance()
	}
}

// revoked runs before partitions move to another instance: what we hold of
// them goes into ClickHouse and is committed first, so the next owner starts
// where we stopped.
func (p *Processor) revoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending.len() == 0 {
		return
	}
	p.log.Info("partitions revoked; flushing first", "partitions", revoked[p.kafka.Topic])
	if err := p.flush(p.stop); err != nil {
		p.log.Warn("flush on revoke did not finish; the next owner reads those records again", "err", err)
		p.pending.drop(revoked[p.kafka.Topic])
	}
}

// lost runs when partitions were taken from us without a revoke (session
// expired): we may no longer commit them, so we drop what we hold; the new
// owner reads it again.
func (p *Processor) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Warn("partitions lost; dropping their pending records", "partitions", lost[p.kafka.Topic])
	p.pending.drop(lost[p.kafka.Topic])
}

// Stats returns a copy of the counters.
func (p *Processor) Stats() Stats {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	return Stats{Inserted: p.stats.Inserted, Errors: p.stats.Errors, Batches: p.stats.Batches}
}

// flush inserts the pending batch and commits its offsets. It retries
// ClickHouse until it works or ctx ends; on failure nothing is committed
// and the batch stays pending. Callers hold p.mu.
func (p *Processor) flush(ctx context.Context) error {
	if p.pending.len() == 0 {
		return nil
	}
	start := time.Now()
	recs := p.pending.recs
	var inserted, quarantined int
	err := retry.Forever(ctx, p.backoff, p.log, "insert batch", func(error) bool { return true }, func(ctx context.Context) error {
		var err error
		inserted, quarantined, err = p.insert(ctx, recs)
		return err
	})
	if err != nil {
		return err
	}
	if err := p.commit(ctx, p.pending.next); err != nil {
		// The rows are in; a replay after a failed commit is harmless.
		p.log.Warn("commit after insert failed; records will be read again", "err", err)
	}
	p.stats.mu.Lock()
	p.stats.Inserted += int64(inserted)
	p.stats.Errors += int64(quarantined)
	p.stats.Batches++
	p.stats.mu.Unlock()
	p.log.Debug("batch flushed", "rows", inserted, "errors", quarantined, "bytes", p.pending.bytes,
		"partitions", len(p.pending.next), "took", time.Since(start).Round(time.Millisecond))
	p.pending.reset()
	return nil
}

func (p *Processor) commit(ctx context.Context, next map[int32]kgo.EpochOffset) error {
	var cerr error
	p.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{p.kafka.Topic: next},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, part := range t.Partitions {
					if part.ErrorCode != 0 && cerr == nil {
						cerr = fmt.Errorf("commit partition %d: error code %d", part.Partition, part.ErrorCode)
					}
				}
			}
		})
	return cerr
}
