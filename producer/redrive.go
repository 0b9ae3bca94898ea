package producer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"skuflow/internal/clickhouse"
	"skuflow/jobs"
)

// A job's rejected records come in two kinds, told apart by the row:
//
//   - rejected by the loader (topic empty): raw is the input's own text, a
//     CSV row (without its line end) or a JSON record. Rows written before
//     raw_size was kept hold, for a CSV row that failed validation, the
//     row's JSON instead.
//   - set aside by the processor (topic set; stage decode, key or insert):
//     raw is the value on the topic, the record's compact JSON; for a CSV
//     input, an object of the header's columns, each a string.
//
// RawWriter writes both as one input of the job's own format: for a CSV
// job the header line, then each row as it was, or, for a JSON record, the
// CSV row that reads back as the same record; for a JSON or NDJSON job one
// JSON record per line. A record that cannot be written as it was (raw cut
// when stored, or no way to put it in that format) is not written but kept
// in Unfit, with why: nothing is left out unsaid.

// RawWriter writes a job's rejected records as an input that reads back as
// the same records (see above). Rows go in one at a time, in the order
// Store.ErrorsAfter gives them.
type RawWriter struct {
	w     *bufio.Writer
	job   string
	csv   bool
	names []string // the CSV header's column names
	// identity: the type keys records by their place in the input, which
	// only the loader's rows keep.
	identity bool

	line   int64 // the line the next record starts on
	offset int64 // the byte offset it starts at
	last   clickhouse.ErrorRow
	places []rawPlace
	buf    []byte

	// Written counts the records written; Unfit holds the others.
	Written int64
	Unfit   []Unfit
}

// Unfit is a rejected record RawWriter could not write as it was.
type Unfit struct {
	Row clickhouse.ErrorRow
	Why string
}

func (u Unfit) String() string {
	return fmt.Sprintf("%s:%d (%s): %s", u.Row.Source, u.Row.Line, u.Row.Stage, u.Why)
}

// rawPlace ties a line of the written input to the record's place in the
// job's input; offset is -1 for a record the processor set aside, whose
// byte offset in the input is not kept.
type rawPlace struct{ line, origLine, origOffset int64 }

// ErrNoHeader is returned for a CSV job whose header line was not kept
// (pushed by a release before it was).
var ErrNoHeader = errors.New("the job's CSV header line was not kept")

// maxUnfitRaw bounds the raw an Unfit keeps: the whole stored raw stays in
// the earlier job's rows.
const maxUnfitRaw = 1 << 10

// NewRawWriter returns a writer of job j's rejected records to w. For a
// CSV job it writes the header line first.
func NewRawWriter(w io.Writer, j *jobs.Job, identity bool) (*RawWriter, error) {
	rw := &RawWriter{w: bufio.NewWriterSize(w, 64<<10), job: j.ID, csv: j.Format == string(FormatCSV), identity: identity, line: 1}
	if !rw.csv {
		return rw, nil
	}
	if j.CSVHeader == "" {
		return nil, fmt.Errorf("job %s: %w (it was pushed by a release before it was): its rejected rows cannot be written under it; 'loader errors %s --json' shows them",
			j.ID, ErrNoHeader, j.ID)
	}
	cr, err := NewCSVReader(strings.NewReader(j.CSVHeader+"\n"), ReaderOptions{MaxRecordBytes: len(j.CSVHeader) + 1})
	if err != nil {
		return nil, fmt.Errorf("job %s: read its CSV header line: %w", j.ID, err)
	}
	rw.names = cr.Header()
	rw.put([]byte(j.CSVHeader))
	return rw, nil
}

// Write writes row e's record, or keeps it in Unfit. A row that repeats
// the one before (the processor set the record aside twice, in two months
// of ingest_errors) is the same record, written once.
func (rw *RawWriter) Write(e clickhouse.ErrorRow) error {
	if rw.Written+int64(len(rw.Unfit)) > 0 && samePlace(rw.last, e) {
		return nil
	}
	rw.last = e
	rec, why := rw.record(e)
	if why != "" {
		u := Unfit{Row: e, Why: why}
		u.Row.Raw = bytes.Clone(e.Raw[:min(len(e.Raw), maxUnfitRaw)])
		u.Row.Size = max(e.Size, int64(len(e.Raw)))
		rw.Unfit = append(rw.Unfit, u)
		return nil
	}
	orig := e.Offset
	if e.Topic != "" {
		orig = -1
	}
	rw.places = append(rw.places, rawPlace{rw.line, e.Line, orig})
	rw.Written++
	return rw.put(rec)
}

// put writes one record and its line end.
func (rw *RawWriter) put(rec []byte) error {
	end := "\n"
	if bytes.HasSuffix(rec, []byte{'\r'}) {
		// A CR ending a CSV row is its data: alone before LF it would be
		// read as part of the line end.
		end = "\r\n"
	}
	rw.line += 1 + int64(bytes.Count(rec, []byte{'\n'}))
	rw.offset += int64(len(rec) + len(end))
	if _, err := rw.w.Write(rec); err != nil {
		return err
	}
	_, err := rw.w.WriteString(end)
	return err
}

// Flush writes what is buffered.
func (rw *RawWriter) Flush() error { return rw.w.Flush() }

// Place maps a line of the written input, and a byte offset in it, to the
// record's line and offset in the job's input (the offset stays its own
// for a record the processor set aside).
func (rw *RawWriter) Place(line, offset int64) (int64, int64) {
	i := sort.Search(len(rw.places), func(i int) bool { return rw.places[i].line >= line })
	if i == len(rw.places) || rw.places[i].line != line {
		return line, offset
	}
	p := rw.places[i]
	if p.origOffset < 0 {
		return p.origLine, offset
	}
	return p.origLine, p.origOffset
}

func samePlace(a, b clickhouse.ErrorRow) bool {
	return a.Source == b.Source && a.Line == b.Line && a.Stage == b.Stage && a.Topic == b.Topic &&
		a.Partition == b.Partition && a.Offset == b.Offset
}

// record returns what to write for e, or why it cannot be written.
func (rw *RawWriter) record(e clickhouse.ErrorRow) ([]byte, string) {
	if clickhouse.RawTruncated(e) {
		if e.Size > 0 {
			return nil, fmt.Sprintf("only the first %d of its %d bytes were kept: it cannot be written whole; fix it in the source file", len(e.Raw), e.Size)
		}
		return nil, fmt.Sprintf("only its first %d bytes were kept: it cannot be written whole; fix it in the source file", len(e.Raw))
	}
	if rw.identity && e.Topic != "" {
		return nil, "its type is identified by the record's place in its file, which is not kept for a record the processor set aside; push the file again"
	}
	if rw.csv {
		if e.Topic == "" && (e.Stage == "decode" || e.Stage == "validate" && e.Size > 0) {
			return e.Raw, "" // the row as it was
		}
		row, err := CSVRowOf(rw.buf[:0], rw.names, e.Raw)
		if err != nil {
			return nil, "it cannot be written as a CSV row of the job's header: " + err.Error()
		}
		rw.buf = row
		return row, ""
	}
	if json.Valid(e.Raw) {
		var b bytes.Buffer
		_ = json.Compact(&b, e.Raw)
		return b.Bytes(), ""
	}
	if bytes.IndexByte(e.Raw, '\n') >= 0 {
		return nil, "it is not JSON and spans several lines: it cannot be one NDJSON line"
	}
	return e.Raw, "" // not JSON: written as it was, to be rejected again for it
}

// CSVRowOf appends to dst the CSV row that CSVReader, under a header of
// names, reads as the record value: a JSON object whose members are the
// names, in order, each a string (what CSVReader makes of a row). Every
// field is quoted, so commas, quotes and line breaks in it stay data.
func CSVRowOf(dst []byte, names []string, value []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(value))
	tok, err := d.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	for i := 0; d.More(); i++ {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		name, _ := tok.(string)
		if i >= len(names) || name != names[i] {
			return nil, fmt.Errorf("member %d is %q, the header's column %d is %s", i+1, name, i+1, columnName(names, i))
		}
		tok, err = d.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("member %q is not a string", name)
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, strings.ReplaceAll(v, `"`, `""`)...)
		dst = append(dst, '"')
		if i == len(names)-1 && !d.More() {
			if _, err := d.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %v", err)
			}
			if _, err := d.Token(); err != io.EOF {
				return nil, errors.New("text after the object")
			}
			return dst, nil
		}
	}
	return nil, fmt.Errorf("it has fewer members than the header's %d columns", len(names))
}

func columnName(names []string, i int) string {
	if i < len(names) {
		return fmt.Sprintf("%q", names[i])
	}
	return fmt.Sprintf("missing (the header has %d)", len(names))
}

// WriteRejected writes job j's rejected records, read from store a page at
// a time, through rw: the whole of `loader errors --raw`, and the input of
// a re-drive.
func WriteRejected(ctx context.Context, store *jobs.Store, j *jobs.Job, rw *RawWriter) error {
	var after *jobs.ErrorPlace
	for {
		rows, _, err := store.ErrorsAfter(ctx, j.ID, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range rows {
			if err := rw.Write(e); err != nil {
				return err
			}
		}
		if len(rows) < 1000 {
			return rw.Flush()
		}
		p := jobs.Place(rows[len(rows)-1])
		after = &p
	}
}

// RedrivenError refuses a re-drive of a job that was re-driven already:
// its records that succeeded then must not be pushed twice.
type RedrivenError struct {
	Old string
	By  *jobs.Job
}

func (e *RedrivenError) Error() string {
	return fmt.Sprintf("job %s was re-driven already by job %s (%s, started %s): its records that were loaded then are not pushed twice; "+
		"those rejected again are job %s's ('loader errors %s'): re-drive them with 'loader redrive %s'",
		e.Old, e.By.ID, e.By.State, e.By.Started.Local().Format("2006-01-02 15:04:05"), e.By.ID, e.By.ID, e.By.ID)
}

// ErrNothingToRedrive is returned for a job that rejected no records.
var ErrNothingToRedrive = errors.New("nothing to re-drive")

// Redrive pushes job old's rejected records again, as a new job whose row
// names old (Job.RedriveOf), validated against p's schema (the current
// declaration of old's type) and produced to p's topic. The records are
// written to a temporary file in dir (RawWriter) and pushed from it like
// any file: progress, the job's counts and rows, rejected records and the
// refusal of content a job loaded already all work as for a push. A
// record rejected again is stored under the new job at its place in old's
// input; one that cannot be written out (see Unfit) is rejected by the
// new job, stage "redrive", with why.
//
// A job re-driven already by a job that did not fail is refused
// (*RedrivenError): what failed again is that job's to re-drive. o.Redrive
// is set by Redrive.
func (p *Pusher) Redrive(ctx context.Context, old *jobs.Job, dir string, o PushOptions) (*Result, error) {
	store := p.opts.Jobs
	if store == nil {
		return nil, errors.New("re-drive: no job store")
	}
	by, err := store.Redrives(ctx, old.ID)
	if err != nil {
		return nil, err
	}
	for _, j := range by {
		if j.Blocks() || j.State == jobs.Producing && !j.Stalled(p.opts.Now()) {
			return nil, &RedrivenError{Old: old.ID, By: j}
		}
	}
	if old.Topic != p.opts.Topic {
		return nil, fmt.Errorf("job %s went to topic %s, and type %s is loaded from topic %s now: its records are not re-driven to another topic",
			old.ID, old.Topic, p.opts.Schema.Name, p.opts.Topic)
	}
	if _, total, err := store.Errors(ctx, old.ID, 0); err != nil {
		return nil, err
	} else if total == 0 {
		return nil, fmt.Errorf("job %s rejected no records: %w", old.ID, ErrNothingToRedrive)
	}

	f, err := os.CreateTemp(dir, "skuflow-redrive-*")
	if err != nil {
		return nil, fmt.Errorf("re-drive %s: %w", old.ID, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rw, err := NewRawWriter(f, old, p.opts.Schema.Identity)
	if err != nil {
		return nil, err
	}
	if err := WriteRejected(ctx, store, old, rw); err != nil {
		return nil, fmt.Errorf("re-drive %s: write its rejected records to %s: %w", old.ID, f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("re-drive %s: %w", old.ID, err)
	}
	src, err := FileSource(f.Name(), old.Source)
	if err != nil {
		return nil, err
	}
	rd := &RedriveOptions{Of: old.ID, Place: rw.Place, Format: FormatNDJSON}
	if rw.csv {
		rd.Format = FormatCSV
	}
	if p.opts.Schema.Identity {
		rd.File = old.SHA256
	}
	for _, u := range rw.Unfit {
		rd.Rejections = append(rd.Rejections, Rejection{Source: old.Source, Line: u.Row.Line, Offset: u.Row.Offset, Stage: "redrive",
			Reason: "not re-driven: " + u.Why + " (the stored record: 'loader errors " + old.ID + "')", Raw: u.Row.Raw, Size: u.Row.Size})
	}
	if rw.Written == 0 {
		// Nothing to read but the rejections: no content to compare.
		o.Force = true
	}
	o.Redrive = rd
	return p.Push(ctx, src, o)
}
