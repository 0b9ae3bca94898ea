package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"skuflow/internal/kafka"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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
	// MaxValueBytes bounds one produced record (key, value and headers); it
	// must stay under the producer's batch limit. A larger record is
	// rejected, not sent.
	MaxValueBytes int
	// OnReject, when set, is called for every rejected record, in order.
	OnReject func(Rejection)
	// Now returns the time; tests may fix it.
	Now func() time.Time
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

// Result says what a push of one source did.
type Result struct {
	Job         string           `json:"job"`
	Source      string           `json:"source"`
	Format      Format           `json:"format"`
	Compression string           `json:"compression,omitempty"`
	Size        int64            `json:"size_bytes"` // stored size, -1 if unknown
	Read        int64            `json:"records_read"`
	Produced    int64            `json:"records_produced"`
	Rejected    int64            `json:"records_rejected"`
	EndOffsets  map[int32]int64  `json:"end_offsets"` // partition -> last offset produced
	Started     time.Time        `json:"started"`
	Duration    time.Duration    `json:"-"`
	Seconds     float64          `json:"seconds"`
	MBPerSecond float64          `json:"mb_per_s"`
	Error       string           `json:"error,omitempty"`
	offsets     *jobs.EndOffsets // filled by produce callbacks
}

// Pusher pushes sources to the topic through one producer client.
type Pusher struct {
	cl   *kgo.Client
	opts Options
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
	return &Pusher{cl: cl, opts: opts}
}

// ErrHeader is returned for a CSV file whose header cannot give valid
// records: a column name is empty or repeated, or a key column is missing.
var ErrHeader = errors.New("bad header")

// Push reads src to its end and produces its valid records. It returns when
// every produced record is acknowledged. The Result is filled even when an
// error ends the push early: records produced before the error are on the
// topic.
func (p *Pusher) Push(ctx context.Context, src Source, prog *Progress) (*Result, error) {
	if prog == nil {
		prog = new(Progress)
	}
	start := p.opts.Now()
	res := &Result{
		Job:     jobs.NewID(start),
		Source:  src.Name,
		Size:    src.Size,
		Started: start,
		offsets: new(jobs.EndOffsets),
	}
	err := p.push(ctx, src, prog, res)
	res.Read, res.Produced, res.Rejected = prog.Read.Load(), prog.Produced.Load(), prog.Rejected.Load()
	res.EndOffsets = res.offsets.Snapshot()
	res.Duration = p.opts.Now().Sub(start)
	res.Seconds = res.Duration.Seconds()
	if res.Seconds > 0 {
		res.MBPerSecond = float64(prog.RawBytes()) / 1e6 / res.Seconds
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

func (p *Pusher) push(ctx context.Context, src Source, prog *Progress, res *Result) error {
	in, err := Open(ctx, src, p.opts.Format)
	if err != nil {
		return err
	}
	defer in.Close()
	if src.Size < 0 {
		res.Size = in.Size
	}
	prog.input.Store(in)
	res.Format, res.Compression = in.Format, in.Compression

	r, err := p.reader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", src.Name, err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		failOnce sync.Once
		slab     slab
		key      []byte
		headers  = headerValues{job: []byte(res.Job), source: []byte(src.Name)}
	)
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			failOnce.Do(func() { cancel(fmt.Errorf("produce to %s: %w", p.opts.Topic, err)) })
			return
		}
		res.offsets.Observe(rec.Partition, rec.Offset)
		prog.Produced.Add(1)
	}
	reject := func(line, offset int64, stage, reason string, raw []byte) {
		prog.Rejected.Add(1)
		if p.opts.OnReject != nil {
			p.opts.OnReject(Rejection{Job: res.Job, Source: src.Name, Line: line, Offset: offset, Stage: stage, Reason: reason, Raw: raw})
		}
	}

	var readErr error
	for ctx.Err() == nil {
		rec, err := r.Next()
		if err != nil {
			var re *RecordError
			if errors.As(err, &re) {
				prog.Read.Add(1)
				reject(re.Line, re.Offset, "decode", re.Reason, re.Raw)
				continue
			}
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("%s: %w", src.Name, err)
			}
			break
		}
		prog.Read.Add(1)
		key, err = p.opts.Schema.Validate(key[:0], rec.Fields)
		if err != nil {
			reject(rec.Line, rec.Offset, "validate", err.Error(), rec.JSON)
			continue
		}
		line := strconv.AppendInt(make([]byte, 0, 20), rec.Line, 10)
		if n := len(key) + len(rec.JSON) + headers.size() + len(line); n > p.opts.MaxValueBytes {
			reject(rec.Line, rec.Offset, "validate",
				fmt.Sprintf("record is %d bytes as produced, over the limit of %d", n, p.opts.MaxValueBytes), rec.JSON)
			continue
		}
		kr := &kgo.Record{
			Topic:   p.opts.Topic,
			Key:     slab.copy(key),
			Value:   slab.copy(rec.JSON),
			Headers: headers.build(line),
		}
		// Produce blocks while the client holds its maximum of buffered
		// records: that is the loader's backpressure.
		p.cl.Produce(ctx, kr, promise)
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
	return flushErr
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
		for _, k := range p.opts.Schema.Key {
			if !cols[k] {
				return nil, fmt.Errorf("%w: the header has no %q column (columns: %s)", ErrHeader, k, strings.Join(cr.Header(), ", "))
			}
		}
		return cr, nil
	default:
		return nil, fmt.Errorf("unknown format %q", in.Format)
	}
}

// headerValues builds the headers of produced records; job and source are
// shared by all records of a push.
type headerValues struct{ job, source []byte }

func (h headerValues) size() int { return len(h.job) + len(h.source) + 64 }

func (h headerValues) build(line []byte) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: kafka.HeaderJob, Value: h.job},
		{Key: kafka.HeaderSource, Value: h.source},
		{Key: kafka.HeaderLine, Value: line},
	}
}

// slab hands out copies of small byte slices from large shared chunks, so a
// produced record costs no allocation of its own for its key and value. A
// chunk is freed by the garbage collector once every record cut from it has
// been acknowledged.
type slab struct{ chunk []byte }

const slabChunk = 256 << 10

func (s *slab) copy(b []byte) []byte {
	if len(b) > slabChunk/8 {
		return append([]byte(nil), b...)
	}
	if cap(s.chunk)-len(s.chunk) < len(b) {
		s.chunk = make([]byte, 0, slabChunk)
	}
	start := len(s.chunk)
	s.chunk = append(s.chunk, b...)
	return s.chunk[start:len(s.chunk):len(s.chunk)]
}
