package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

	// inc is the incarnation of the topic the member reads (see
	// internal/clickhouse.Incarnation): record versions are built on it.
	inc uint32
	// load reads a partition's state from ClickHouse; tests may replace it.
	load func(ctx context.Context, parts []int32) (map[int32]*loaded, error)
	// mu guards queued: states Assigned has read, on franz-go's goroutine,
	// for the poll loop to install; nQueued says, without the lock,
	// whether there are any.
	mu      sync.Mutex
	queued  map[int32]*loaded
	nQueued atomic.Int32

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
	// partitions is the configured partition count, by which a record's
	// key must give its partition.
	partitions int

	stats Stats
}

// Stats count what an instance has done since it started.
type Stats struct {
	Applied int64 // records applied to the state
	Loaded  int64 // skus loaded from ClickHouse on assignment
	Skipped int64 // records that are not valid products, or not where their key belongs (the processor sets them aside too)
	Written int64 // count rows written
}

// New returns an aggregator for the schema's AggregateBy column.
func New(cfg config.Config, s *schemas.Schema, conn clickhouse.Conn, log *slog.Logger) *Aggregator {
	a := &Aggregator{
		cfg: cfg, schema: s, conn: conn, log: log,
		names: newNames(), parts: map[int32]*partition{}, queued: map[int32]*loaded{},
		partitions: cfg.Kafka.Partitions,
	}
	a.load = a.loadFromClickHouse
	return a
}

// Run migrates the database, checks the topic, and keeps the counts until
// ctx is cancelled; then it writes what it holds, commits and leaves the
// group. When the topic is recreated it starts again on the new one; a
// changed partition count stops it with an error.
func (a *Aggregator) Run(ctx context.Context, extra ...kgo.Opt) error {
	if len(a.schema.Key) != 1 {
		// Refused at start, not retried in Assigned for ever.
		return fmt.Errorf("aggregate of %s: loading the state of a composite key (%v) is not supported yet", a.schema.Name, a.schema.Key)
	}
	backoff := retry.Default
	if err := clickhouse.Prepare(ctx, a.conn, a.cfg, a.schema, a.log, backoff); err != nil {
		return err
	}
	ac := a.cfg.Aggregator
	for {
		topic, err := consume.PrepareTopic(ctx, a.conn, a.cfg, a.log, backoff)
		if err != nil {
			return err
		}
		a.inc, a.parts, a.pending, a.held, a.first = topic.Incarnation, map[int32]*partition{}, a.pending[:0], 0, time.Time{}
		a.mu.Lock()
		a.queued = map[int32]*loaded{}
		a.nQueued.Store(0)
		a.mu.Unlock()
		a.log.Info("started", "group", ac.Group, "topic", a.cfg.Kafka.Topic, "topic_id", topic.ID, "incarnation", topic.Incarnation, "by", a.schema.AggregateBy)
		err = consume.Run(ctx, consume.Options{
			Kafka:           a.cfg.Kafka,
			Group:           ac.Group,
			SessionTimeout:  ac.SessionTimeout,
			ShutdownTimeout: ac.ShutdownTimeout,
			FetchMaxBytes:   8 << 20,
			Log:             a.log,
			Backoff:         backoff,
			Topic:           topic.TopicState,
		}, a, extra...)
		a.log.Info("stopped", "applied", a.stats.Applied, "loaded", a.stats.Loaded, "written", a.stats.Written, "skipped", a.stats.Skipped)
		if errors.Is(err, kafka.ErrTopicRecreated) && ctx.Err() == nil {
			a.log.Warn("the topic was recreated; starting again on it", "err", err)
			continue
		}
		return err
	}
}

// loaded is a partition's state as ClickHouse holds it, read by Assigned
// on franz-go's goroutine and installed by the poll loop (install).
type loaded struct {
	rows []loadedRow
	// stored holds the counts table's newest count per name, storedTop
	// the highest version among them.
	stored    map[string]int64
	storedTop uint64
	// from is the offset to read from: past the last record of this
	// incarnation that the records table holds, or 0.
	from      int64
	committed int64
}

// loadedRow is a row of the records table: a sku, its name and version.
type loadedRow struct {
	sku, name string
	ver       uint64
}

// Assigned reads the state of newly assigned partitions from ClickHouse
// (the records table's current rows, FINAL) and starts each where those
// rows end: the table, not the topic, is the durable truth, so compaction,
// retention and a recreated topic cannot take a sku's old name from the
// state. Counts stored for the partition that differ from the loaded
// state are written again at the next flush. It runs on franz-go's
// goroutine while the poll loop runs: what it reads is queued, and the
// loop installs it before it applies a record of those partitions (which
// are fetched only after Assigned returns).
func (a *Aggregator) Assigned(ctx context.Context, committed map[int32]kgo.Offset) (map[int32]kgo.Offset, error) {
	parts := make([]int32, 0, len(committed))
	for p := range committed {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	start := time.Now()
	var got map[int32]*loaded
	err := retry.Forever(ctx, retry.Default, a.log, "load partition state", func(error) bool { return true }, func(ctx context.Context) error {
		var err error
		got, err = a.load(ctx, parts)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int32]kgo.Offset, len(committed))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range parts {
		l := got[p]
		l.committed = max(committed[p].EpochOffset().Offset, 0)
		a.queued[p] = l
		// The epoch is cleared: the offset is not one the group committed.
		out[p] = kgo.NewOffset().At(l.from).WithEpoch(-1)
		a.log.Info("partition assigned; state loaded from ClickHouse", "partition", p, "skus", len(l.rows),
			"read_from", l.from, "committed", l.committed, "took", time.Since(start).Round(time.Millisecond))
	}
	a.nQueued.Store(int32(len(a.queued)))
	return out, nil
}

// install builds the state of partitions Assigned has queued. It runs on
// the poll loop.
func (a *Aggregator) install() {
	if a.nQueued.Load() == 0 {
		return
	}
	a.mu.Lock()
	q := a.queued
	a.queued = map[int32]*loaded{}
	a.nQueued.Store(0)
	a.mu.Unlock()
	for p, l := range q {
		st := newPartition(a.names)
		for _, r := range l.rows {
			st.apply([]byte(r.sku), []byte(r.name), r.ver)
		}
		st.reconcile(l.stored, l.storedTop)
		st.committed = l.committed
		if l.from > l.committed {
			// The counts are true up to where the table's rows end once the
			// reconciled ones are written: the next flush commits that,
			// even if no record follows (a job waits on it).
			st.next, st.committable = kgo.EpochOffset{Epoch: -1, Offset: l.from}, true
			if a.first.IsZero() {
				a.first = time.Now()
			}
		}
		a.parts[p] = st
		a.stats.Loaded += int64(len(l.rows))
	}
}

// loadFromClickHouse reads the current rows of the partitions from the
// records table and the stored counts from the counts table.
func (a *Aggregator) loadFromClickHouse(ctx context.Context, parts []int32) (map[int32]*loaded, error) {
	out := make(map[int32]*loaded, len(parts))
	in := make([]string, len(parts))
	for i, p := range parts {
		out[p] = &loaded{stored: map[string]int64{}}
		in[i] = strconv.Itoa(int(p))
	}
	if len(a.schema.Key) != 1 {
		return nil, fmt.Errorf("aggregate of %s: a composite key is not supported yet", a.schema.Name)
	}
	db := a.cfg.ClickHouse.Database
	rows, err := a.conn.Query(ctx, fmt.Sprintf("SELECT _partition, toString(%s), toString(%s), %s FROM %s FINAL WHERE _partition IN (%s)",
		clickhouse.Ident(a.schema.Key[0]), clickhouse.Ident(a.schema.AggregateBy), clickhouse.Ident(schemas.VersionColumn),
		clickhouse.Table(db, a.schema.Name), strings.Join(in, ", ")))
	if err != nil {
		return nil, fmt.Errorf("read the rows of partitions %v: %w", parts, err)
	}
	defer rows.Close()
	top := map[int32]uint64{}
	var (
		partition uint32
		r         loadedRow
	)
	for rows.Next() {
		if err := rows.Scan(&partition, &r.sku, &r.name, &r.ver); err != nil {
			return nil, fmt.Errorf("read the rows of partitions %v: %w", parts, err)
		}
		p := int32(partition)
		if l := out[p]; l != nil {
			l.rows = append(l.rows, r)
			top[p] = max(top[p], r.ver)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the rows of partitions %v: %w", parts, err)
	}
	for p, v := range top {
		if inc, off := kafka.SplitVersion(v); inc == a.inc {
			out[p].from = off + 1
		}
	}
	// The stored counts as users see them (FINAL).
	crows, err := a.conn.Query(ctx, fmt.Sprintf("SELECT partition, name, count, version FROM %s FINAL WHERE partition IN (%s)",
		clickhouse.Table(db, clickhouse.CountsTable), strings.Join(in, ", ")))
	if err != nil {
		return nil, fmt.Errorf("read the counts of partitions %v: %w", parts, err)
	}
	defer crows.Close()
	var (
		name    string
		count   int64
		version uint64
	)
	for crows.Next() {
		if err := crows.Scan(&partition, &name, &count, &version); err != nil {
			return nil, fmt.Errorf("read the counts of partitions %v: %w", parts, err)
		}
		if l := out[int32(partition)]; l != nil {
			l.stored[name] = count
			l.storedTop = max(l.storedTop, version)
		}
	}
	if err := crows.Err(); err != nil {
		return nil, fmt.Errorf("read the counts of partitions %v: %w", parts, err)
	}
	return out, nil
}

// Add applies one record to its partition's state.
func (a *Aggregator) Add(r *kgo.Record) {
	a.install()
	p := a.parts[r.Partition]
	if p == nil { // assigned without Assigned (no committed offsets fetched)
		p = newPartition(a.names)
		a.parts[r.Partition] = p
	}
	sku, name, ok := a.decode(r)
	if !ok {
		a.stats.Skipped++
	} else {
		p.apply(sku, name, kafka.Version(a.inc, r.Offset))
		a.stats.Applied++
	}
	p.next = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	// A partition read again from before the group's commit (the records
	// table was behind it) commits nothing until it passes it.
	if p.next.Offset > p.committed {
		p.committable = true
	}
	if a.first.IsZero() {
		a.first = time.Now()
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
	if kafka.CheckKey(r, a.key, a.partitions) != nil {
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
	a.install()
	c := a.cfg.Aggregator
	return a.held >= c.BatchRecords || !a.first.IsZero() && now.Sub(a.first) >= a.wait(caughtUp)
}

// NextDue is when the held changes must be written at the latest.
func (a *Aggregator) NextDue(caughtUp bool) time.Time {
	a.install()
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
	a.install()
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
	a.install()
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
	b, err := a.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (partition, name, count, version, updated_at)", clickhouse.Table(db, clickhouse.CountsTable)))
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", clickhouse.CountsTable, err)
	}
	n := len(counts)
	parts, names, cnts, versions, at := make([]uint32, n), make([]string, n), make([]int64, n), make([]uint64, n), make([]time.Time, n)
	now := time.Now()
	for i, c := range counts {
		parts[i], names[i], cnts[i], versions[i], at[i] = uint32(c.Partition), c.Name, c.Count, c.Version, now
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
