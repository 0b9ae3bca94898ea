// Package consume runs one member of a consumer group that writes what it
// reads somewhere durable (ClickHouse) and commits offsets only for what is
// written. The aggregator runs on it as a Sink. The processor has a loop of
// its own that overlaps one insert with polling the next batch (see
// processor/doc.go), and shares Commit, retry and start-up with it.
//
// The loop polls, hands records to the sink, and when the sink says a flush
// is due, flushes it, retrying with backoff for as long as the member runs,
// and then commits the offsets the sink reports as written. While a flush
// is retried nothing is polled, so fetching pauses (backpressure). With
// franz-go's BlockRebalanceOnPoll, polls and rebalance callbacks take turns:
// a revoke first flushes and commits what the sink holds, so a member never
// commits a partition it no longer owns; a loss drops it unflushed. On
// shutdown the sink is flushed once more, offsets committed, and the group
// left.
//
// A Meter holds the metrics both services share: what is read, the lag
// per partition, the data age, retries and backing off.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/internal/retry"
)

// Sink is what a member does with its records.
type Sink interface {
	// Add takes one polled record. Records of a partition come in offset
	// order.
	Add(r *kgo.Record)
	// Due reports whether the sink wants a flush now; NextDue when it will
	// at the latest (zero when it holds nothing). caughtUp says whether
	// the member has polled everything the broker holds (see Lag).
	Due(now time.Time, caughtUp bool) bool
	NextDue(caughtUp bool) time.Time
	// Flush makes what the sink holds durable and returns, per partition,
	// the offset to commit: the next record to read. It is retried on
	// error, so it must be safe to call again with the same contents.
	Flush(ctx context.Context) (map[int32]kgo.EpochOffset, error)
	// Drop forgets what the sink holds of partitions the member no longer
	// owns (after a flush for a revoke, without one for a loss).
	Drop(partitions []int32)
}

// Assigner is a Sink that wants to see the offsets its newly assigned
// partitions start from, and may change them (the aggregator loads its
// state and starts where the state ends). Assigned runs on franz-go's
// goroutine, at the same time as the poll loop's calls of the sink's other
// methods: it must hand what it prepares to them safely (the aggregator
// queues it for the loop to install). Records of a partition are fetched
// only after Assigned returned for it.
type Assigner interface {
	Assigned(ctx context.Context, committed map[int32]kgo.Offset) (map[int32]kgo.Offset, error)
}

// Options configure a member.
type Options struct {
	Kafka           config.Kafka
	Group           string
	SessionTimeout  time.Duration
	ShutdownTimeout time.Duration
	// FetchMaxBytes bounds what is fetched ahead of the sink.
	FetchMaxBytes int32
	Log           *slog.Logger
	// Backoff is the flush's: its hook hears of the flush's retries.
	Backoff retry.Backoff
	// Meter, when set, counts what is polled and each partition's lag.
	Meter *Meter
	// Topic is the topic as the member starts on it; while it runs, a
	// changed ID or partition count ends Run with the reason (checked
	// every Kafka.TopicCheckInterval).
	Topic kafka.TopicState
}

// member is one running consumer.
type member struct {
	o    Options
	sink Sink
	cl   *kgo.Client
	// mu makes the loop's look at the sink and lag before a poll, when a
	// rebalance may run, take turns with the rebalance callbacks.
	mu  sync.Mutex
	lag Lag
	// stop is the context retries end with: Run's, then the shutdown's.
	stop context.Context
	// noCommit is set once the topic is known to be recreated: what is
	// held is still written, but its offsets, positions in the old topic,
	// are never committed (by name, they would land on the new one).
	noCommit atomic.Bool
}

// maxPoll bounds the records one poll hands over, so that a sink overshoots
// its limits by little.
const maxPoll = 10000

// Run joins the group and feeds the sink until ctx is cancelled, then
// flushes, commits, leaves the group and returns nil. It returns an error
// when the client cannot be created, and, after the same flush, when the
// topic changed under it (kafka.ErrTopicRecreated, kafka.ErrPartitionCount).
func Run(ctx context.Context, o Options, sink Sink, extra ...kgo.Opt) error {
	o.Backoff = o.Backoff.OrDefault()
	m := &member{o: o, sink: sink, stop: ctx, lag: Lag{Meter: o.Meter}}
	opts := append([]kgo.Opt{},
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Kafka.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(o.SessionTimeout),
		// Three heartbeats per session: franz-go's default of 3 s equals a
		// short session, and a loaded member would be evicted over and over.
		kgo.HeartbeatInterval(o.SessionTimeout/3),
		kgo.OnPartitionsRevoked(m.revoked),
		kgo.OnPartitionsLost(m.lost),
	)
	if o.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(o.FetchMaxBytes), kgo.FetchMaxPartitionBytes(min(o.FetchMaxBytes, 8<<20)))
	}
	if a, ok := sink.(Assigner); ok {
		opts = append(opts, kgo.AdjustFetchOffsetsFn(func(ctx context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			t, ok := offs[o.Kafka.Topic]
			if !ok {
				return offs, nil
			}
			adjusted, err := a.Assigned(ctx, t)
			if err != nil {
				return nil, err
			}
			offs[o.Kafka.Topic] = adjusted
			return offs, nil
		}))
	}
	cl, err := kafka.NewClient(o.Kafka, o.Log, append(opts, extra...)...)
	if err != nil {
		return err
	}
	m.cl = cl
	loopCtx, changed := WatchTopic(ctx, cl, o.Kafka, o.Topic, o.Log, func(err error) {
		if errors.Is(err, kafka.ErrTopicRecreated) {
			m.noCommit.Store(true)
		}
	})
	stopLag := m.lag.WatchLag(ctx, cl, o.Kafka.Topic)
	m.loop(loopCtx)
	stopLag()

	done, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	// The rebalance callbacks may still run: take turns with them.
	m.mu.Lock()
	m.stop = done
	err = m.flush(done)
	m.mu.Unlock()
	if err != nil {
		o.Log.Warn("final flush did not finish; its records will be read again on restart", "err", err)
	}
	cl.CloseAllowingRebalance()
	return changed()
}

// WatchTopic returns a context that ends with ctx, or as soon as the topic
// is not the one described by was (kafka.Watch); changed returns why it
// ended then, or nil. onChange, when set, hears the reason first, before
// the context ends. An empty was watches nothing.
func WatchTopic(ctx context.Context, cl *kgo.Client, c config.Kafka, was kafka.TopicState, log *slog.Logger, onChange func(error)) (context.Context, func() error) {
	if was.ID == "" || c.TopicCheckInterval <= 0 {
		return ctx, func() error { return nil }
	}
	wctx, cancel := context.WithCancelCause(ctx)
	go func() {
		if err := kafka.Watch(wctx, cl, c.Topic, was, c.TopicCheckInterval, log); err != nil {
			log.Error("the topic changed; stopping", "err", err)
			if onChange != nil {
				onChange(err)
			}
			cancel(err)
		}
	}()
	return wctx, func() error {
		cause := context.Cause(wctx)
		cancel(nil)
		if errors.Is(cause, kafka.ErrTopicRecreated) || errors.Is(cause, kafka.ErrPartitionCount) {
			return cause
		}
		return nil
	}
}

func (m *member) loop(ctx context.Context) {
	for {
		wait := time.Second
		m.mu.Lock()
		if due := m.sink.NextDue(m.lag.CaughtUp(m.cl)); !due.IsZero() {
			wait = max(time.Until(due), 0)
		}
		m.mu.Unlock()
		pollCtx, cancel := context.WithTimeout(ctx, wait)
		fetches := m.cl.PollRecords(pollCtx, maxPoll)
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			m.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				m.o.Log.Warn("fetch", "topic", topic, "partition", partition, "err", err)
			}
		})
		// The revoke and loss callbacks cannot run until AllowRebalance
		// (BlockRebalanceOnPoll). mu must not be held across the flush:
		// its commit may wait for a rebalance whose callback takes mu.
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			bytes := 0
			for _, r := range fp.Records {
				m.sink.Add(r)
				bytes += len(r.Key) + len(r.Value)
			}
			m.o.Meter.Consumed(len(fp.Records), bytes)
			m.lag.Track(fp)
		})
		if m.sink.Due(time.Now(), m.lag.CaughtUp(m.cl)) {
			// A failure here means ctx ended mid-retry: Run's final flush
			// tries again with its own deadline.
			_ = m.flush(ctx)
		}
		m.cl.AllowRebalance()
	}
}

// flush flushes the sink, retrying until it works or ctx ends, and commits
// what it wrote. Nothing is committed for a flush that failed.
func (m *member) flush(ctx context.Context) error {
	var next map[int32]kgo.EpochOffset
	err := retry.Forever(ctx, m.o.Backoff, m.o.Log, "flush", func(error) bool { return true }, func(ctx context.Context) error {
		var err error
		next, err = m.sink.Flush(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if len(next) == 0 || m.noCommit.Load() {
		return nil
	}
	if err := m.commit(ctx, next); err != nil {
		// What was flushed is durable; a replay after a failed commit
		// writes it again, which the sinks make harmless.
		m.o.Log.Warn("commit after flush failed; records will be read again", "err", err)
	}
	return nil
}

func (m *member) commit(ctx context.Context, next map[int32]kgo.EpochOffset) error {
	return Commit(ctx, m.cl, m.o.Kafka.Topic, next)
}

// Commit commits next (partition -> offset of the next record to read) for
// topic, synchronously: a rebalance cannot cancel it, ctx can. It returns
// the request's error or the first partition's.
func Commit(ctx context.Context, cl *kgo.Client, topic string, next map[int32]kgo.EpochOffset) error {
	var cerr error
	cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: next},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 && cerr == nil {
						cerr = fmt.Errorf("commit partition %d: %w", p.Partition, kerr.ErrorForCode(p.ErrorCode))
					}
				}
			}
		})
	return cerr
}

// revoked runs before partitions move to another member: what the sink
// holds goes in and is committed first, so the next owner starts where this
// one stopped.
func (m *member) revoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	parts := revoked[m.o.Kafka.Topic]
	m.mu.Lock()
	defer m.mu.Unlock()
	m.o.Log.Info("partitions revoked; flushing first", "partitions", parts)
	if err := m.flush(m.stop); err != nil {
		m.o.Log.Warn("flush on revoke did not finish; the next owner reads those records again", "err", err)
	}
	m.sink.Drop(parts)
	m.lag.Forget(parts)
}

// lost runs when partitions were taken without a revoke (the session
// expired): they may no longer be committed, so what the sink holds of them
// is dropped and their next owner reads it again.
func (m *member) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	parts := lost[m.o.Kafka.Topic]
	m.mu.Lock()
	defer m.mu.Unlock()
	m.o.Log.Warn("partitions lost; dropping what is held of them", "partitions", parts)
	m.sink.Drop(parts)
	m.lag.Forget(parts)
}
