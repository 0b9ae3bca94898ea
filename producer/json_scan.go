package producer

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"skuflow/schemas"
)

// jsonMaxDepth bounds the nesting of arrays and objects, counted from the top
// of the document (NDJSON: of the line). The scanner keeps its own stack, so
// deeper input is a syntax error, never a stack overflow.
const jsonMaxDepth = 1000

// jsonMsgTooDeep is the syntax error for input nested deeper than jsonMaxDepth.
const jsonMsgTooDeep = "exceeded max nesting depth of 1000 arrays and objects"

// jsonScanner validates JSON held whole in data (RFC 8259, strictly: number
// grammar, literals, escapes, no control characters and only valid UTF-8 in
// strings) in one pass, and while scanning a record object it compacts it and
// notes its top-level members.
//
// A scan that reaches the end of data before the value ends either asks for
// more input (more is set; the caller refills its buffer and scans the value
// again from its start) or, when eof is set, fails. A scan that fails returns
// -1 and leaves the position and message in errPos and errMsg.
type jsonScanner struct {
	data []byte
	eof  bool   // data ends where the input (NDJSON: the line) ends
	end  string // what ends at eof, for messages: "input" or "line"

	// Compaction: out holds the compacted record up to data[runStart:], the
	// run not yet copied. A record without white space is never copied.
	compact  bool
	out      []byte
	runStart int

	stack   []byte // open containers of the value being scanned: '[' or '{'
	spans   []jsonSpan
	names   []byte // unescaped member names
	escaped bool   // a string scanned since this was cleared held a backslash
	keyAt   int    // index of the opening quote of the last object key
	keyEnd  int    // index after the closing quote of the last object key

	more   bool
	errPos int
	errMsg string
}

// jsonSpan is one top-level member of a record: its name's bytes inside the
// quotes in data, and its value's bounds in the compacted record.
type jsonSpan struct {
	ns, ne int
	vs, ve int
	esc    bool
}

// reset prepares the scanner for a scan of data.
func (s *jsonScanner) reset(data []byte, eof, compact bool) {
	s.data = data
	s.eof = eof
	s.compact = compact
	s.more = false
	s.errPos, s.errMsg = 0, ""
}

// jsonSpace holds the four white space characters of JSON.
var jsonSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// jsonStrStop holds the bytes that end the fast path through a string: the
// quote, the backslash, control characters and non-ASCII bytes.
var jsonStrStop = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80
	}
	return t
}()

// ws skips white space from data[i] and returns the index after it. When
// compacting, the skipped white space ends the current run.
func (s *jsonScanner) ws(i int) int {
	d := s.data
	j := i
	for j < len(d) && jsonSpace[d[j]] {
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
func (s *jsonScanner) outPos(i, start int) int {
	if s.runStart == start {
		return i - start
	}
	return len(s.out) + i - s.runStart
}

// endOf handles the end of data inside a value: more input, or an error at
// the end of the input.
func (s *jsonScanner) endOf(i int, what string) int {
	if !s.eof {
		s.more = true
		return -1
	}
	s.errPos = i
	s.errMsg = "unexpected end of " + s.end + " in " + what
	return -1
}

func (s *jsonScanner) fail(i int, msg string) int {
	s.errPos = i
	s.errMsg = msg
	return -1
}

// bad fails with "invalid character 'c' <context>" for the byte at data[i].
func (s *jsonScanner) bad(i int, context string) int {
	if !s.eof && !utf8.FullRune(s.data[i:]) {
		// Read the rest of the character, to name it.
		s.more = true
		return -1
	}
	return s.fail(i, "invalid character "+jsonChar(s.data[i:])+" "+context)
}

// jsonChar names the character that starts b, for messages.
func jsonChar(b []byte) string {
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
	jsonLSB = 0x0101010101010101
	jsonMSB = 0x8080808080808080
)

// jsonStops flags, in the high bit of each byte, the bytes of the eight in x
// (little endian) that end the fast path through a string: '"', '\\',
// control characters and non-ASCII bytes. Flags above the lowest may be
// wrong (a borrow runs on), the lowest one is always right.
func jsonStops(x uint64) uint64 {
	q := x ^ (jsonLSB * '"')
	b := x ^ (jsonLSB * '\\')
	return (((q - jsonLSB) &^ q) | ((b - jsonLSB) &^ b) | ((x - jsonLSB*0x20) &^ x) | x) & jsonMSB
}

// str scans the string whose opening quote is at data[i] and returns the
// index after its closing quote.
func (s *jsonScanner) str(i int) int {
	d := s.data
	i++
	for {
		// Eight bytes at a time while none of them needs a look.
		for i+8 <= len(d) {
			if m := jsonStops(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				if d[i] == '"' {
					return i + 1
				}
				break
			}
			i += 8
		}
		for i < len(d) && !jsonStrStop[d[i]] {
			i++
		}
		if i >= len(d) {
			return s.endOf(i, "string literal")
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			s.escaped = true
			if i+1 >= len(d) {
				return s.endOf(i+1, "string escape")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(d) {
						return s.endOf(k, `\u escape`)
					}
					if !jsonIsHex(d[k]) {
						return s.bad(k, `in \u hexadecimal character escape`)
					}
				}
				i += 6
			default:
				return s.bad(i+1, "in string escape code")
			}
		case c < 0x20:
			return s.bad(i, "in string literal")
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

func jsonIsHex(c byte) bool {
	return c-'0' < 10 || (c|0x20)-'a' < 6
}

// number scans the number that starts at data[i] and returns the index after
// it.
func (s *jsonScanner) number(i int) int {
	d := s.data
	if d[i] == '-' {
		i++
		if i >= len(d) {
			return s.endOf(i, "numeric literal")
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
		return s.bad(i, "in numeric literal")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			return s.endOf(i, "numeric literal")
		}
		if d[i]-'0' >= 10 {
			return s.bad(i, "after decimal point in numeric literal")
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
			return s.endOf(i, "numeric literal")
		}
		if d[i]-'0' >= 10 {
			return s.bad(i, "in exponent of numeric literal")
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
func (s *jsonScanner) literal(i int, lit string) int {
	d := s.data
	if len(d)-i >= len(lit) && string(d[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	for k := 1; k < len(lit); k++ {
		if i+k >= len(d) {
			return s.endOf(i+k, "literal "+lit)
		}
		if d[i+k] != lit[k] {
			return s.bad(i+k, fmt.Sprintf("in literal %s (expecting %q)", lit, lit[k]))
		}
	}
	return i + len(lit) // not reached
}

// key scans `"name" :` and the white space after it from data[i] and returns
// the index of the member's value.
func (s *jsonScanner) key(i int) int {
	d := s.data
	if i >= len(d) {
		return s.endOf(i, "object")
	}
	if d[i] != '"' {
		return s.bad(i, "looking for beginning of object key string")
	}
	s.keyAt = i
	if i = s.str(i); i < 0 {
		return i
	}
	s.keyEnd = i
	if i < len(d) && d[i] <= ' ' {
		i = s.ws(i)
	}
	if i >= len(d) {
		return s.endOf(i, "object")
	}
	if d[i] != ':' {
		return s.bad(i, "after object key")
	}
	i++
	if i < len(d) && d[i] <= ' ' {
		i = s.ws(i)
	}
	return i
}

// value scans the value that starts at data[i] and returns the index after
// it. depth is the number of containers around the value.
func (s *jsonScanner) value(i, depth int) int {
	d := s.data
	s.stack = s.stack[:0]
	for {
		// A value starts at d[i].
		if i >= len(d) {
			return s.endOf(i, "value")
		}
		switch c := d[i]; c {
		case '"':
			i = s.str(i)
		case '{', '[':
			if depth+len(s.stack)+1 > jsonMaxDepth {
				return s.fail(i, jsonMsgTooDeep)
			}
			i++
			if i < len(d) && d[i] <= ' ' {
				i = s.ws(i)
			}
			if i >= len(d) {
				if c == '{' {
					return s.endOf(i, "object")
				}
				return s.endOf(i, "array")
			}
			if d[i] == c+2 { // '}' or ']'
				i++
				break
			}
			s.stack = append(s.stack, c)
			if c == '{' {
				i = s.key(i)
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
				return s.bad(i, "looking for beginning of value")
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
				i = s.ws(i)
			}
			top := s.stack[len(s.stack)-1]
			if i >= len(d) {
				if top == '{' {
					return s.endOf(i, "object")
				}
				return s.endOf(i, "array")
			}
			c := d[i]
			if c == top+2 {
				i++
				s.stack = s.stack[:len(s.stack)-1]
				continue
			}
			if c != ',' {
				if top == '{' {
					return s.bad(i, "after object key:value pair")
				}
				return s.bad(i, "after array element")
			}
			i++
			if i < len(d) && d[i] <= ' ' {
				i = s.ws(i)
			}
			if top == '{' {
				if i = s.key(i); i < 0 {
					return i
				}
			}
			break
		}
	}
}

// record scans the object that starts at data[start] as a record: it
// compacts it and notes its top-level members in spans. depth is the number
// of containers around the object.
func (s *jsonScanner) record(start, depth int) int {
	d := s.data
	s.out = s.out[:0]
	s.spans = s.spans[:0]
	s.runStart = start
	depth++
	i := start + 1
	if i < len(d) && d[i] <= ' ' {
		i = s.ws(i)
	}
	if i >= len(d) {
		return s.endOf(i, "object")
	}
	if d[i] == '}' {
		return i + 1
	}
	for {
		s.escaped = false
		if i = s.key(i); i < 0 {
			return i
		}
		// The span is set in place: building a jsonSpan and appending it
		// costs a store-forwarding stall.
		if n := len(s.spans); n < cap(s.spans) {
			s.spans = s.spans[:n+1]
		} else {
			s.spans = append(s.spans, jsonSpan{})
		}
		sp := &s.spans[len(s.spans)-1]
		sp.ns, sp.ne, sp.esc = s.keyAt+1, s.keyEnd-1, s.escaped
		sp.vs = s.outPos(i, start)
		if i < len(d) && d[i] == '"' {
			i = s.str(i)
		} else {
			i = s.value(i, depth)
		}
		if i < 0 {
			return i
		}
		sp.ve = s.outPos(i, start)
		if i < len(d) && d[i] <= ' ' {
			i = s.ws(i)
		}
		if i >= len(d) {
			return s.endOf(i, "object")
		}
		switch d[i] {
		case ',':
			i++
			if i < len(d) && d[i] <= ' ' {
				i = s.ws(i)
			}
		case '}':
			return i + 1
		default:
			return s.bad(i, "after object key:value pair")
		}
	}
}

// finish fills rec with the record that record scanned from data[start] to
// data[end].
func (s *jsonScanner) finish(start, end int, rec *Record) {
	js := s.data[start:end:end]
	if s.runStart != start {
		s.out = append(s.out, s.data[s.runStart:end]...)
		js = s.out[:len(s.out):len(s.out)]
	}
	rec.JSON = js
	n := len(s.spans)
	if cap(rec.Fields) < n {
		rec.Fields = make([]schemas.Field, n, max(2*n, 16))
	}
	rec.Fields = rec.Fields[:n]
	s.names = s.names[:0]
	for k := range s.spans {
		// Fields are set in place: building a schemas.Field and copying it
		// costs a store-forwarding stall per field.
		sp, f := &s.spans[k], &rec.Fields[k]
		f.Name = s.data[sp.ns:sp.ne:sp.ne]
		if sp.esc {
			k := len(s.names)
			s.names = jsonUnescape(s.names, f.Name)
			f.Name = s.names[k:len(s.names):len(s.names)]
		}
		f.Value = js[sp.vs:sp.ve:sp.ve]
	}
}

// jsonUnescape appends the text of the valid string body b to dst. A \u
// escape of a lone surrogate becomes U+FFFD, as in encoding/json.
func jsonUnescape(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			j := i + 1
			for j < len(b) && b[j] != '\\' {
				j++
			}
			dst = append(dst, b[i:j]...)
			i = j
			continue
		}
		switch e := b[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := jsonHex4(b[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					r2 = jsonHex4(b[i+2:])
				}
				if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
					r = p
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

func jsonHex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
