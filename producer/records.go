package producer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	json "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Produced is where an accepted record went on the topic.
type Produced struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// MaxRejections is how many invalid records ProduceRecords describes; the
// rest are refused all the same.
const MaxRejections = 100

// ErrTooManyRecords refuses a body with more records than allowed.
var ErrTooManyRecords = errors.New("too many records")

// ProduceRecords reads the records of body (one JSON object, a JSON array
// or wrapper of them, or NDJSON), validates every one, and, only if all
// are valid, produces them and returns once the broker has acknowledged
// every one (acks=all), with where each went, in order. If any record is
// invalid, nothing is produced and the rejections say which and why: the
// request is all or nothing, so a client that fixes and resends it never
// doubles the records that were fine. job and source are the records'
// headers. A type identified by its source takes the body's SHA-256 as
// its file: sending the same body again replaces its records.
//
// The body is held in memory: the caller bounds it, and maxRecords
// bounds the records (ErrTooManyRecords).
func (p *Pusher) ProduceRecords(ctx context.Context, body []byte, job, source string, maxRecords int) ([]Produced, []Rejection, error) {
	ro := ReaderOptions{MaxRecordBytes: p.opts.MaxRecordBytes, KeyFields: p.opts.Schema.Key}
	var r Reader
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] != '{' || json.Valid(body) {
		// One JSON document: an object, an array, or a wrapper. A body that
		// is not one is NDJSON, a record a line.
		r = NewJSONReader(bytes.NewReader(body), ro)
	} else {
		r = NewNDJSONReader(bytes.NewReader(body), ro)
	}
	rb := p.newRecordBuilder(job, source)
	if p.opts.Schema.Identity {
		sum := sha256.Sum256(body)
		rb.file = hex.EncodeToString(sum[:])
	}
	var (
		recs   []*kgo.Record
		reject []Rejection
		seen   int
	)
	// Every record counts against maxRecords, valid or not, and at most
	// MaxRejections are kept: a body of millions of bad lines costs what
	// a body of good ones does.
	refuse := func(r Rejection) {
		if len(reject) < MaxRejections {
			reject = append(reject, r)
		}
	}
	for {
		rec, err := r.Next()
		if err == nil || !errors.Is(err, io.EOF) {
			if seen++; seen > maxRecords {
				return nil, nil, fmt.Errorf("%w: more than %d in one request; send a file for bulk loads", ErrTooManyRecords, maxRecords)
			}
		}
		if err != nil {
			var re *RecordError
			if errors.As(err, &re) {
				refuse(Rejection{Job: job, Source: source, Line: re.Line, Offset: re.Offset, Stage: "decode", Reason: re.Reason, Raw: bytes.Clone(re.Raw), Size: re.Size})
				continue
			}
			if errors.Is(err, io.EOF) {
				break
			}
			var se *SyntaxError
			if errors.As(err, &se) {
				return nil, append(reject, Rejection{Job: job, Source: source, Line: se.Line, Stage: "decode", Reason: se.Error()}), nil
			}
			return nil, reject, err
		}
		kr, reason := rb.build(rec, rec.Line, rec.Offset)
		if kr == nil {
			refuse(Rejection{Job: job, Source: source, Line: rec.Line, Offset: rec.Offset, Stage: "validate", Reason: reason, Raw: bytes.Clone(rec.JSON)})
			continue
		}
		if len(reject) == 0 {
			recs = append(recs, kr)
		}
	}
	if len(reject) > 0 || len(recs) == 0 {
		if len(recs) == 0 && len(reject) == 0 {
			reject = append(reject, Rejection{Job: job, Source: source, Line: 1, Stage: "decode", Reason: "no records in the body"})
		}
		return nil, reject, nil
	}
	if _, err := p.describeTopic(ctx); err != nil {
		return nil, nil, err
	}
	out := make([]Produced, len(recs))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	wg.Add(len(recs))
	for i, kr := range recs {
		p.cl.Produce(ctx, kr, func(rec *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = unavailable{fmt.Errorf("produce to %s: %w", p.opts.Topic, err)}
				}
				mu.Unlock()
				return
			}
			out[i] = Produced{Partition: rec.Partition, Offset: rec.Offset}
		})
	}
	wg.Wait()
	if firstErr != nil {
		// Some may be on the topic: the client may send the request again,
		// and the table keeps one row per key.
		return nil, nil, firstErr
	}
	if pt := p.opts.Partitioner; pt != nil && pt.Mismatch.Load() != 0 {
		return nil, nil, pt.CheckMismatch(p.opts.Topic)
	}
	return out, nil, nil
}
