package producer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/clickhouse"
	"skuflow/internal/kafka"
	"skuflow/internal/retry"
	"skuflow/jobs"
	"skuflow/schemas"
)

// Options configure a Pusher.
type Options struct {
	Schema *schemas.Schema
	Topic  string
	// Format forces the input format; FormatAuto detects it.
	Format Format
	// MaxRecordBytes bounds one input record (see ReaderOptions).
	MaxRecordBytes int
	// URL bounds fetching an http(s) source.
	URL URLLimits
	// ZstdMaxWindow bounds a zstd input's window (DefaultZstdMaxWindow
	// when zero).
	ZstdMaxWindow int64
	// MaxValueBytes bounds one produced record (key, value and headers); it
	// must stay under the producer's batch limit. A larger record is
	// rejected, not sent.
	MaxValueBytes int
	// OnReject, when set, is called for every rejected record, in order.
	OnReject func(Rejection)
	// Jobs, when set, records every push as a job in ingest_jobs, its
	// rejected records in ingest_errors, and refuses content an earlier
	// job loaded (see PushOptions.Force).
	Jobs *jobs.Store
	// Origin says in the job what started it: "push" or "watch DIR".
	Origin string
	// Log receives retries of writes to the job store.
	Log *slog.Logger
	// Now returns the time; tests may fix it.
	Now func() time.Time
	// Partitioner, when set, is the producer client's partitioner: a push
	// stops when it has seen a partition count other than its own.
	Partitioner *kafka.FixedPartitioner
	// TopicID, when set, is the topic's ID when the producer client
	// started: the client never takes up a recreated topic's new one, so a
	// push to another ID fails (kafka.ErrTopicRecreated). Empty: the ID of
	// the first push.
	TopicID string
	// TopicCheckInterval is how often a push reads the topic's metadata,
	// to stop when the topic is recreated or its partition count changes
	// (0: only at the start).
	TopicCheckInterval time.Duration
}

// PushOptions are the settings of one push.
type PushOptions struct {
	// Progress, when set, is updated as the push goes.
	Progress *Progress
	// Job is the job's id; empty gets a new one.
	Job string
	// Force pushes content that an earlier job has loaded already.
	Force bool
	// SHA256 is the file's digest when the caller has it (see HashFile).
	SHA256 string
	// Started, when set, is called once the job's first row is saved,
	// before any record is read: the push is a job from then on, and its
	// id is job.ID. A push refused or failed before then never calls it.
	Started func(job jobs.Job)
	// Redrive, when set, makes the push a re-drive of an earlier job's
	// rejected records (see Redrive).
	Redrive *RedriveOptions
}

// RedriveOptions tie a push of rejected records, written out as an input
// (see RawWriter), to the job that rejected them.
type RedriveOptions struct {
	// Of is the earlier job; the new job's row names it (Job.RedriveOf).
	Of string
	// Format is the input's format (csv or ndjson, see RawWriter).
	Format Format
	// Place maps a record's line and byte offset in the input to its
	// place in the earlier job's input, so that the records produced and
	// those rejected again keep their original place.
	Place func(line, offset int64) (int64, int64)
	// File, when set, is the earlier input's SHA-256: the identity of a
	// record of a type identified by its file and place (schemas.Identity).
	File string
	// Rejections are records rejected before the input is read (those
	// that cannot be written out whole): stored and counted with the job's
	// others.
	Rejections []Rejection
}

// Rejection is one record a push did not produce, and why.
type Rejection struct {
	Job    string
	Source string
	Line   int64
	Offset int64
	Stage  string // "decode" (the reader) or "validate" (the schema)
	Reason string
	Raw    []byte // the record as read, possibly truncated; valid during the call
	// Size is the record's full size when Raw holds only its first bytes
	// (0: Raw is whole).
	Size int64
}

func (r Rejection) String() string {
	return fmt.Sprintf("%s:%d: %s", r.Source, r.Line, r.Reason)
}

// Progress is a push's running count, safe to read while it runs.
type Progress struct {
	Read     atomic.Int64 // records framed, accepted or not
	Produced atomic.Int64 // records acknowledged by the broker
	Rejected atomic.Int64
	input    atomic.Pointer[Input]
}

// RawBytes is how many stored (possibly compressed) bytes were read.
func (p *Progress) RawBytes() int64 {
	if in := p.input.Load(); in != nil {
		return in.RawBytesRead()
	}
	return 0
}

// Result says what a push of one source did: its job, as ingest_jobs holds
// it, and how fast it went.
type Result struct {
	jobs.Job
	MBPerSecond float64 `json:"mb_per_s"`
	// RefusedBy is the earlier job that loaded the same content, when the
	// push was refused for it; LoadedSince are the jobs loaded after it
	// (newest first), whose values pushing it again would overwrite.
	RefusedBy   string        `json:"refused_by,omitempty"`
	LoadedSince []string      `json:"loaded_since,omitempty"`
	Duration    time.Duration `json:"-"`
	// RejectedByStage splits Rejected by the stage that refused each
	// record ("decode", "validate"), for metrics.
	RejectedByStage map[string]int64 `json:"-"`
}

// Pusher pushes sources to the topic through one producer client.
type Pusher struct {
	cl   *kgo.Client
	opts Options

	topicMu sync.Mutex
	topicID string // the topic's ID at the first push
}

// NewPusher returns a Pusher producing through cl, which must be a producer
// with idempotent writes (franz-go's default) so that retries never reorder
// or repeat a key's records.
func NewPusher(cl *kgo.Client, opts Options) *Pusher {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxRecordBytes == 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if opts.MaxValueBytes == 0 {
		opts.MaxValueBytes = 2 * opts.MaxRecordBytes
	}
	return &Pusher{cl: cl, opts: opts, topicID: opts.TopicID}
}

// ErrHeader is returned for a CSV file whose header cannot give valid
// records: a column name is empty or repeated, or a key column is missing.
var ErrHeader = errors.New("bad header")

// DuplicateError refuses a push whose content an earlier job loaded.
type DuplicateError struct {
	Source  string
	Earlier *jobs.Job
	// Later are jobs loaded onto the topic since Earlier (newest first, at
	// most maxLater, and More if there are others): pushing the content
	// again would put Earlier's values back over theirs.
	Later []*jobs.Job
	More  bool
}

// maxLater bounds the later jobs a refusal names.
const maxLater = 10

func (e *DuplicateError) Error() string {
	msg := fmt.Sprintf("%s: refused: the same content (sha256 %.12s...) was loaded by job %s from %s at %s",
		e.Source, e.Earlier.SHA256, e.Earlier.ID, e.Earlier.Source, e.Earlier.Started.Local().Format("2006-01-02 15:04:05"))
	if len(e.Later) == 0 {
		return msg + "; use --force to push it again"
	}
	later := make([]string, len(e.Later))
	for i, j := range e.Later {
		later[i] = fmt.Sprintf("job %s (%s, %s)", j.ID, j.Source, j.Started.Local().Format("2006-01-02 15:04:05"))
	}
	more := ""
	if e.More {
		more = " and more"
	}
	return fmt.Sprintf("%s; loaded since: %s%s; --force would bring job %s's values back over theirs for every key they share",
		msg, strings.Join(later, ", "), more, e.Earlier.ID)
}

// Push reads src to its end and produces its valid records. It returns when
// every produced record is acknowledged. The Result is filled even when an
// error ends the push early: records produced before the error are on the
// topic. With a job store, the job's row says the same.
func (p *Pusher) Push(ctx context.Context, src Source, o PushOptions) (*Result, error) {
	prog := o.Progress
	if prog == nil {
		prog = new(Progress)
	}
	start := p.opts.Now()
	res := &Result{Job: jobs.Job{
		ID:      o.Job,
		Source:  src.Name,
		Size:    src.Size,
		Type:    p.opts.Schema.Name,
		Topic:   p.opts.Topic,
		Origin:  p.opts.Origin,
		State:   jobs.Producing,
		Started: start,
		SHA256:  o.SHA256,
	}}
	if o.Redrive != nil {
		res.RedriveOf = o.Redrive.Of
	}
	if res.ID == "" {
		res.ID = jobs.NewID(start)
	}
	topic, err := p.describeTopic(ctx)
	if err != nil {
		res.State, res.Error = jobs.Failed, err.Error()
		return res, err
	}
	res.TopicID = topic.ID
	if p.opts.Schema.Identity && src.path == "" {
		// The key of every record is the file's hash: it must be known
		// before the first record goes, so a stream is saved first.
		spooled, remove, err := spool(ctx, src, p.opts.URL)
		if err != nil {
			err = fmt.Errorf("%s: records of type %s are keyed by their input's content, which is saved to a file first: %w",
				src.Name, p.opts.Schema.Name, err)
			res.State, res.Error, res.FinishedAt = jobs.Failed, err.Error(), p.opts.Now()
			// An input that cannot be read fails its job, as a file's
			// does once its row exists.
			j, release := p.newTracker(ctx, prog, res, new(jobs.EndOffsets), topic)
			defer release()
			if jerr := j.save(&res.Job); jerr != nil {
				err = errors.Join(err, jerr)
			}
			return res, err
		}
		defer remove()
		src, res.Size = spooled, spooled.Size
	}
	if refused, err := p.check(ctx, src, o.Force, res); refused || err != nil {
		// A refusal is no job, and no failure: check has said why.
		if !refused {
			res.State, res.Error = jobs.Failed, err.Error()
		}
		return res, err
	}
	offsets := new(jobs.EndOffsets)
	j, release := p.newTracker(ctx, prog, res, offsets, topic)
	defer release()
	if err := j.save(&res.Job); err != nil {
		res.State, res.Error = jobs.Failed, err.Error()
		return res, err
	}
	if o.Started != nil {
		o.Started(res.Job)
	}
	hashed := j.hashAside(ctx, src)
	err = p.push(ctx, src, prog, res, offsets, j, o.Redrive)
	if sum, herr := hashed(err != nil); herr != nil && err == nil {
		err = fmt.Errorf("%s: %w", src.Name, herr)
	} else if sum != "" {
		res.SHA256 = sum
	}
	// The heartbeat reads res: stop it before res changes.
	if jerr := j.finish(); jerr != nil && err == nil {
		err = jerr
	}
	res.Read, res.Produced, res.Rejected = prog.Read.Load(), prog.Produced.Load(), prog.Rejected.Load()
	res.EndOffsets = offsets.Snapshot()
	res.Duration = p.opts.Now().Sub(start)
	res.ProduceSeconds = res.Duration.Seconds()
	if res.ProduceSeconds > 0 {
		res.MBPerSecond = float64(prog.RawBytes()) / 1e6 / res.ProduceSeconds
	}
	if j.hash != nil && err == nil {
		res.SHA256 = hex.EncodeToString(j.hash.Sum(nil))
	}
	if err != nil {
		res.State, res.Error, res.FinishedAt = jobs.Failed, err.Error(), p.opts.Now()
	} else {
		res.State, res.ProducedAt = jobs.Produced, p.opts.Now()
	}
	if jerr := j.save(&res.Job); jerr != nil && err == nil {
		err = jerr
	}
	return res, err
}

// tracker keeps a job's row current while it produces, and stores its
// rejected records, in batches.
type tracker struct {
	p    *Pusher
	prog *Progress
	res  *Result

	mu       sync.Mutex
	rejected []clickhouse.ErrorRow
	stop     chan struct{}
	stopped  chan struct{}
	hash     hash.Hash // of an input not hashed before the push
	sum      string    // the digest hashAside found, when it has
	offsets  *jobs.EndOffsets
	topic    kafka.TopicState // as the push started
	saved    atomic.Bool      // the job's row exists
	// writes is the context of its writes to the job store: it ends
	// storeTimeout after the push's own context does, so that a stopped
	// push records its end if it can, and stops within that time in all.
	writes context.Context
}

// newTracker returns the tracker of a push whose context is ctx, and the
// function that releases it once the push is over.
func (p *Pusher) newTracker(ctx context.Context, prog *Progress, res *Result, offsets *jobs.EndOffsets, topic kafka.TopicState) (*tracker, func()) {
	writes, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(storeTimeout, cancel) })
	j := &tracker{p: p, prog: prog, res: res, offsets: offsets, topic: topic, writes: writes}
	return j, func() { stop(); cancel() }
}

// rejectBatch is how many rejected records are stored in one insert; a
// push holds at most that many (each at most MaxRawBytes) in memory.
const rejectBatch = 1000

func (j *tracker) enabled() bool { return j.p.opts.Jobs != nil }

// start rewrites the job's row every heartbeat with its counts, and stores
// the rejected records gathered since the last. A write that keeps failing
// ends the push through cancel.
func (j *tracker) start(cancel context.CancelCauseFunc) {
	if !j.enabled() {
		return
	}
	j.stop, j.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(j.stopped)
		t := time.NewTicker(jobs.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-j.stop:
				return
			case <-t.C:
			}
			err := j.flush()
			if err == nil {
				j.mu.Lock()
				job := j.res.Job
				if job.SHA256 == "" {
					job.SHA256 = j.sum
				}
				j.mu.Unlock()
				job.Read, job.Produced, job.Rejected = j.prog.Read.Load(), j.prog.Produced.Load(), j.prog.Rejected.Load()
				// Where its records went so far, should the loader die.
				job.EndOffsets = j.offsets.Snapshot()
				err = j.save(&job)
			}
			if err != nil {
				cancel(err)
				return
			}
		}
	}()
}

// describe records what Open found out about the input.
func (j *tracker) describe(in *Input) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.res.Format, j.res.Compression = string(in.Format), in.Compression
	if j.res.Size < 0 {
		j.res.Size = in.Size
	}
	j.hash = in.hash
}

// reject keeps a rejected record for ingest_errors, storing a batch when
// one is full.
func (j *tracker) reject(r Rejection) error {
	if !j.enabled() {
		return nil
	}
	raw, size := r.Raw, r.Size
	if len(raw) > clickhouse.MaxRawBytes {
		raw, size = raw[:clickhouse.MaxRawBytes], max(size, int64(len(raw)))
	}
	j.mu.Lock()
	j.rejected = append(j.rejected, clickhouse.ErrorRow{Job: r.Job, Source: r.Source, Line: r.Line, Offset: r.Offset,
		Stage: r.Stage, Reason: r.Reason, Raw: bytes.Clone(raw), Size: size})
	full := len(j.rejected) >= rejectBatch
	j.mu.Unlock()
	if full {
		return j.flush()
	}
	return nil
}

// flush stores the rejected records gathered so far.
func (j *tracker) flush() error {
	j.mu.Lock()
	rows := j.rejected
	j.rejected = nil
	j.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	err := j.p.storeRetryFor(j.writes, j.patience(), "store rejected records", func(ctx context.Context) error {
		return j.p.opts.Jobs.SaveErrors(ctx, rows)
	})
	if err != nil {
		// Kept for the next write (finish stores what is left with the
		// job's last state): a write that failed may have gone in, and
		// ingest_errors collapses a record stored twice.
		j.mu.Lock()
		j.rejected = append(rows, j.rejected...)
		j.mu.Unlock()
	}
	return err
}

// finish stops the heartbeat and stores the last rejected records.
func (j *tracker) finish() error {
	if !j.enabled() {
		return nil
	}
	if j.stop != nil {
		close(j.stop)
		<-j.stopped
	}
	return j.flush()
}

// save writes a version of the job's row.
func (j *tracker) save(job *jobs.Job) error {
	if !j.enabled() {
		return nil
	}
	err := j.p.storeRetryFor(j.writes, j.patience(), "record job "+job.ID, func(ctx context.Context) error {
		return j.p.opts.Jobs.Save(ctx, job)
	})
	if err == nil {
		j.saved.Store(true)
	}
	return err
}

// patience is how long a write of the job store is retried: storeTimeout
// until the job's row exists, producingStoreTimeout after.
func (j *tracker) patience() time.Duration {
	if j.saved.Load() {
		return producingStoreTimeout
	}
	return storeTimeout
}

// check hashes a file source and, unless force, refuses it when an earlier
// job loaded the same content. Other sources are hashed as they are read
// and never refused: their content is known only once it has been pushed.
func (p *Pusher) check(ctx context.Context, src Source, force bool, res *Result) (refused bool, err error) {
	if src.path == "" || p.opts.Jobs == nil && !p.opts.Schema.Identity {
		return false, nil
	}
	if res.SHA256 == "" {
		ahead, err := p.hashAhead(ctx, src, force)
		if err != nil || !ahead {
			// Not ahead: no earlier job can have loaded it (or it is
			// forced), and it is hashed beside its records.
			return false, err
		}
		if res.SHA256, err = HashFile(ctx, src.path); err != nil {
			return false, fmt.Errorf("%s: %w", src.Name, err)
		}
	}
	if force || p.opts.Jobs == nil {
		return false, nil
	}
	var earlier *jobs.Job
	err = p.storeRetry(ctx, "look up earlier jobs", func(ctx context.Context) error {
		earlier, err = p.opts.Jobs.Loaded(ctx, res.SHA256, p.opts.Topic)
		return err
	})
	if err != nil || earlier == nil {
		return false, err
	}
	if earlier.State == jobs.Produced && earlier.TopicID != "" && earlier.TopicID != res.TopicID {
		// Produced to a topic since recreated, and never seen loaded: its
		// records may be gone with it. It does not block; it failed.
		earlier.State, earlier.FinishedAt = jobs.Failed, p.opts.Now()
		earlier.Error = fmt.Sprintf("%s (topic %s had ID %s, it has %s now)", jobs.ErrTopicRecreated, p.opts.Topic, earlier.TopicID, res.TopicID)
		return false, p.storeRetry(ctx, "record the earlier job as failed", func(ctx context.Context) error {
			return p.opts.Jobs.Save(ctx, earlier)
		})
	}
	var later []*jobs.Job
	err = p.storeRetry(ctx, "look up later jobs", func(ctx context.Context) error {
		later, err = p.opts.Jobs.LoadedAfter(ctx, earlier, maxLater+1)
		return err
	})
	if err != nil {
		return false, err
	}
	dup := &DuplicateError{Source: src.Name, Earlier: earlier, Later: later[:min(len(later), maxLater)], More: len(later) > maxLater}
	// A refusal is no job: no id, no row.
	res.ID, res.RefusedBy, res.State = "", earlier.ID, ""
	for _, j := range dup.Later {
		res.LoadedSince = append(res.LoadedSince, j.ID)
	}
	res.Error = dup.Error()
	return true, dup
}

// hashAhead says whether a file must be hashed before its first record is
// produced: because its records' keys hold the digest (Identity), or to
// look for an earlier job of the same content, which only a job of its
// size (or of a size it did not know) can be. Any other file is hashed
// beside its records (tracker.hashAside): reading the whole file once
// more before the first record cost a push as much wall time as SHA-256
// takes (0.2 s of a 2 s push of 377 MB).
func (p *Pusher) hashAhead(ctx context.Context, src Source, force bool) (bool, error) {
	// check has returned already when there are neither jobs nor Identity.
	switch {
	case p.opts.Schema.Identity:
		return true, nil
	case force:
		return false, nil
	case src.Size < 0:
		return true, nil
	}
	var may bool
	err := p.storeRetry(ctx, "look up earlier jobs", func(ctx context.Context) (err error) {
		may, err = p.opts.Jobs.MayHaveLoaded(ctx, src.Size, p.opts.Topic)
		return err
	})
	return may, err
}

// hashAside hashes a file whose job wants its SHA-256 and does not have
// it yet (see Pusher.hashAhead) while the file is pushed; the heartbeat's
// rows carry the digest once it is known. It returns the wait for the
// digest: stop cancels the hashing (the push failed, and keeps no digest).
func (j *tracker) hashAside(ctx context.Context, src Source) (wait func(stop bool) (string, error)) {
	if src.path == "" || !j.enabled() || j.res.SHA256 != "" {
		return func(bool) (string, error) { return "", nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		sum, err := HashFile(ctx, src.path)
		j.mu.Lock()
		j.sum = sum
		j.mu.Unlock()
		done <- err
	}()
	return func(stop bool) (string, error) {
		if stop {
			cancel()
		}
		err := <-done
		cancel()
		if stop || err != nil {
			return "", err
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.sum, nil
	}
}

// storeRetry runs a write to the job store, retrying for a while: a job
// whose records were produced but not recorded is worse than a short wait.
func (p *Pusher) storeRetry(ctx context.Context, what string, op func(context.Context) error) error {
	return p.storeRetryFor(context.WithoutCancel(ctx), storeTimeout, what, op)
}

// storeRetryFor is storeRetry retrying for up to patience, or until ctx
// ends.
func (p *Pusher) storeRetryFor(ctx context.Context, patience time.Duration, what string, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	log := p.opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := retry.Forever(ctx, retry.Default, log, what, func(error) bool { return true }, op); err != nil {
		return unavailable{err}
	}
	return nil
}

// ErrUnavailable marks a push that failed because Kafka or ClickHouse did
// (a topic that was recreated or changed its partition count is not that:
// kafka.ErrTopicRecreated, kafka.ErrPartitionCount),
// not because of its input: the same push can work later.
var ErrUnavailable = errors.New("Kafka or ClickHouse unavailable")

// unavailable wraps an error of Kafka or ClickHouse; its text is the
// error's own.
type unavailable struct{ error }

func (e unavailable) Unwrap() error        { return e.error }
func (e unavailable) Is(target error) bool { return target == ErrUnavailable }

// describeTopic reads the topic's ID, which the job keeps, and refuses a
// topic whose partition count is not the partitioner's.
func (p *Pusher) describeTopic(ctx context.Context) (kafka.TopicState, error) {
	dctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	st, err := kafka.Describe(dctx, p.cl, p.opts.Topic)
	if err != nil {
		return st, unavailable{err}
	}
	if pt := p.opts.Partitioner; pt != nil && st.Partitions != pt.N {
		return st, fmt.Errorf("%w: topic %s has %d partitions, %d are configured (kafka.partitions, or the type's partitions)",
			kafka.ErrPartitionCount, p.opts.Topic, st.Partitions, pt.N)
	}
	// The producer client never takes up a recreated topic's new ID
	// (franz-go fails its records): a Pusher is for one incarnation.
	p.topicMu.Lock()
	defer p.topicMu.Unlock()
	if p.topicID == "" {
		p.topicID = st.ID
	} else if p.topicID != st.ID {
		return st, fmt.Errorf("%w: topic %s has ID %s, it had %s when this loader started; start it again to push to the new topic",
			kafka.ErrTopicRecreated, p.opts.Topic, st.ID, p.topicID)
	}
	return st, nil
}

func (p *Pusher) log() *slog.Logger {
	if p.opts.Log != nil {
		return p.opts.Log
	}
	return slog.New(slog.DiscardHandler)
}

// storeTimeout bounds how long a push retries a write to the job store
// before its job's row exists: a push that cannot start says so soon.
const storeTimeout = 30 * time.Second

// producingStoreTimeout bounds it once the row exists and records may be
// on the topic: the heartbeat, the rejected records and the job's last
// state wait out a ClickHouse restart (18.16's graceful stop alone took
// 10 s in CI) rather than fail a push whose records are on their way.
const producingStoreTimeout = 10 * time.Minute

func (p *Pusher) push(ctx context.Context, src Source, prog *Progress, res *Result, offsets *jobs.EndOffsets, j *tracker, redrive *RedriveOptions) error {
	// The heartbeat starts before the input opens: opening can take long
	// (a slow URL, or stdin read until its format can be told), and a job
	// whose row is not rewritten looks abandoned.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	j.start(cancel)

	format := p.opts.Format
	if redrive != nil && redrive.Format != "" {
		format = redrive.Format
	}
	in, err := open(ctx, src, openOptions{force: format, hashed: src.path == "" && j.enabled(), maxRecord: p.opts.MaxRecordBytes, url: p.opts.URL, zstdMaxWindow: p.opts.ZstdMaxWindow})
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause // the heartbeat's, which interrupted the open
		}
		return err
	}
	defer in.Close()
	prog.input.Store(in)
	j.describe(in)

	r, err := p.reader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", src.Name, err)
	}
	if cr, ok := r.(*CSVReader); ok {
		j.mu.Lock()
		res.CSVHeader = string(cr.HeaderLine())
		j.mu.Unlock()
	}
	var failOnce sync.Once
	if iv := p.opts.TopicCheckInterval; iv > 0 {
		go func() {
			// A changed topic is not an outage to wait out: the push
			// fails with it as it is (see ErrUnavailable).
			if err := kafka.Watch(ctx, p.cl, p.opts.Topic, j.topic, iv, p.log()); err != nil {
				failOnce.Do(func() { cancel(err) })
			}
		}()
	}
	rb := p.newRecordBuilder(res.ID, src.Name)
	rb.file = res.SHA256
	rb.clock = startClock(ctx, clockTick)
	// Every record goes to Produce with ctx and its promise releases it.
	rb.recycle(ctx)
	place := func(line, offset int64) (int64, int64) { return line, offset }
	if redrive != nil {
		if redrive.File != "" {
			rb.file = redrive.File
		}
		if redrive.Place != nil {
			place = redrive.Place
		}
	}
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			release(rec)
			failOnce.Do(func() { cancel(unavailable{fmt.Errorf("produce to %s: %w", p.opts.Topic, err)}) })
			return
		}
		offsets.Observe(rec.Partition, rec.Offset)
		release(rec) // rec may be another record's from here on
		prog.Produced.Add(1)
	}
	reject := func(line, offset int64, stage, reason string, raw []byte, size int64) {
		prog.Rejected.Add(1)
		// Only the reading loop below rejects: no lock needed.
		if res.RejectedByStage == nil {
			res.RejectedByStage = map[string]int64{}
		}
		res.RejectedByStage[stage]++
		r := Rejection{Job: res.ID, Source: src.Name, Line: line, Offset: offset, Stage: stage, Reason: reason, Raw: raw, Size: size}
		if p.opts.OnReject != nil {
			p.opts.OnReject(r)
		}
		if err := j.reject(r); err != nil {
			failOnce.Do(func() { cancel(err) })
		}
	}

	if redrive != nil {
		for _, r := range redrive.Rejections {
			prog.Read.Add(1)
			reject(r.Line, r.Offset, r.Stage, r.Reason, r.Raw, r.Size)
		}
	}
	var readErr error
	for ctx.Err() == nil {
		rec, err := r.Next()
		if err != nil {
			var re *RecordError
			if errors.As(err, &re) {
				prog.Read.Add(1)
				line, off := place(re.Line, re.Offset)
				reject(line, off, "decode", re.Reason, re.Raw, re.Size)
				continue
			}
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("%s: %w", src.Name, err)
			}
			break
		}
		prog.Read.Add(1)
		line, off := place(rec.Line, rec.Offset)
		kr, reason := rb.build(rec, line, off)
		if kr == nil {
			raw := rec.JSON
			if rec.Raw != nil {
				raw = rec.Raw // a CSV row as it was, not its JSON
			}
			reject(line, off, "validate", reason, raw, 0)
			continue
		}
		// Produce blocks while the client holds its maximum of buffered
		// records: that is the loader's backpressure.
		p.cl.Produce(ctx, kr, promise)
		if pt := p.opts.Partitioner; pt != nil && pt.Mismatch.Load() != 0 {
			failOnce.Do(func() { cancel(pt.CheckMismatch(p.opts.Topic)) })
		}
	}
	// Wait for every record in flight, even after a read error, so that the
	// result says exactly what reached the topic.
	flushErr := p.cl.Flush(context.WithoutCancel(ctx))
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if readErr != nil {
		return readErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: push interrupted: %w", src.Name, context.Cause(ctx))
	}
	if flushErr != nil {
		return flushErr
	}
	if iv := p.opts.TopicCheckInterval; iv > 0 {
		return p.lastLook(ctx, j.topic, iv)
	}
	return nil
}

// lastLook reads the topic once more after a push's last record is
// acknowledged: a topic recreated, grown or deleted while the push ran,
// which the periodic check had not come to yet, still fails it (a push
// that ends within one interval of its start would otherwise never look).
// A broker that does not answer within timeout is no such change: the
// records are acknowledged, and the look is skipped with a warning.
func (p *Pusher) lastLook(ctx context.Context, was kafka.TopicState, timeout time.Duration) error {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	now, err := kafka.Describe(dctx, p.cl, p.opts.Topic)
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %s was deleted while the push ran, and its records with it: push the input again once it is back (%w)", p.opts.Topic, err)
	case err != nil:
		p.log().Warn("the topic could not be checked after the push; its records are acknowledged", "topic", p.opts.Topic, "err", err)
		return nil
	}
	return kafka.Changed(p.opts.Topic, was, now)
}

// reader picks the Reader for the input's format.
func (p *Pusher) reader(in *Input) (Reader, error) {
	ro := ReaderOptions{MaxRecordBytes: p.opts.MaxRecordBytes, KeyFields: p.opts.Schema.Key}
	switch in.Format {
	case FormatJSON:
		return NewJSONReader(in, ro), nil
	case FormatNDJSON:
		return NewNDJSONReader(in, ro), nil
	case FormatCSV:
		cr, err := NewCSVReader(in, ro)
		if err != nil {
			return nil, err
		}
		cols := make(map[string]bool, len(cr.Header()))
		for _, c := range cr.Header() {
			cols[c] = true
		}
		// Without a required column every row would be rejected: the
		// file is refused once instead.
		for _, c := range p.opts.Schema.Columns {
			if c.Required && !cols[c.Name] {
				return nil, fmt.Errorf("%w: the header has no %q column, which records of type %s require (columns: %s)",
					ErrHeader, c.Name, p.opts.Schema.Name, strings.Join(cr.Header(), ", "))
			}
		}
		return cr, nil
	default:
		return nil, fmt.Errorf("unknown format %q", in.Format)
	}
}

// recordBuilder turns records read into records to produce: validated,
// keyed, with the job's headers, and copied out of the reader's buffer
// into chunks (see chunk).
type recordBuilder struct {
	schema   *schemas.Schema
	topic    string
	maxValue int
	// job and source are every record's, in its provenance header prov.
	job, source string
	key         []byte
	prov        []byte
	// file is the input's SHA-256, a record's identity with its offset
	// for a schema whose identity is its source.
	file string
	// clock, when set, gives the records their timestamps (else franz-go
	// reads the time for each).
	clock *clock
	chunk *chunk
	// pool, when set, takes back chunks whose records are all released
	// (see recycle); ctx is then the context the records are produced
	// with.
	pool *chunkPool
	ctx  context.Context
}

func (p *Pusher) newRecordBuilder(job, source string) *recordBuilder {
	return &recordBuilder{schema: p.opts.Schema, topic: p.opts.Topic, maxValue: p.opts.MaxValueBytes,
		job: job, source: source}
}

// recycle makes the builder reuse the memory of records once their
// promises call release (every record it builds must then be produced
// with ctx and released exactly once).
func (b *recordBuilder) recycle(ctx context.Context) {
	b.pool, b.ctx = new(chunkPool), ctx
}

// release hands back a record built by a recycling builder once franz-go
// is done with it: the end of its promise.
func release(r *kgo.Record) {
	if c := chunkOf(r); c != nil {
		c.release()
	}
}

// build returns the record to produce for rec, found at line and offset
// of the input (rec's own, or its place in a re-driven job's input), or
// nil and why rec is rejected.
func (b *recordBuilder) build(rec *Record, line, offset int64) (*kgo.Record, string) {
	var err error
	if b.key, err = b.schema.Validate(b.key[:0], rec.Fields); err != nil {
		return nil, err.Error()
	}
	if b.schema.Identity {
		b.key = schemas.IdentityKey(b.key[:0], b.file, offset)
	}
	b.prov = kafka.AppendProvenance(b.prov[:0], b.job, line, b.source)
	if n := len(b.key) + len(rec.JSON) + len(b.prov) + len(kafka.HeaderProvenance) + 16; n > b.maxValue {
		return nil, fmt.Sprintf("record is %d bytes as produced, over the limit of %d", n, b.maxValue)
	}
	if n := inChunk(b.key) + inChunk(rec.JSON) + inChunk(b.prov); b.chunk == nil || !b.chunk.fits(n) {
		if b.chunk != nil {
			b.chunk.release() // the builder's hold
		}
		b.chunk = newChunk(b.pool, b.ctx)
	}
	c := b.chunk
	r, h := c.record()
	h[0] = kgo.RecordHeader{Key: kafka.HeaderProvenance, Value: c.copy(b.prov)}
	r.Topic, r.Key, r.Value, r.Headers = b.topic, c.copy(b.key), c.copy(rec.JSON), h
	if b.clock != nil {
		r.Timestamp = b.clock.now()
	}
	return r, ""
}

// clockTick is how often a push's clock reads the time: a record's
// timestamp is at most about this much before it was built (Kafka keeps
// timestamps to the millisecond).
const clockTick = 2 * time.Millisecond

// clock is the time to the millisecond, read every tick by a goroutine of
// its own until its context ends.
//
// Why: franz-go reads the clock for every record that has no timestamp,
// and on the development machine's virtual clock that was 5% of the
// loader's CPU on the 2,000,000-row bench (time.Now, 0.14 of 2.8 CPU-s);
// 500 reads a second cost next to nothing, and a trickle (stdin, a slow
// URL) still gets its records' times to the tick.
type clock struct {
	ms   atomic.Int64
	done chan struct{} // closed when its goroutine has ended
}

func startClock(ctx context.Context, tick time.Duration) *clock {
	c := &clock{done: make(chan struct{})}
	c.ms.Store(time.Now().UnixMilli())
	go func() {
		defer close(c.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.ms.Store(time.Now().UnixMilli())
			}
		}
	}()
	return c
}

func (c *clock) now() time.Time { return time.UnixMilli(c.ms.Load()) }
