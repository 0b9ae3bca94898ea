package producer

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"skuflow/internal/jsonscan"
	"skuflow/schemas"
)

// Buffer sizes of the JSON and NDJSON readers. The buffer starts small
// enough to be cheap for small inputs and grows, only while one record needs
// it, up to MaxRecordBytes plus some slack, so that a record of the largest
// allowed size still fits with the bytes around it.
const (
	jsonBufSize  = 256 << 10
	jsonBufSlack = 4 << 10
)

// jsonBOM is the UTF-8 byte order mark; a reader skips it at the start.
const jsonBOM = "\xEF\xBB\xBF"

// NewJSONReader returns a Reader of one JSON document (RFC 8259, validated
// strictly: invalid UTF-8 in a string is a syntax error too). A leading UTF-8
// byte order mark is skipped. The document is one of:
//
//   - an array: its elements are the records;
//   - a wrapper object holding the array of records, such as
//     {"records": [{...}, ...], "count": 3};
//   - an object that is itself one record.
//
// An object that has a member named by one of opts.KeyFields (at its top
// level, before or after any array) is one record: {"sku": "a", "parts":
// [{...}]} and {"bundle": [{...}], "sku": "B1"} are records. Otherwise the
// first member whose value is an array whose first element is an object
// makes it a wrapper of that array's records. An empty array, or an array
// whose first element is not an object, decides nothing; an object that
// ends without a key field or an array of records is one record (so
// {"records": []} is one record, which validation then rejects for its
// missing key, rather than nothing at all).
//
// To decide while streaming, the reader looks at most MaxRecordBytes into
// the object (a record is never longer), holding that much: a key field
// found there makes it a record, the end of the object or of that window
// without one makes it a wrapper. The members after the records array are
// then checked for syntax, one at a time (each at most MaxRecordBytes), and
// dropped. A later member named by a key field (possible only in an object
// longer than MaxRecordBytes) or holding a second array of records ends the
// input with a *SyntaxError naming it: what is ambiguous is refused, and
// nothing is silently dropped.
//
// An element (or document) that is valid JSON but not an object is a
// *RecordError ("record is a number, not an object") and reading goes on.
// Any syntax error ends the input with a *SyntaxError giving its line,
// column and byte offset; every later call returns it again. So does a
// record longer than MaxRecordBytes, since the rest of the document cannot
// be framed without reading it. A document with no value at all (empty, or
// white space only) is a *SyntaxError. Arrays and objects may nest at most
// 1000 deep.
//
// Line numbers count from 1; columns count bytes from 1, not counting a
// byte order mark; offsets count bytes of the input from 0, counting it.
func NewJSONReader(r io.Reader, opts ReaderOptions) Reader {
	return newJSONReader(r, opts, jsonBufSize)
}

// NewNDJSONReader returns a Reader of newline-delimited JSON: one object per
// line, lines ended by LF or CRLF, the last one maybe by the end of input. A
// leading UTF-8 byte order mark is skipped, and so are blank lines (white
// space only). A line that is not valid JSON, holds more than one value, or
// holds a value that is not an object is a *RecordError whose reason names
// the column of the problem, and reading goes on with the next line. So is a
// line longer than MaxRecordBytes; the reader then skips to the next newline
// without holding the line.
func NewNDJSONReader(r io.Reader, opts ReaderOptions) Reader {
	return newNDJSONReader(r, opts, jsonBufSize)
}

// jsonInput is the buffered input of the JSON and NDJSON readers: buf[pos:n]
// is read but not consumed. A record being scanned is kept whole in buf.
type jsonInput struct {
	r     io.Reader
	buf   []byte
	pos   int
	n     int
	base  int64 // offset in the input of buf[0]
	eof   bool  // no more data: buf[n] is the end of the input
	rerr  error // the read error that ended the input; nil at io.EOF
	limit int   // the largest the buffer may grow
	// greedy makes fill read at least as many bytes as it keeps. The JSON
	// reader scans a record again from its start after each fill, so its
	// fills must grow geometrically; the NDJSON reader never scans a byte
	// twice, and takes what one read gives, so that a line is handled as
	// soon as it is whole even on a slow pipe.
	greedy bool

	// Lines are counted lazily, when a position needs its line.
	line      int64 // line of buf[linePos]
	linePos   int
	lineStart int64 // offset in the input where that line starts
}

func (in *jsonInput) init(r io.Reader, maxRecord, size int) {
	in.r = r
	in.limit = maxRecord + jsonBufSlack
	in.buf = make([]byte, min(size, in.limit))
	in.line = 1
}

// jsonMaxRecord returns the record size limit of opts.
func jsonMaxRecord(opts ReaderOptions) int {
	if opts.MaxRecordBytes <= 0 {
		return DefaultMaxRecordBytes
	}
	return opts.MaxRecordBytes
}

// fill drops buf[:keep], grows the buffer when what is kept fills more than
// half of it, and reads more: once, or when greedy until it has at least as
// many new bytes as it kept (or the buffer is full, or the input ends), so
// that a record scanned again after each fill costs at most about twice its
// size.
func (in *jsonInput) fill(keep int) {
	if in.eof {
		return
	}
	if keep > 0 {
		in.n = copy(in.buf, in.buf[keep:in.n])
		in.pos -= keep
		in.linePos -= keep
		in.base += int64(keep)
	}
	if in.n > len(in.buf)/2 && len(in.buf) < in.limit {
		nb := make([]byte, min(2*len(in.buf), in.limit))
		copy(nb, in.buf[:in.n])
		in.buf = nb
	}
	want := 1
	if in.greedy {
		want = max(in.n, 1)
	}
	for got, empty := 0, 0; got < want && in.n < len(in.buf); {
		m, err := in.r.Read(in.buf[in.n:])
		in.n += m
		got += m
		if err != nil {
			in.eof = true
			if err != io.EOF {
				in.rerr = err
			}
			return
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty >= 100 {
			in.eof = true
			in.rerr = io.ErrNoProgress
			return
		}
	}
}

// lines counts the lines up to buf[p].
func (in *jsonInput) lines(p int) {
	if p <= in.linePos {
		return
	}
	seg := in.buf[in.linePos:p]
	if k := bytes.Count(seg, []byte{'\n'}); k > 0 {
		in.line += int64(k)
		in.lineStart = in.base + int64(in.linePos+bytes.LastIndexByte(seg, '\n')+1)
	}
	in.linePos = p
}

// skipBOM skips a byte order mark at the start of the input. It reports
// whether a read error cut the input inside what may be one.
func (in *jsonInput) skipBOM() (cut bool) {
	for in.n < len(jsonBOM) && !in.eof {
		in.fill(0)
	}
	if bytes.HasPrefix(in.buf[:in.n], []byte(jsonBOM)) {
		in.pos = len(jsonBOM)
		in.linePos = in.pos
		in.lineStart = int64(in.pos)
	}
	return in.rerr != nil && in.n < len(jsonBOM) && strings.HasPrefix(jsonBOM, string(in.buf[:in.n]))
}

// jsonState is where a jsonReader is in the document.
type jsonState uint8

const (
	jsonStart      jsonState = iota
	jsonArrayFirst           // after '[': an element or ']'
	jsonElem                 // at an element
	jsonAfterElem            // after an element: ',' or ']'
	jsonObject               // at a top-level '{': wrapper or record?
	jsonRest                 // after the records array of a wrapper
	jsonScalar               // at a top-level value that is not an object or array
	jsonAfterTop             // after the top-level value: only white space
)

type jsonReader struct {
	in    jsonInput
	sc    jsonscan.Scanner
	max   int
	keys  []string
	state jsonState
	depth int // containers around a record: 1 in an array, 2 in a wrapper
	// wrapped is set once the top-level object is a wrapper; wrap is the
	// name of its member holding the records.
	wrapped bool
	wrap    []byte
	err     error // sticky: io.EOF or what ended the input
	rec     Record
}

func newJSONReader(r io.Reader, opts ReaderOptions, bufSize int) *jsonReader {
	jr := &jsonReader{max: jsonMaxRecord(opts), keys: opts.KeyFields}
	jr.in.init(r, jr.max, bufSize)
	jr.in.greedy = true
	jr.sc.End = "input"
	return jr
}

// Next implements Reader.
func (r *jsonReader) Next() (*Record, error) {
	in := &r.in
	for r.err == nil {
		switch r.state {
		case jsonStart:
			if in.skipBOM() {
				return nil, r.ioErr()
			}
			if !r.skipWS() {
				return nil, r.endErr("", "unexpected end of input: no JSON value")
			}
			switch in.buf[in.pos] {
			case '[':
				in.pos++
				r.depth = 1
				r.state = jsonArrayFirst
			case '{':
				r.state = jsonObject
			default:
				r.state = jsonScalar
			}
		case jsonArrayFirst:
			if !r.skipWS() {
				return nil, r.endErr("array", "")
			}
			r.state = jsonElem
			if in.buf[in.pos] == ']' {
				in.pos++
				r.state = r.afterArray()
			}
		case jsonElem:
			r.state = jsonAfterElem
			return r.element()
		case jsonAfterElem:
			if !r.skipWS() {
				return nil, r.endErr("array", "")
			}
			switch in.buf[in.pos] {
			case ',':
				in.pos++
				if !r.skipWS() {
					return nil, r.endErr("array", "")
				}
				r.state = jsonElem
			case ']':
				in.pos++
				r.state = r.afterArray()
			default:
				return nil, r.badChar(in.pos, "after array element")
			}
		case jsonObject:
			if rec, err := r.object(); rec != nil || err != nil {
				return rec, err
			}
		case jsonRest:
			if !r.skipWS() {
				return nil, r.endErr("object", "")
			}
			switch in.buf[in.pos] {
			case '}':
				in.pos++
				r.state = jsonAfterTop
			case ',':
				if err := r.member(); err != nil {
					return nil, err
				}
			default:
				return nil, r.badChar(in.pos, "after object key:value pair")
			}
		case jsonScalar:
			r.depth = 0
			r.state = jsonAfterTop
			return r.element()
		case jsonAfterTop:
			if r.skipWS() {
				return nil, r.badChar(in.pos, "after top-level value")
			}
			if in.rerr != nil {
				return nil, r.ioErr()
			}
			r.err = io.EOF
		}
	}
	return nil, r.err
}

func (r *jsonReader) afterArray() jsonState {
	if r.wrapped {
		return jsonRest
	}
	return jsonAfterTop
}

// refill keeps buf[keep:] and reads more.
func (r *jsonReader) refill(keep int) {
	r.in.lines(keep)
	r.in.fill(keep)
}

// skipWS skips white space between records, reading as needed, and reports
// whether a byte follows it.
func (r *jsonReader) skipWS() bool {
	in := &r.in
	for {
		for in.pos < in.n && jsonscan.IsSpace(in.buf[in.pos]) {
			in.pos++
		}
		if in.pos < in.n {
			return true
		}
		if in.eof {
			return false
		}
		r.refill(in.pos)
	}
}

// element reads the record (or non-object value) at in.pos.
func (r *jsonReader) element() (*Record, error) {
	in := &r.in
	s := &r.sc
	for {
		start := in.pos
		obj := in.buf[start] == '{'
		s.Reset(in.buf[:in.n], in.eof, obj)
		var end int
		if obj {
			end = s.Record(start, r.depth)
		} else {
			end = s.Value(start, r.depth)
		}
		if end < 0 {
			if !s.More() {
				return nil, r.scanErr()
			}
			if in.n-start > r.max {
				return nil, r.tooBig(start, "record", "")
			}
			r.refill(start)
			continue
		}
		if end-start > r.max {
			return nil, r.tooBig(start, "record", "")
		}
		if !obj && end == in.n && in.rerr != nil {
			// A number that a read error may have cut.
			return nil, r.ioErr()
		}
		in.pos = end
		in.lines(start)
		line, off := in.line, in.base+int64(start)
		if !obj {
			raw := in.buf[start:end:end]
			return nil, &RecordError{Line: line, Offset: off, Reason: "record is " + schemas.Kind(raw) + ", not an object", Raw: raw}
		}
		r.rec.JSON, r.rec.Fields = s.Finish(start, end, r.rec.Fields)
		r.rec.Line, r.rec.Offset = line, off
		return &r.rec, nil
	}
}

// object finds whether the top-level object at in.pos is a wrapper or a
// record. It returns the record, or sets the state to read the wrapper's
// records.
func (r *jsonReader) object() (*Record, error) {
	in := &r.in
	s := &r.sc
	for {
		start := in.pos
		// Only the object's first MaxRecordBytes decide what it is, so
		// that the answer does not depend on how the input was read.
		lim := min(in.n, start+r.max)
		s.Reset(in.buf[:lim], in.eof && lim == in.n, false)
		d := r.detect(in.buf[:lim], start)
		switch {
		case d.at < 0 && d.cand >= 0 && (!s.More() || lim-start >= r.max):
			// An array of records, and no key field as far as the
			// object can be one record: a wrapper. A syntax error after
			// the array is found again, in its place, while streaming.
			r.wrapper(d.cand)
			return nil, nil
		case d.at < 0 && s.More():
			if lim-start >= r.max {
				return nil, r.tooBig(start, "top-level object", " before any array of records")
			}
			r.refill(start)
		case d.at < 0:
			return nil, r.scanErr()
		case d.cand >= 0 && !d.record:
			r.wrapper(d.cand)
			return nil, nil
		default:
			// One record: scan it again, as a record.
			r.depth = 0
			r.state = jsonAfterTop
			return r.element()
		}
	}
}

// wrapper makes the top-level object a wrapper whose first record is at
// buf[at].
func (r *jsonReader) wrapper(at int) {
	r.in.pos = at
	r.wrapped = true
	r.depth = 2
	r.state = jsonElem
}

// detection is what detect found out about a top-level object.
type detection struct {
	// at is the index after the object, or after the first key field
	// member's name when record is set; -1 when the scan stopped early.
	at     int
	record bool // a member is named by a key field
	// cand is the index of the first record of the first member whose
	// value is an array whose first element is an object, or -1.
	cand int
}

// detect scans the object at d[start], d being what the scanner was reset
// with, member by member until a member is
// named by a key field (a record), or until it ends: a wrapper if a member
// held an array of records, else a record.
func (r *jsonReader) detect(d []byte, start int) detection {
	s := &r.sc
	det := detection{at: -1, cand: -1}
	i := s.SkipSpace(start + 1)
	if i >= len(d) {
		s.EndOf(i, "object")
		return det
	}
	if d[i] == '}' {
		det.at = i + 1
		return det
	}
	for {
		if i = s.Key(i); i < 0 {
			return det
		}
		if r.isKey(s.KeyName()) {
			det.at, det.record = i, true
			return det
		}
		if i >= len(d) {
			s.EndOf(i, "object")
			return det
		}
		if d[i] == '[' && det.cand < 0 {
			j := s.SkipSpace(i + 1)
			if j >= len(d) {
				s.EndOf(j, "array")
				return det
			}
			if d[j] == '{' {
				r.wrap = append(r.wrap[:0], s.KeyName()...)
				det.cand = j
			}
		}
		if i = s.Value(i, 1); i < 0 {
			return det
		}
		if i = s.SkipSpace(i); i >= len(d) {
			s.EndOf(i, "object")
			return det
		}
		switch d[i] {
		case ',':
			i = s.SkipSpace(i + 1)
		case '}':
			det.at = i + 1
			return det
		default:
			s.Bad(i, "after object key:value pair")
			return det
		}
	}
}

func (r *jsonReader) isKey(name []byte) bool {
	for _, k := range r.keys {
		if string(name) == k {
			return true
		}
	}
	return false
}

// member checks the syntax of a member of the wrapper object after its
// records array, at the ',' at in.pos, and skips it.
func (r *jsonReader) member() error {
	in := &r.in
	s := &r.sc
	for {
		start := in.pos
		d := in.buf[:in.n]
		s.Reset(d, in.eof, false)
		k := s.SkipSpace(start + 1)
		i := s.Key(k)
		if i >= 0 && r.isKey(s.KeyName()) {
			// Within MaxRecordBytes, object would have read the object as
			// one record.
			return r.syntaxErr(k, fmt.Sprintf("member %q is a key field, so the object around the array of records in %q may be one record, but it is longer than %d bytes (MaxRecordBytes): refused rather than guessed", s.KeyName(), r.wrap, r.max))
		}
		if i >= 0 && i < len(d) && d[i] == '[' {
			if j := s.SkipSpace(i + 1); j >= len(d) {
				i = s.EndOf(j, "array")
			} else if d[j] == '{' {
				return r.syntaxErr(i, fmt.Sprintf("member %q holds a second array of records after %q: a wrapper object may hold only one", r.sc.KeyName(), r.wrap))
			}
		}
		if i >= 0 {
			i = s.Value(i, 1)
		}
		if i >= 0 {
			if i-start > r.max {
				return r.tooBig(start, "member of the wrapper object", "")
			}
			in.pos = i
			return nil
		}
		if !s.More() {
			return r.scanErr()
		}
		if in.n-start > r.max {
			return r.tooBig(start, "member of the wrapper object", "")
		}
		r.refill(start)
	}
}

// syntaxErr ends the input with a syntax error at buf[p].
func (r *jsonReader) syntaxErr(p int, msg string) error {
	in := &r.in
	in.lines(p)
	off := in.base + int64(p)
	r.err = &SyntaxError{Line: in.line, Column: off - in.lineStart + 1, Offset: off, Msg: msg}
	return r.err
}

// scanErr ends the input with the error the scanner found. At the end of
// input, a read error is the cause, not the syntax.
func (r *jsonReader) scanErr() error {
	pos, msg := r.sc.Err()
	if pos >= r.in.n && r.in.rerr != nil {
		return r.ioErr()
	}
	return r.syntaxErr(pos, msg)
}

func (r *jsonReader) badChar(p int, context string) error {
	in := &r.in
	for !in.eof && !utf8.FullRune(in.buf[p:in.n]) {
		// Read the rest of the character, to name it.
		r.refill(p)
		p = 0
	}
	return r.syntaxErr(p, "invalid character "+jsonscan.Char(in.buf[p:in.n])+" "+context)
}

// endErr ends the input where it ended early: with the read error that ended
// it, or with a syntax error (msg, or "unexpected end of input in what").
func (r *jsonReader) endErr(what, msg string) error {
	if r.in.rerr != nil {
		return r.ioErr()
	}
	if msg == "" {
		msg = "unexpected end of input in " + what
	}
	return r.syntaxErr(r.in.n, msg)
}

func (r *jsonReader) ioErr() error {
	r.err = fmt.Errorf("read JSON input after byte %d: %w", r.in.base+int64(r.in.n), r.in.rerr)
	return r.err
}

func (r *jsonReader) tooBig(start int, what, where string) error {
	return r.syntaxErr(start, fmt.Sprintf("%s longer than %d bytes (MaxRecordBytes)%s: the rest of the document cannot be read", what, r.max, where))
}

type ndjsonReader struct {
	in      jsonInput
	sc      jsonscan.Scanner
	max     int
	started bool  // the byte order mark is checked
	line    int64 // line of buf[pos]
	clean   int   // buf[pos:pos+clean] holds no newline
	skip    bool  // in a line too long: skip to its end
	err     error // sticky: io.EOF or what ended the input
	rec     Record
}

func newNDJSONReader(r io.Reader, opts ReaderOptions, bufSize int) *ndjsonReader {
	nr := &ndjsonReader{max: jsonMaxRecord(opts), line: 1}
	nr.in.init(r, nr.max, bufSize)
	nr.sc.End = "line"
	return nr
}

// Next implements Reader.
func (r *ndjsonReader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	in := &r.in
	if !r.started {
		r.started = true
		if in.skipBOM() {
			return nil, r.end()
		}
	}
	for {
		start := in.pos
		k := bytes.IndexByte(in.buf[start+r.clean:in.n], '\n')
		if r.skip {
			if k < 0 {
				in.pos = in.n
				if in.eof {
					return nil, r.end()
				}
				in.fill(in.pos)
				continue
			}
			in.pos = start + r.clean + k + 1
			r.clean = 0
			r.line++
			r.skip = false
			continue
		}
		end, next := start+r.clean+k, start+r.clean+k+1
		if k < 0 {
			if in.n-start > r.max {
				// Too long: report it now and skip the rest later.
				r.skip = true
				r.clean = 0
				in.pos = in.n
				return nil, r.tooLong(start, in.n, r.line)
			}
			if !in.eof {
				r.clean = in.n - start
				in.fill(start)
				continue
			}
			if start == in.n || in.rerr != nil {
				// The end, or a last line that a read error may have cut.
				return nil, r.end()
			}
			end, next = in.n, in.n
		}
		r.clean = 0
		in.pos = next
		line := r.line
		r.line++
		if end-start > r.max {
			return nil, r.tooLong(start, end, line)
		}
		if rec, err := r.parse(start, end, line); rec != nil || err != nil {
			return rec, err
		}
	}
}

// parse reads the line buf[start:end]; a blank line gives neither a record
// nor an error.
func (r *ndjsonReader) parse(start, end int, line int64) (*Record, error) {
	d := r.in.buf[start:end]
	i := 0
	for i < len(d) && jsonscan.IsSpace(d[i]) {
		i++
	}
	if i == len(d) {
		return nil, nil
	}
	js, fields, err := r.sc.Object(d, r.rec.Fields)
	off := r.in.base + int64(start+i)
	raw := bytes.TrimSuffix(d, []byte{'\r'})
	switch e := err.(type) {
	case nil:
	case *jsonscan.SyntaxError:
		return nil, &RecordError{Line: line, Offset: off, Raw: raw[:len(raw):len(raw)],
			Reason: fmt.Sprintf("invalid JSON at column %d: %s", e.Offset+1, e.Msg)}
	case *jsonscan.NotObjectError:
		return nil, &RecordError{Line: line, Offset: off, Raw: raw[i:len(raw):len(raw)],
			Reason: "record is " + e.Kind + ", not an object"}
	default:
		return nil, err
	}
	r.rec.JSON, r.rec.Fields = js, fields
	r.rec.Line, r.rec.Offset = line, off
	return &r.rec, nil
}

func (r *ndjsonReader) tooLong(start, end int, line int64) error {
	raw := r.in.buf[start:end:end]
	if len(raw) > r.max {
		raw = raw[:r.max:r.max]
	}
	// Only the line's first bytes are known: its size is at least one
	// more than the limit.
	return &RecordError{Line: line, Offset: r.in.base + int64(start), Raw: raw, Size: int64(max(end-start, r.max+1)),
		Reason: fmt.Sprintf("line longer than %d bytes (MaxRecordBytes)", r.max)}
}

// end is the end of the input: io.EOF, or the read error that ended it.
func (r *ndjsonReader) end() error {
	r.err = io.EOF
	if r.in.rerr != nil {
		r.err = fmt.Errorf("read NDJSON input after byte %d: %w", r.in.base+int64(r.in.n), r.in.rerr)
	}
	return r.err
}
