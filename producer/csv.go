package producer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"

	"skuflow/schemas"
)

// CSVReader reads CSV with a header row (RFC 4180, comma separated) and
// turns each following row into a record: a JSON object whose members are the
// header's column names, in header order, each with its value as a JSON
// string.
//
// It is written by hand rather than on encoding/csv because that package
// turns a CRLF inside a quoted field into LF; here a quoted field's bytes are
// kept exactly. The rules, beyond RFC 4180:
//
//   - A record ends with LF or CRLF outside quotes; the last one may have no
//     line end. A lone CR is data, except as the very last byte of the input.
//   - A leading UTF-8 byte order mark is dropped (offsets still count it).
//   - Blank lines (nothing between two line ends) are skipped wherever they
//     are. A row holding only "" is not blank: it is one empty field.
//   - A quote opens a quoted field only as the field's first byte. Elsewhere
//     in an unquoted field it is a literal quote (12" pipe, 37°36'37.8"N), as
//     spreadsheets and Python's csv module read it.
//   - Fields are not trimmed; an empty field is the empty string. The header
//     row follows the same rules; its names must be non-empty and distinct.
//   - Record.Line counts every LF, those inside quoted fields too, so it is
//     the line an editor shows. Record.Offset is the row's first byte.
//
// A row that can be framed but not used is a *RecordError and reading goes
// on with the next row: a field count that differs from the header's, text
// after a closing quote ("abc"x), invalid UTF-8, or a row longer than
// MaxRecordBytes (its bytes without the line end). An oversized row is not
// buffered whole: once it outgrows the limit the reader keeps only its first
// bytes (for RecordError.Raw) and goes on framing it, quotes included,
// discarding its bytes, up to its line end outside quotes; the next row
// starts there. So a long quoted field with line breaks in it costs one
// RecordError, not one per line. A quoted field still open at the end of the
// input is a *SyntaxError naming the line of its opening quote: nothing after
// that quote can be framed.
//
// Memory stays bounded whatever the input: the buffer grows at most to
// MaxRecordBytes plus a little slack, and the JSON of a record to a small
// multiple of MaxRecordBytes.
type CSVReader struct {
	rd    io.Reader
	max   int // MaxRecordBytes
	limit int // largest the buffer may grow

	buf   []byte
	start int   // first byte of buf still needed: the current row's start
	end   int   // end of the bytes read into buf
	base  int64 // input offset of buf[0]
	eof   bool
	err   error // fatal, returned by every later call

	line      int64 // line of buf[start]
	lineStart int64 // input offset of the first byte of that line

	header []string
	names  [][]byte // header names, for Record.Fields
	prefix [][]byte // per column, what precedes its value: `"name":"`, or `,"name":"`

	// The current row.
	out       []byte // its JSON
	spans     []int  // start and end in out of each field's JSON string
	spanLimit int    // how many fields' spans to keep
	nfield    int
	bad       string // why the row cannot be used, "" if it can
	skipping  bool   // the row outgrew max: its bytes are being discarded
	rawStart  int    // the row's bytes in buf, for RecordError.Raw
	rawEnd    int
	rawPrefix []byte // the first bytes of an oversized row
	rawSize   int64  // an oversized row's full size
	headLine  []byte // the header row as read
	rowLine   int64
	rowOff    int64

	fields []schemas.Field
	rec    Record
}

// ErrEmptyCSV is returned by NewCSVReader for an input with no header row:
// nothing, or only a byte order mark and blank lines.
var ErrEmptyCSV = errors.New("empty CSV input: no header row")

const (
	// csvInitialBuffer is the buffer's first size: large enough that reads
	// are cheap, small enough that a small file costs little.
	csvInitialBuffer = 64 << 10
	// csvMaxRaw bounds RecordError.Raw for an oversized row.
	csvMaxRaw = 4 << 10
	// csvSlack is what the buffer may hold beyond MaxRecordBytes: room for a
	// row's line end, the lookahead byte after a quote or CR, and csvMaxRaw
	// bytes of a row that outgrows a small MaxRecordBytes.
	csvSlack = 2 * csvMaxRaw
)

// Parser states within a row.
const (
	csvFieldStart = iota // before a field's first byte
	csvUnquoted          // in an unquoted field
	csvQuoted            // in a quoted field
	csvAfterQuote        // after a quoted field's closing quote
)

// Bytes that a field's JSON string takes as they are. Control characters,
// quote and backslash need escaping; outside quotes a comma ends the field.
// Bytes from 0x80 are copied and checked as UTF-8 once the row is complete.
var (
	csvPlainQuoted   = csvPlainTable("")
	csvPlainUnquoted = csvPlainTable(",")
)

func csvPlainTable(special string) *[256]bool {
	var t [256]bool
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\' && !strings.ContainsRune(special, rune(c))
	}
	return &t
}

// NewCSVReader returns a reader of r, having read its header row. The header
// must name every column, each name once.
func NewCSVReader(r io.Reader, opts ReaderOptions) (*CSVReader, error) {
	maxBytes := opts.MaxRecordBytes
	switch {
	case maxBytes < 0:
		return nil, fmt.Errorf("MaxRecordBytes is %d: want 0 (the default) or more", maxBytes)
	case maxBytes == 0:
		maxBytes = DefaultMaxRecordBytes
	}
	cr := &CSVReader{
		rd:        r,
		max:       maxBytes,
		limit:     maxBytes + csvSlack,
		line:      1,
		spanLimit: math.MaxInt,
	}
	cr.buf = make([]byte, min(csvInitialBuffer, cr.limit))
	for cr.end < 3 && !cr.eof {
		if _, err := cr.fill(0); err != nil {
			return nil, err
		}
	}
	if bytes.HasPrefix(cr.buf[:cr.end], []byte("\xEF\xBB\xBF")) {
		cr.start, cr.lineStart = 3, 3
	}
	if err := cr.readHeader(); err != nil {
		return nil, err
	}
	return cr, nil
}

// readHeader reads the header row.
func (r *CSVReader) readHeader() error {
	err := r.row()
	if err == io.EOF {
		return ErrEmptyCSV
	}
	if err != nil {
		return err
	}
	if r.bad != "" {
		return fmt.Errorf("%w: line %d: %s", ErrHeader, r.rowLine, r.bad)
	}
	r.header = make([]string, r.nfield)
	seen := make(map[string]int, r.nfield)
	for i := range r.nfield {
		v := r.out[r.spans[2*i]:r.spans[2*i+1]]
		if !utf8.Valid(v) {
			return fmt.Errorf("%w: line %d: column %d: name is not valid UTF-8", ErrHeader, r.rowLine, i+1)
		}
		var name string
		if err := json.Unmarshal(v, &name); err != nil {
			return fmt.Errorf("%w: line %d: column %d: %v", ErrHeader, r.rowLine, i+1, err)
		}
		if name == "" {
			return fmt.Errorf("%w: line %d: column %d has an empty name", ErrHeader, r.rowLine, i+1)
		}
		if j, dup := seen[name]; dup {
			return fmt.Errorf("%w: line %d: column %d %q repeats the name of column %d", ErrHeader, r.rowLine, i+1, name, j+1)
		}
		seen[name] = i
		r.header[i] = name
	}
	r.names = make([][]byte, len(r.header))
	r.prefix = make([][]byte, len(r.header))
	for i, name := range r.header {
		r.names[i] = []byte(name)
		var p []byte
		if i > 0 {
			p = append(p, ',')
		}
		p = csvAppendString(p, r.names[i])
		r.prefix[i] = append(p, ':', '"')
	}
	r.spanLimit = len(r.header)
	r.fields = make([]schemas.Field, len(r.header))
	r.headLine = bytes.Clone(r.buf[r.rawStart:r.rawEnd])
	return nil
}

// Header returns the column names, in order.
func (r *CSVReader) Header() []string { return slices.Clone(r.header) }

// HeaderLine returns the header row as read, without its line end (nor a
// byte order mark before it).
func (r *CSVReader) HeaderLine() []byte { return r.headLine }

// Next returns the next row as a record. See Reader.
func (r *CSVReader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := r.row(); err != nil {
		r.err = err
		return nil, err
	}
	reason := r.bad
	if reason == "" && r.nfield != len(r.header) {
		reason = fmt.Sprintf("row has %d %s, header has %d", r.nfield, csvPlural(r.nfield, "field", "fields"), len(r.header))
	}
	if reason == "" && !utf8.Valid(r.out) {
		reason = r.utf8Reason()
	}
	if reason != "" {
		raw, size := r.rawPrefix, r.rawSize // an oversized row's first bytes
		if !r.skipping {
			raw, size = r.buf[r.rawStart:r.rawEnd], 0
		}
		return nil, &RecordError{Line: r.rowLine, Offset: r.rowOff, Reason: reason, Raw: raw, Size: size}
	}
	r.out = append(r.out, '}')
	for i := range r.fields {
		r.fields[i] = schemas.Field{Name: r.names[i], Value: r.out[r.spans[2*i]:r.spans[2*i+1]]}
	}
	r.rec = Record{JSON: r.out, Fields: r.fields, Line: r.rowLine, Offset: r.rowOff, Raw: r.buf[r.rawStart:r.rawEnd:r.rawEnd]}
	return &r.rec, nil
}

// utf8Reason names the first field that is not valid UTF-8.
func (r *CSVReader) utf8Reason() string {
	for i := range r.nfield {
		if !utf8.Valid(r.out[r.spans[2*i]:r.spans[2*i+1]]) {
			return fmt.Sprintf("field %d%s is not valid UTF-8", i+1, r.column(i))
		}
	}
	return "row is not valid UTF-8"
}

// column names field i for messages: ` (column "sku")`, or nothing past the
// header's columns.
func (r *CSVReader) column(i int) string {
	if i < len(r.header) {
		return fmt.Sprintf(" (column %q)", r.header[i])
	}
	return ""
}

func csvPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// skipBlank moves r.start past blank lines. It returns io.EOF at the end of
// the input.
func (r *CSVReader) skipBlank() error {
	for {
		if r.start < r.end {
			switch r.buf[r.start] {
			case '\n':
				r.start++
				r.line++
				r.lineStart = r.base + int64(r.start)
				continue
			case '\r':
				if r.start+1 < r.end {
					if r.buf[r.start+1] != '\n' {
						return nil
					}
					r.start += 2
					r.line++
					r.lineStart = r.base + int64(r.start)
					continue
				}
				if r.eof { // a lone CR ending the input
					r.start++
					continue
				}
			default:
				return nil
			}
		} else if r.eof {
			return io.EOF
		}
		if _, err := r.fill(r.start); err != nil {
			return err
		}
	}
}

// row frames the next row and writes its fields as JSON strings into r.out:
// r.spans holds where each is, r.bad why the row cannot be used. It returns
// io.EOF at the end of the input; any other error is fatal.
func (r *CSVReader) row() error {
	r.skipping = false
	r.bad = ""
	if err := r.skipBlank(); err != nil {
		return err
	}
	r.rowLine = r.line
	r.rowOff = r.base + int64(r.start)
	line, lineStart := r.line, r.lineStart
	var qLine, qOff, qCol int64 // where the open quoted field starts
	buf, i, end := r.buf, r.start, r.end
	out := append(r.out[:0], '{')
	spans := r.spans[:0]
	n := 0 // fields ended so far
	out, spans = r.openField(out, spans, 0)
	st := csvFieldStart
	var contentEnd, next int // where the row's bytes end, where the next row starts
	newline := false         // the row ends with a line end
loop:
	for {
		if i < end {
			switch st {
			case csvFieldStart:
				if buf[i] == '"' {
					st = csvQuoted
					qLine, qOff = line, r.base+int64(i)
					qCol = qOff - lineStart + 1
					i++
					continue
				}
				st = csvUnquoted
				fallthrough
			case csvUnquoted:
				k := csvPlainRun(buf[i:end], false)
				out = append(out, buf[i:i+k]...)
				i += k
				if i == end {
					continue
				}
				switch c := buf[i]; c {
				case ',':
					out, spans = r.endField(out, spans, n)
					n++
					out, spans = r.openField(out, spans, n)
					st = csvFieldStart
					i++
				case '\n':
					contentEnd, next, newline = i, i+1, true
					break loop
				case '\r':
					if i+1 == end {
						goto more
					}
					if buf[i+1] == '\n' {
						contentEnd, next, newline = i, i+2, true
						break loop
					}
					out = append(out, '\\', 'r')
					i++
				default: // a quote, a backslash or a control character
					out = csvAppendEscaped(out, c)
					i++
				}
				continue
			case csvQuoted:
				k := csvPlainRun(buf[i:end], true)
				out = append(out, buf[i:i+k]...)
				i += k
				if i == end {
					continue
				}
				switch c := buf[i]; c {
				case '"':
					if i+1 == end {
						goto more
					}
					if buf[i+1] == '"' {
						out = append(out, '\\', '"')
						i += 2
					} else {
						st = csvAfterQuote
						i++
					}
				case '\n':
					out = append(out, '\\', 'n')
					i++
					line++
					lineStart = r.base + int64(i)
				default:
					out = csvAppendEscaped(out, c)
					i++
				}
				continue
			case csvAfterQuote:
				switch buf[i] {
				case ',':
					out, spans = r.endField(out, spans, n)
					n++
					out, spans = r.openField(out, spans, n)
					st = csvFieldStart
					i++
					continue
				case '\n':
					contentEnd, next, newline = i, i+1, true
					break loop
				case '\r':
					if i+1 == end {
						goto more
					}
					if buf[i+1] == '\n' {
						contentEnd, next, newline = i, i+2, true
						break loop
					}
				}
				if r.bad == "" {
					r.bad = fmt.Sprintf("text after the closing quote of field %d%s", n+1, r.column(n))
				}
				st = csvUnquoted // frame the rest of the field as unquoted text
				continue
			}
		}
	more: // out of bytes, or short of the one after a quote or CR
		if !r.eof {
			var err error
			if i, err = r.fill(i); err != nil {
				return err
			}
			buf, end = r.buf, r.end
			if r.skipping {
				out, spans = out[:0], spans[:0]
			}
			continue
		}
		// The end of the input ends the row.
		if st == csvQuoted {
			if i == end {
				return &SyntaxError{
					Line: qLine, Column: qCol, Offset: qOff,
					Msg: fmt.Sprintf("quoted field opened on line %d is never closed: no closing quote before the end of the input", qLine),
				}
			}
			i++ // the last byte is the closing quote
		}
		// else a pending CR is the last byte, the row's line end
		contentEnd, next = i, end
		break loop
	}
	out, spans = r.endField(out, spans, n)
	n++
	if newline {
		line++
		lineStart = r.base + int64(next)
	}
	if r.skipping || contentEnd-r.start > r.max {
		r.bad = fmt.Sprintf("row is longer than %d bytes (MaxRecordBytes): skipped to its end", r.max)
		if !r.skipping {
			r.rawPrefix = append(r.rawPrefix[:0], r.buf[r.start:r.start+min(csvMaxRaw, contentEnd-r.start)]...)
			r.skipping = true
		}
		r.rawSize = r.base + int64(contentEnd) - r.rowOff
	}
	r.rawStart, r.rawEnd = r.start, contentEnd
	r.start = next
	r.line, r.lineStart = line, lineStart
	r.out, r.spans, r.nfield = out, spans, n
	return nil
}

// openField writes what precedes field i's value and notes where the value
// starts.
func (r *CSVReader) openField(out []byte, spans []int, i int) ([]byte, []int) {
	if i < len(r.prefix) {
		out = append(out, r.prefix[i]...)
	} else {
		out = append(out, ',', '"') // past the header, or reading it
	}
	if i < r.spanLimit {
		spans = append(spans, len(out)-1)
	}
	return out, spans
}

// endField closes field i's value.
func (r *CSVReader) endField(out []byte, spans []int, i int) ([]byte, []int) {
	out = append(out, '"')
	if i < r.spanLimit {
		spans = append(spans, len(out))
	}
	return out, spans
}

// fill reads more input into buf, keeping buf[r.start:]. The scan position
// i, an index into buf, is returned as it moves. A row that has outgrown
// MaxRecordBytes (and csvMaxRaw) is put into skipping mode first: only its
// first csvMaxRaw bytes are kept, so its bytes before i can go.
func (r *CSVReader) fill(i int) (int, error) {
	if !r.skipping && i-r.start > max(r.max, csvMaxRaw) {
		r.rawPrefix = append(r.rawPrefix[:0], r.buf[r.start:r.start+csvMaxRaw]...)
		r.skipping = true
	}
	if r.skipping {
		r.start = i
	}
	if r.end == len(r.buf) {
		// Make room only when there is none, and grow the buffer when the
		// kept bytes fill more than half of it, else move them to the front:
		// the room made is then at least what is moved, so reads of a few
		// bytes each do not cost a copy of the row each. (At the size limit,
		// a row filling more than half the buffer is moved once; filling it
		// next time, it is skipping.)
		keep := r.buf[r.start:r.end]
		buf := r.buf
		if len(keep) > len(r.buf)/2 && len(r.buf) < r.limit {
			buf = make([]byte, min(2*len(r.buf), r.limit))
		} else if r.start == 0 {
			// Cannot happen: a row this long is skipping.
			return i, fmt.Errorf("csv reader: buffer of %d bytes is full", len(r.buf))
		}
		r.end = copy(buf, keep)
		r.buf = buf
		r.base += int64(r.start)
		i -= r.start
		r.start = 0
	}
	for range 100 {
		n, err := r.rd.Read(r.buf[r.end:])
		r.end += n
		if err == io.EOF {
			r.eof = true
			return i, nil
		}
		if err != nil {
			return i, fmt.Errorf("read CSV input at byte %d: %w", r.base+int64(r.end), err)
		}
		if n > 0 {
			return i, nil
		}
	}
	return i, fmt.Errorf("read CSV input: %w", io.ErrNoProgress)
}

// csvPlainRun returns how many bytes at the start of s need no escaping in
// a JSON string: no control character, quote or backslash, and no comma
// unless quoted. It looks at 8 bytes at a time.
func csvPlainRun(s []byte, quoted bool) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	comma := uint64(',' * ones)
	plain := csvPlainUnquoted
	if quoted {
		comma = 0 // finds NUL bytes, found anyway as control characters
		plain = csvPlainQuoted
	}
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		// A byte of x is flagged when it is below 0x20, or when it is zero
		// once xored with the byte looked for. A flag can be wrong only in
		// a byte above a rightly flagged one, so the lowest flag is right.
		q, b, c := x^('"'*ones), x^('\\'*ones), x^comma
		m := ((x-0x20*ones)&^x | (q-ones)&^q | (b-ones)&^b | (c-ones)&^c) & highs
		if m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if !plain[s[i]] {
			return i
		}
	}
	return len(s)
}

const csvHexDigits = "0123456789abcdef"

// appendEscaped appends c, a byte that needs escaping in a JSON string.
func csvAppendEscaped(out []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(out, '\\', c)
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	}
	return append(out, '\\', 'u', '0', '0', csvHexDigits[c>>4], csvHexDigits[c&0xF])
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func csvAppendString(out, s []byte) []byte {
	out = append(out, '"')
	for len(s) > 0 {
		k := csvPlainRun(s, true)
		out = append(out, s[:k]...)
		if k == len(s) {
			break
		}
		out = csvAppendEscaped(out, s[k])
		s = s[k+1:]
	}
	return append(out, '"')
}
