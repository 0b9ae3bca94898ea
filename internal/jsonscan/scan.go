package jsonscan

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf8"

	"skuflow/internal/jsonstr"

	"skuflow/schemas"
)

// MaxDepth bounds the nesting of arrays and objects, counted from the top
// of the document (NDJSON: of the line). The scanner keeps its own stack, so
// deeper input is a syntax error, never a stack overflow.
const MaxDepth = 1000

// MsgTooDeep is the syntax error for input nested deeper than MaxDepth.
const MsgTooDeep = "exceeded max nesting depth of 1000 arrays and objects"

// Scanner validates JSON held whole in data (RFC 8259, strictly: number
// grammar, literals, escapes, no control characters and only valid UTF-8 in
// strings) in one pass, and while scanning a record object it compacts it and
// notes its top-level members. The zero value is ready to use; it keeps its
// buffers from one scan to the next, so scanning allocates nothing once they
// have grown to the records' size.
//
// Object scans one object held whole in memory. Streaming readers drive the
// scan themselves with Reset and the methods that take an index of data:
// each returns the index after what it scanned, or -1. A scan that reaches
// the end of data before the value ends either asks for more input (More
// reports it; the caller refills its buffer and scans the value again from
// its start) or, when eof is set, fails. A scan that fails leaves the
// position and message for Err.
type Scanner struct {
	// End names what ends where data ends, for messages ("unexpected end of
	// line in string literal"); empty means "input".
	End string

	data []byte
	eof  bool // data ends where the input (NDJSON: the line) ends

	// Compaction: out holds the compacted record up to data[runStart:], the
	// run not yet copied. A record without white space is never copied.
	compact  bool
	out      []byte
	runStart int

	stack   []byte // open containers of the value being scanned: '[' or '{'
	spans   []span
	names   []byte // unescaped member names
	escaped bool   // a string scanned since this was cleared held a backslash
	keyAt   int    // index of the opening quote of the last object key
	keyEnd  int    // index after the closing quote of the last object key

	more   bool
	errPos int
	errMsg string
}

// span is one top-level member of a record: its name's bytes inside the
// quotes in data, and its value's bounds in the compacted record.
type span struct {
	ns, ne int
	vs, ve int
	esc    bool
}

// Reset prepares the scanner for a scan of data. eof says that the input
// ends where data ends; compact makes Record compact the record it scans.
func (s *Scanner) Reset(data []byte, eof, compact bool) {
	s.data = data
	s.eof = eof
	s.compact = compact
	s.more = false
	s.errPos, s.errMsg = 0, ""
}

// space holds the four white space characters of JSON.
var space = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// strStop holds the bytes that end the fast path through a string: the
// quote, the backslash, control characters and non-ASCII bytes.
var strStop = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80
	}
	return t
}()

// IsSpace reports whether c is one of JSON's four white space characters.
func IsSpace(c byte) bool { return space[c] }

// More reports whether the last scan failed only because data ended before
// the value did, and more input is needed.
func (s *Scanner) More() bool { return s.more }

// Err returns the position in data and the message of the error that ended
// the last scan.
func (s *Scanner) Err() (pos int, msg string) { return s.errPos, s.errMsg }

// SkipSpace skips white space from data[i] and returns the index after it.
// When compacting, the skipped white space ends the current run.
func (s *Scanner) SkipSpace(i int) int {
	d := s.data
	j := i
	for j < len(d) && space[d[j]] {
		j++
	}
	if s.compact && j > i {
		s.out = append(s.out, d[s.runStart:i]...)
		s.runStart = j
	}
	return j
}

// outPos maps an index of data inside the current run to its index in the
// compacted record that starts at data[start].
func (s *Scanner) outPos(i, start int) int {
	if s.runStart == start {
		return i - start
	}
	return len(s.out) + i - s.runStart
}

// EndOf handles the end of data at data[i] inside what: more input, or an
// error at the end of the input. It returns -1.
func (s *Scanner) EndOf(i int, what string) int {
	if !s.eof {
		s.more = true
		return -1
	}
	s.errPos = i
	end := s.End
	if end == "" {
		end = "input"
	}
	s.errMsg = "unexpected end of " + end + " in " + what
	return -1
}

func (s *Scanner) fail(i int, msg string) int {
	s.errPos = i
	s.errMsg = msg
	return -1
}

// Bad fails with "invalid character 'c' <context>" for the byte at data[i].
// It returns -1.
func (s *Scanner) Bad(i int, context string) int {
	if !s.eof && !utf8.FullRune(s.data[i:]) {
		// Read the rest of the character, to name it.
		s.more = true
		return -1
	}
	return s.fail(i, "invalid character "+Char(s.data[i:])+" "+context)
}

// Char names the character that starts b, for messages.
func Char(b []byte) string {
	if b[0] < utf8.RuneSelf {
		return strconv.QuoteRune(rune(b[0]))
	}
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size == 1 {
		return fmt.Sprintf("byte 0x%02X (not UTF-8)", b[0])
	}
	return strconv.QuoteRune(r)
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// stops flags, in the high bit of each byte, the bytes of the eight in x
// (little endian) that end the fast path through a string: '"', '\\',
// control characters and non-ASCII bytes. Flags above the lowest may be
// wrong (a borrow runs on), the lowest one is always right.
func stops(x uint64) uint64 {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return (((q - lsb) &^ q) | ((b - lsb) &^ b) | ((x - lsb*0x20) &^ x) | x) & msb
}

// str scans the string whose opening quote is at data[i] and returns the
// index after its closing quote.
func (s *Scanner) str(i int) int {
	d := s.data
	i++
	for {
		// Eight bytes at a time while none of them needs a look.
		for i+8 <= len(d) {
			if m := stops(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				if d[i] == '"' {
					return i + 1
				}
				break
			}
			i += 8
		}
		for i < len(d) && !strStop[d[i]] {
			i++
		}
		if i >= len(d) {
			return s.EndOf(i, "string literal")
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			s.escaped = true
			if i+1 >= len(d) {
				return s.EndOf(i+1, "string escape")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(d) {
						return s.EndOf(k, `\u escape`)
					}
					if !isHex(d[k]) {
						return s.Bad(k, `in \u hexadecimal character escape`)
					}
				}
				i += 6
			default:
				return s.Bad(i+1, "in string escape code")
			}
		case c < 0x20:
			return s.Bad(i, "in string literal")
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				if !s.eof && !utf8.FullRune(d[i:]) {
					s.more = true
					return -1
				}
				return s.fail(i, fmt.Sprintf("invalid UTF-8 byte 0x%02X in string literal", c))
			}
			i += size
		}
	}
}

func isHex(c byte) bool {
	return c-'0' < 10 || (c|0x20)-'a' < 6
}

// number scans the number that starts at data[i] and returns the index after
// it.
func (s *Scanner) number(i int) int {
	d := s.data
	if d[i] == '-' {
		i++
		if i >= len(d) {
			return s.EndOf(i, "numeric literal")
		}
	}
	switch c := d[i]; {
	case c == '0':
		i++
	case c-'1' < 9:
		i++
		for i < len(d) && d[i]-'0' < 10 {
			i++
		}
	default:
		return s.Bad(i, "in numeric literal")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			return s.EndOf(i, "numeric literal")
		}
		if d[i]-'0' >= 10 {
			return s.Bad(i, "after decimal point in numeric literal")
		}
		for i < len(d) && d[i]-'0' < 10 {
			i++
		}
	}
	if i < len(d) && d[i]|0x20 == 'e' {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) {
			return s.EndOf(i, "numeric literal")
		}
		if d[i]-'0' >= 10 {
			return s.Bad(i, "in exponent of numeric literal")
		}
		for i < len(d) && d[i]-'0' < 10 {
			i++
		}
	}
	if i >= len(d) && !s.eof {
		// The number may go on in the input not read yet.
		s.more = true
		return -1
	}
	return i
}

// literal scans true, false or null at data[i].
func (s *Scanner) literal(i int, lit string) int {
	d := s.data
	if len(d)-i >= len(lit) && string(d[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	for k := 1; k < len(lit); k++ {
		if i+k >= len(d) {
			return s.EndOf(i+k, "literal "+lit)
		}
		if d[i+k] != lit[k] {
			return s.Bad(i+k, fmt.Sprintf("in literal %s (expecting %q)", lit, lit[k]))
		}
	}
	return i + len(lit) // not reached
}

// Key scans `"name" :` and the white space after it from data[i] and returns
// the index of the member's value. KeyName then returns the name.
func (s *Scanner) Key(i int) int {
	d := s.data
	s.escaped = false
	if i >= len(d) {
		return s.EndOf(i, "object")
	}
	if d[i] != '"' {
		return s.Bad(i, "looking for beginning of object key string")
	}
	s.keyAt = i
	if i = s.str(i); i < 0 {
		return i
	}
	s.keyEnd = i
	if i < len(d) && d[i] <= ' ' {
		i = s.SkipSpace(i)
	}
	if i >= len(d) {
		return s.EndOf(i, "object")
	}
	if d[i] != ':' {
		return s.Bad(i, "after object key")
	}
	i++
	if i < len(d) && d[i] <= ' ' {
		i = s.SkipSpace(i)
	}
	return i
}

// KeyName returns the unescaped name of the object key Key scanned last. It
// is valid until the next call of KeyName or Finish.
func (s *Scanner) KeyName() []byte {
	name := s.data[s.keyAt+1 : s.keyEnd-1]
	if s.escaped {
		s.names = Unescape(s.names[:0], name)
		name = s.names
	}
	return name
}

// Value scans the value that starts at data[i] and returns the index after
// it. depth is the number of containers around the value.
func (s *Scanner) Value(i, depth int) int {
	d := s.data
	s.stack = s.stack[:0]
	for {
		// A value starts at d[i].
		if i >= len(d) {
			return s.EndOf(i, "value")
		}
		switch c := d[i]; c {
		case '"':
			i = s.str(i)
		case '{', '[':
			if depth+len(s.stack)+1 > MaxDepth {
				return s.fail(i, MsgTooDeep)
			}
			i++
			if i < len(d) && d[i] <= ' ' {
				i = s.SkipSpace(i)
			}
			if i >= len(d) {
				if c == '{' {
					return s.EndOf(i, "object")
				}
				return s.EndOf(i, "array")
			}
			if d[i] == c+2 { // '}' or ']'
				i++
				break
			}
			s.stack = append(s.stack, c)
			if c == '{' {
				i = s.Key(i)
				if i < 0 {
					return i
				}
			}
			continue
		case 't':
			i = s.literal(i, "true")
		case 'f':
			i = s.literal(i, "false")
		case 'n':
			i = s.literal(i, "null")
		default:
			if c != '-' && c-'0' >= 10 {
				return s.Bad(i, "looking for beginning of value")
			}
			i = s.number(i)
		}
		if i < 0 {
			return i
		}
		// A value ends at i: close the containers it ends and find the
		// next value.
		for {
			if len(s.stack) == 0 {
				return i
			}
			if i < len(d) && d[i] <= ' ' {
				i = s.SkipSpace(i)
			}
			top := s.stack[len(s.stack)-1]
			if i >= len(d) {
				if top == '{' {
					return s.EndOf(i, "object")
				}
				return s.EndOf(i, "array")
			}
			c := d[i]
			if c == top+2 {
				i++
				s.stack = s.stack[:len(s.stack)-1]
				continue
			}
			if c != ',' {
				if top == '{' {
					return s.Bad(i, "after object key:value pair")
				}
				return s.Bad(i, "after array element")
			}
			i++
			if i < len(d) && d[i] <= ' ' {
				i = s.SkipSpace(i)
			}
			if top == '{' {
				if i = s.Key(i); i < 0 {
					return i
				}
			}
			break
		}
	}
}

// Record scans the object that starts at data[start] as a record: it
// compacts it (when Reset asked for it) and notes its top-level members for
// Finish. depth is the number of containers around the object.
func (s *Scanner) Record(start, depth int) int {
	d := s.data
	s.out = s.out[:0]
	s.spans = s.spans[:0]
	s.runStart = start
	depth++
	i := start + 1
	if i < len(d) && d[i] <= ' ' {
		i = s.SkipSpace(i)
	}
	if i >= len(d) {
		return s.EndOf(i, "object")
	}
	if d[i] == '}' {
		return i + 1
	}
	for {
		if i = s.Key(i); i < 0 {
			return i
		}
		// The span is set in place: building a span and appending it
		// costs a store-forwarding stall.
		if n := len(s.spans); n < cap(s.spans) {
			s.spans = s.spans[:n+1]
		} else {
			s.spans = append(s.spans, span{})
		}
		sp := &s.spans[len(s.spans)-1]
		sp.ns, sp.ne, sp.esc = s.keyAt+1, s.keyEnd-1, s.escaped
		sp.vs = s.outPos(i, start)
		if i < len(d) && d[i] == '"' {
			i = s.str(i)
		} else {
			i = s.Value(i, depth)
		}
		if i < 0 {
			return i
		}
		sp.ve = s.outPos(i, start)
		if i < len(d) && d[i] <= ' ' {
			i = s.SkipSpace(i)
		}
		if i >= len(d) {
			return s.EndOf(i, "object")
		}
		switch d[i] {
		case ',':
			i++
			if i < len(d) && d[i] <= ' ' {
				i = s.SkipSpace(i)
			}
		case '}':
			return i + 1
		default:
			return s.Bad(i, "after object key:value pair")
		}
	}
}

// Finish returns the record that Record scanned from data[start] to
// data[end], compacted, and its top-level members in input order, in fields
// (reused when it is large enough). Both point into data or the scanner's
// buffers: they are valid until the scanner's next scan.
func (s *Scanner) Finish(start, end int, fields []schemas.Field) (js []byte, _ []schemas.Field) {
	js = s.data[start:end:end]
	if s.runStart != start {
		s.out = append(s.out, s.data[s.runStart:end]...)
		js = s.out[:len(s.out):len(s.out)]
	}
	n := len(s.spans)
	if cap(fields) < n {
		fields = make([]schemas.Field, n, max(2*n, 16))
	}
	fields = fields[:n]
	s.names = s.names[:0]
	for k := range s.spans {
		// Fields are set in place: building a schemas.Field and copying it
		// costs a store-forwarding stall per field.
		sp, f := &s.spans[k], &fields[k]
		f.Name = s.data[sp.ns:sp.ne:sp.ne]
		if sp.esc {
			k := len(s.names)
			s.names = Unescape(s.names, f.Name)
			f.Name = s.names[k:len(s.names):len(s.names)]
		}
		f.Value = js[sp.vs:sp.ve:sp.ve]
	}
	return js, fields
}

// Unescape appends the text of the valid string body b to dst (the
// scanner has checked its escapes). A \u escape of a lone surrogate
// becomes U+FFFD, as in encoding/json.
func Unescape(dst, b []byte) []byte {
	out, _ := jsonstr.Unescape(dst, b)
	return out
}
