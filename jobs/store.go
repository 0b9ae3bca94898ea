package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"skuflow/internal/clickhouse"
)

// Store keeps jobs in ClickHouse's ingest_jobs and their rejected records
// in ingest_errors. Each Save writes a new version of the job's row; reads
// see the newest. It is safe for concurrent use.
type Store struct {
	conn clickhouse.Conn
	db   string
	// cluster is the ClickHouse cluster the tables are on (OnCluster), ""
	// for one server.
	cluster string

	mu   sync.Mutex
	last uint64 // the last version written, so versions always grow
	// now returns the time; tests give a host a clock that is behind.
	now func() time.Time
}

// NewStore returns a Store on the tables of database db, which migration
// has created.
func NewStore(conn clickhouse.Conn, db string) *Store {
	return &Store{conn: conn, db: db, now: time.Now}
}

// OnCluster says the tables are on ClickHouse cluster name (the Distributed
// tables over NAME_local ones, internal/clickhouse/cluster.go), which only
// Prune needs to know. It returns s.
func (s *Store) OnCluster(name string) *Store {
	s.cluster = name
	return s
}

// versionRankShift puts a state's rank above 56 bits of milliseconds
// (two million years).
const versionRankShift = 56

// versionBase sets the top bit of every version: rows written by earlier
// releases, versioned by the clock in nanoseconds (below 2^61 until the
// year 2043), never hide a newer state.
const versionBase = uint64(1) << 63

// ErrNotFound is returned for a job id that ingest_jobs does not hold.
var ErrNotFound = errors.New("no such job")

const jobColumns = "id, source, size, sha256, format, compression, type, topic, topic_id, origin, records_read, records_produced, records_rejected, " +
	"end_partitions, end_offsets, state, error, started_at, produced_at, finished_at, produce_seconds, load_seconds, updated_at, csv_header, redrive_of"

// Save writes j's current state as its newest version. A job's state only
// moves forward, whoever writes it: the version's top bits are the state's
// rank (producing < produced < failed < done), the rest the writer's clock
// in milliseconds, so a `done` written by a host whose clock is behind still
// hides the `produced` before it under FINAL.
func (s *Store) Save(ctx context.Context, j *Job) error {
	now := s.now()
	s.mu.Lock()
	version := versionBase | j.State.rank()<<versionRankShift | uint64(max(now.UnixMilli(), 0))&(1<<versionRankShift-1)
	if version <= s.last && version>>versionRankShift == s.last>>versionRankShift {
		version = s.last + 1
	}
	s.last = max(s.last, version)
	s.mu.Unlock()
	j.Updated = now

	parts := make([]int32, 0, len(j.EndOffsets))
	for p := range j.EndOffsets {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	partitions, offsets := make([]uint32, len(parts)), make([]uint64, len(parts))
	for i, p := range parts {
		partitions[i], offsets[i] = uint32(p), uint64(j.EndOffsets[p])
	}
	b, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (%s, version)", clickhouse.Table(s.db, clickhouse.JobsTable), jobColumns))
	if err == nil {
		err = b.Append(j.ID, j.Source, j.Size, j.SHA256, j.Format, j.Compression, j.Type, j.Topic, j.TopicID, j.Origin,
			uint64(j.Read), uint64(j.Produced), uint64(j.Rejected), partitions, offsets,
			string(j.State), j.Error, j.Started, j.ProducedAt, j.FinishedAt, j.ProduceSeconds, j.LoadSeconds, now, j.CSVHeader, j.RedriveOf, version)
		if err != nil {
			_ = b.Abort()
		}
	}
	if err == nil {
		err = b.Send()
	}
	if err != nil {
		return fmt.Errorf("record job %s in %s.%s: %w", j.ID, s.db, clickhouse.JobsTable, err)
	}
	return nil
}

// Get returns the newest version of job id.
func (s *Store) Get(ctx context.Context, id string) (*Job, error) {
	js, err := s.query(ctx, "WHERE id = "+clickhouse.Quote(id), 1)
	if err != nil {
		return nil, err
	}
	if len(js) == 0 {
		return nil, fmt.Errorf("%w %q in %s.%s", ErrNotFound, id, s.db, clickhouse.JobsTable)
	}
	// Who re-drove it is read from the re-drives' rows, not written into
	// its own: a row rewritten by a re-drive could lose to a `done`
	// written at the same time from an older read of it.
	by, err := s.Redrives(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, r := range by {
		js[0].RedrivenBy = append(js[0].RedrivenBy, r.ID)
	}
	return js[0], nil
}

// Redrives returns the jobs that pushed job id's rejected records again
// (see Job.RedriveOf), oldest first.
func (s *Store) Redrives(ctx context.Context, id string) ([]*Job, error) {
	js, err := s.query(ctx, "WHERE redrive_of = "+clickhouse.Quote(id), 1000)
	slices.Reverse(js)
	return js, err
}

// Filter narrows List: a state, a record type (products matches jobs from
// before types too), and Before, a job id, for the page after it.
type Filter struct {
	State  State
	Type   string
	Before string
}

// List returns up to limit jobs that pass f, newest first.
func (s *Store) List(ctx context.Context, f Filter, limit int) ([]*Job, error) {
	var conds []string
	if f.State != "" {
		conds = append(conds, "state = "+clickhouse.Quote(string(f.State)))
	}
	switch f.Type {
	case "":
	case "products":
		conds = append(conds, "type IN ('products', '')")
	default:
		conds = append(conds, "type = "+clickhouse.Quote(f.Type))
	}
	if f.Before != "" {
		conds = append(conds, "id < "+clickhouse.Quote(f.Before))
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	return s.query(ctx, where, limit)
}

// Recent returns up to limit jobs, newest first.
func (s *Store) Recent(ctx context.Context, limit int) ([]*Job, error) {
	return s.query(ctx, "", limit)
}

// Loaded returns the newest job that put content with digest sha256 on
// topic in whole (see Job.Blocks), or nil if there is none. The same
// content pushed as another record type, to another topic, is not it.
func (s *Store) Loaded(ctx context.Context, sha256, topic string) (*Job, error) {
	js, err := s.query(ctx, fmt.Sprintf("WHERE sha256 = %s AND topic = %s AND state IN (%s, %s)",
		clickhouse.Quote(sha256), clickhouse.Quote(topic), clickhouse.Quote(string(Produced)), clickhouse.Quote(string(Done))), 1)
	if err != nil || len(js) == 0 {
		return nil, err
	}
	return js[0], nil
}

// MayHaveLoaded reports whether a job that put content on topic in whole
// (produced or done) could have read an input of size bytes: one of that
// size, or one whose size it did not know (stdin, some URLs). When none
// could, no earlier job loaded the same content, and a push need not know
// its digest before producing.
func (s *Store) MayHaveLoaded(ctx context.Context, size int64, topic string) (bool, error) {
	js, err := s.query(ctx, fmt.Sprintf("WHERE topic = %s AND state IN (%s, %s) AND (size = %d OR size < 0)",
		clickhouse.Quote(topic), clickhouse.Quote(string(Produced)), clickhouse.Quote(string(Done)), size), 1)
	return len(js) > 0, err
}

// LoadedAfter returns up to limit jobs that put content on j's topic in
// whole after j did: produced or done, and started later (ids sort by
// start time, to the microsecond). Their records follow j's on the topic,
// so pushing j's content again would put j's values back over theirs.
// Newest first.
func (s *Store) LoadedAfter(ctx context.Context, j *Job, limit int) ([]*Job, error) {
	return s.query(ctx, fmt.Sprintf("WHERE id > %s AND topic = %s AND state IN (%s, %s)",
		clickhouse.Quote(j.ID), clickhouse.Quote(j.Topic), clickhouse.Quote(string(Produced)), clickhouse.Quote(string(Done))), limit)
}

func (s *Store) query(ctx context.Context, where string, limit int) ([]*Job, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s FINAL %s ORDER BY started_at DESC, id DESC LIMIT %d",
		jobColumns, clickhouse.Table(s.db, clickhouse.JobsTable), where, limit))
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", s.db, clickhouse.JobsTable, err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		var (
			j                        Job
			state                    string
			size                     int64
			read, produced, rejected uint64
			partitions               []uint32
			offsets                  []uint64
		)
		if err := rows.Scan(&j.ID, &j.Source, &size, &j.SHA256, &j.Format, &j.Compression, &j.Type, &j.Topic, &j.TopicID, &j.Origin,
			&read, &produced, &rejected, &partitions, &offsets, &state, &j.Error,
			&j.Started, &j.ProducedAt, &j.FinishedAt, &j.ProduceSeconds, &j.LoadSeconds, &j.Updated, &j.CSVHeader, &j.RedriveOf); err != nil {
			return nil, fmt.Errorf("read %s.%s: %w", s.db, clickhouse.JobsTable, err)
		}
		j.Size, j.State = size, State(state)
		j.Read, j.Produced, j.Rejected = int64(read), int64(produced), int64(rejected)
		j.EndOffsets = make(map[int32]int64, len(partitions))
		for i, p := range partitions {
			if i < len(offsets) {
				j.EndOffsets[int32(p)] = int64(offsets[i])
			}
		}
		// ClickHouse's zero DateTime is the epoch; a job's is Go's.
		for _, t := range []*time.Time{&j.ProducedAt, &j.FinishedAt} {
			if t.Unix() <= 0 {
				*t = time.Time{}
			}
		}
		out = append(out, &j)
	}
	return out, rows.Err()
}

// SaveErrors writes records a job rejected to ingest_errors.
func (s *Store) SaveErrors(ctx context.Context, rows []clickhouse.ErrorRow) error {
	return clickhouse.InsertErrors(ctx, s.conn, s.db, rows)
}

// Errors returns up to limit of job id's rows in ingest_errors, in input
// order, and how many it has in all.
func (s *Store) Errors(ctx context.Context, id string, limit int) ([]clickhouse.ErrorRow, int64, error) {
	return s.ErrorsAfter(ctx, id, nil, limit)
}

// ErrorPlace is where a row of ingest_errors sorts among a job's: the
// cursor of the page after it.
type ErrorPlace struct {
	Line, Partition, Offset int64
	Stage                   string
}

// Place returns where e sorts.
func Place(e clickhouse.ErrorRow) ErrorPlace {
	return ErrorPlace{Line: e.Line, Partition: int64(e.Partition), Offset: e.Offset, Stage: e.Stage}
}

// ErrorsAfter is Errors for the rows after the place after (all when it
// is nil), so that a page costs the same however deep it is.
func (s *Store) ErrorsAfter(ctx context.Context, id string, after *ErrorPlace, limit int) ([]clickhouse.ErrorRow, int64, error) {
	where := "WHERE job = " + clickhouse.Quote(id)
	var total uint64
	if err := s.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s FINAL %s", clickhouse.Table(s.db, clickhouse.ErrorsTable), where)).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %s.%s: %w", s.db, clickhouse.ErrorsTable, err)
	}
	if after != nil {
		// The sort order spelled out, which every ClickHouse release takes.
		where += fmt.Sprintf(" AND (line > %d OR line = %d AND (partition > %d OR partition = %d AND (offset > %d OR offset = %d AND stage > %s)))",
			after.Line, after.Line, after.Partition, after.Partition, after.Offset, after.Offset, clickhouse.Quote(after.Stage))
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(
		"SELECT job, source, line, stage, reason, raw, topic, partition, offset, raw_size FROM %s FINAL %s ORDER BY line, partition, offset, stage LIMIT %d",
		clickhouse.Table(s.db, clickhouse.ErrorsTable), where, limit))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s.%s: %w", s.db, clickhouse.ErrorsTable, err)
	}
	defer rows.Close()
	var out []clickhouse.ErrorRow
	for rows.Next() {
		var (
			e            clickhouse.ErrorRow
			line, offset uint64
			partition    uint32
			raw          string
			size         uint64
		)
		if err := rows.Scan(&e.Job, &e.Source, &line, &e.Stage, &e.Reason, &raw, &e.Topic, &partition, &offset, &size); err != nil {
			return nil, 0, fmt.Errorf("read %s.%s: %w", s.db, clickhouse.ErrorsTable, err)
		}
		e.Line, e.Partition, e.Offset, e.Raw, e.Size = int64(line), int32(partition), int64(offset), []byte(raw), int64(size)
		out = append(out, e)
	}
	return out, int64(total), rows.Err()
}

// CheckID rejects what cannot be a job id before it reaches a query.
func CheckID(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_')
	}) {
		return fmt.Errorf("%q is not a job id (ids look like 20261121T134512Z-3f9a0c1b2d4e)", id)
	}
	return nil
}

// Rejected is a row of ingest_errors as `loader errors --json` and the API
// show it: the raw record as text.
type Rejected struct {
	Source string `json:"source"`
	Line   int64  `json:"line"`
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	Raw    string `json:"raw"`
	// RawTruncated says Raw holds only the record's first bytes (see
	// clickhouse.RawTruncated).
	RawTruncated bool   `json:"raw_truncated,omitempty"`
	Topic        string `json:"topic,omitempty"`
	Partition    int32  `json:"partition"`
	Offset       int64  `json:"offset"`
}

// RejectedOf returns e as it is shown.
func RejectedOf(e clickhouse.ErrorRow) Rejected {
	return Rejected{e.Source, e.Line, e.Stage, e.Reason, string(e.Raw), clickhouse.RawTruncated(e), e.Topic, e.Partition, e.Offset}
}
