package aggregator

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/consume"
	"skuflow/internal/jsonscan"
	"skuflow/internal/kafka"
	"skuflow/internal/retry"
	"skuflow/schemas"
)

// Aggregator is one instance of the name-count service: the Sink of a
// consume.Run member.
type Aggregator struct {
	cfg    config.Config
	schema *schemas.Schema
	conn   clickhouse.Conn
	log    *slog.Logger

	names *names
	parts map[int32]*partition
	// pending holds counts taken from the partitions but not yet written;
	// they stay until a write succeeds.
	pending []Count
	held    int       // records applied since the last flush
	first   time.Time // when the oldest unflushed change came

	scan   jsonscan.Scanner
	fields []schemas.Field
	key    []byte
	text   []byte

	stats Stats
}

// Stats count what an instance has done since it started.
type Stats struct {
	Applied  int64 // records applied to the state, replays included
	Replayed int64 // records replayed to rebuild state
	Skipped  int64 // records that are not valid products (the processor sets them aside too)
	Written  int64 // count rows written
}

// New returns an aggregator for the schema's AggregateBy column.
func New(cfg config.Config, s *schemas.Schema, conn clickhouse.Conn, log *slog.Logger) *Aggregator {
	return &Aggregator{
		cfg: cfg, schema: s, conn: conn, log: log,
		names: newNames(), parts: map[int32]*partition{},
	}
}

// Run migrates the database, checks the topic, and keeps the counts until
// ctx is cancelled; then it writes what it holds, commits and leaves the
// group.
func (a *Aggregator) Run(ctx context.Context, extra ...kgo.Opt) error {
	backoff := retry.Default
	if err := clickhouse.Prepare(ctx, a.conn, a.cfg, a.schema, a.log, backoff); err != nil {
		return err
	}
	if err := kafka.Prepare(ctx, a.cfg.Kafka, a.log, backoff); err != nil {
		return err
	}
	ac := a.cfg.Aggregator
	a.log.Info("started", "group", ac.Group, "topic", a.cfg.Kafka.Topic, "by", a.schema.AggregateBy)
	err := consume.Run(ctx, consume.Options{
		Kafka:           a.cfg.Kafka,
		Group:           ac.Group,
		SessionTimeout:  ac.SessionTimeout,
		ShutdownTimeout: ac.ShutdownTimeout,
		FetchMaxBytes:   8 << 20,
		Log:             a.log,
		Backoff:         backoff,
	}, a, extra...)
	a.log.Info("stopped", "applied", a.stats.Applied, "replayed", a.stats.Replayed, "written", a.stats.Written, "skipped", a.stats.Skipped)
	return err
}

// Assigned starts every newly assigned partition from its beginning, to
// rebuild its state, and remembers where the group had committed: records
// before that only rebuild.
func (a *Aggregator) Assigned(committed map[int32]kgo.Offset) map[int32]kgo.Offset {
	out := make(map[int32]kgo.Offset, len(committed))
	for p, o := range committed {
		until := max(o.EpochOffset().Offset, 0) // no commit yet: nothing to replay
		a.parts[p] = newPartition(a.names, until)
		out[p] = kgo.NewOffset().AtStart()
		a.log.Info("partition assigned; its state is rebuilt from the topic", "partition", p, "replay_until", until)
	}
	return out
}

// Add applies one record to its partition's state.
func (a *Aggregator) Add(r *kgo.Record) {
	p := a.parts[r.Partition]
	if p == nil { // assigned without Assigned (no committed offsets fetched)
		p = newPartition(a.names, 0)
		a.parts[r.Partition] = p
	}
	wasReplaying := p.replaying()
	sku, name, ok := a.decode(r)
	if !ok {
		a.stats.Skipped++
		p.last = max(p.last, r.Offset)
	} else {
		p.apply(sku, name, r.Offset)
		a.stats.Applied++
	}
	if wasReplaying {
		a.stats.Replayed++
		if !p.replaying() {
			a.log.Info("partition state rebuilt", "partition", r.Partition, "skus", p.skus.len(), "names", len(p.counts))
		}
	}
	if !p.replaying() {
		p.next, p.committable = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}, true
		if a.first.IsZero() {
			a.first = time.Now()
		}
	}
	a.held++
}

// decode returns the record's key and aggregate value (sku and name), as
// the processor reads them from the value, or false for a record that is
// not a valid product: the processor sets those aside, so they must not
// count.
// The slices returned are valid until the next call.
func (a *Aggregator) decode(r *kgo.Record) (key, value []byte, ok bool) {
	var err error
	_, a.fields, err = a.scan.Object(r.Value, a.fields[:0])
	if err != nil {
		return nil, nil, false
	}
	if a.key, err = a.schema.Validate(a.key[:0], a.fields); err != nil {
		return nil, nil, false
	}
	a.text, _, err = schemas.Text(a.text[:0], a.fields, a.schema.AggregateBy)
	if err != nil {
		return nil, nil, false
	}
	return a.key, a.text, true
}

// Due reports whether the changes should be written now: enough are held,
// the oldest has waited FlushInterval, or (once the member has read all
// there is) a tenth of that: the end of a push is counted without delay.
func (a *Aggregator) Due(now time.Time, caughtUp bool) bool {
	c := a.cfg.Aggregator
	return a.held >= c.BatchRecords || !a.first.IsZero() && now.Sub(a.first) >= a.wait(caughtUp)
}

// NextDue is when the held changes must be written at the latest.
func (a *Aggregator) NextDue(caughtUp bool) time.Time {
	if a.first.IsZero() {
		return time.Time{}
	}
	return a.first.Add(a.wait(caughtUp))
}

func (a *Aggregator) wait(caughtUp bool) time.Duration {
	if caughtUp {
		return a.cfg.Aggregator.FlushInterval / consume.EagerFraction
	}
	return a.cfg.Aggregator.FlushInterval
}

// Flush writes the changed counts and returns the offsets they are true at.
func (a *Aggregator) Flush(ctx context.Context) (map[int32]kgo.EpochOffset, error) {
	for p, st := range a.parts {
		a.pending = st.changes(p, a.pending)
	}
	if len(a.pending) > 0 {
		if err := a.write(ctx, a.pending); err != nil {
			return nil, err
		}
		a.stats.Written += int64(len(a.pending))
	}
	next := map[int32]kgo.EpochOffset{}
	for p, st := range a.parts {
		if st.committable {
			next[p], st.committable = st.next, false
		}
	}
	a.pending, a.held, a.first = a.pending[:0], 0, time.Time{}
	return next, nil
}

// Drop forgets partitions this instance no longer owns.
func (a *Aggregator) Drop(partitions []int32) {
	for _, p := range partitions {
		delete(a.parts, p)
	}
	kept := a.pending[:0]
	for _, c := range a.pending {
		if _, ok := a.parts[c.Partition]; ok {
			kept = append(kept, c)
		}
	}
	a.pending = kept
}

func (a *Aggregator) write(ctx context.Context, counts []Count) error {
	db := a.cfg.ClickHouse.Database
	b, err := a.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (partition, name, count, version, updated_at)", db, clickhouse.CountsTable))
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", clickhouse.CountsTable, err)
	}
	n := len(counts)
	parts, names, cnts, versions, at := make([]uint32, n), make([]string, n), make([]int64, n), make([]uint64, n), make([]time.Time, n)
	now := time.Now()
	for i, c := range counts {
		parts[i], names[i], cnts[i], versions[i], at[i] = uint32(c.Partition), c.Name, c.Count, uint64(c.Version), now
	}
	for i, col := range []any{parts, names, cnts, versions, at} {
		if err := b.Column(i).Append(col); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append to %s: %w", clickhouse.CountsTable, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d counts into %s.%s: %w", n, db, clickhouse.CountsTable, err)
	}
	return nil
}
