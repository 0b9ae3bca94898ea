package schemas

import (
	"strconv"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// Block gathers records column by column for one columnar INSERT: one typed
// column per schema column, and the extra column. It keeps its memory across
// Reset, so that filling it again allocates nothing per record.
type Block struct {
	s     *Schema
	cols  []blockColumn // in the order of s.Columns
	extra textColumn
	n     int
	// CheckKey, when set, is given each record's key after it validated;
	// an error refuses the record as a validation error does.
	CheckKey func(key []byte) error

	// Scratch space of Append.
	key      []byte         // the key Validate builds
	last     []int          // per column: index of its last field, or -1
	fieldCol []int          // per field: index of the column it names, or -1
	names    map[string]int // for records with many extra fields: name -> last index
}

type blockColumn struct {
	typ    ColumnType
	text   textColumn
	ints   []int64
	floats []float64
}

// textColumn holds the values of a String column end to end in one buffer,
// so that appending a value costs no allocation.
type textColumn struct {
	buf  []byte
	ends []int // end of each value in buf
	strs []string
}

func (c *textColumn) reset() {
	c.buf, c.ends = c.buf[:0], c.ends[:0]
	clear(c.strs)
	c.strs = c.strs[:0]
}

// strings returns the values as strings: one conversion of the buffer,
// sliced, so one allocation for the column rather than one per value.
func (c *textColumn) strings() []string {
	all := string(c.buf)
	c.strs = c.strs[:0]
	start := 0
	for _, end := range c.ends {
		c.strs = append(c.strs, all[start:end])
		start = end
	}
	return c.strs
}

// NewBlock returns an empty block for s.
func (s *Schema) NewBlock() *Block {
	b := &Block{s: s, cols: make([]blockColumn, len(s.Columns)), last: make([]int, len(s.Columns))}
	for i, c := range s.Columns {
		b.cols[i].typ = c.Type
	}
	return b
}

// Len is the number of records in the block.
func (b *Block) Len() int { return b.n }

// Reset empties the block, keeping its memory. Slices that Column returned
// before are overwritten by later use.
func (b *Block) Reset() {
	for i := range b.cols {
		c := &b.cols[i]
		c.text.reset()
		c.ints, c.floats = c.ints[:0], c.floats[:0]
	}
	b.extra.reset()
	b.n = 0
}

// Column returns the values of column name (a []string, []int64 or
// []float64), or of the extra column ([]string), or nil for a name that is
// neither. The slice is the block's own, valid until the next Reset.
func (b *Block) Column(name string) any {
	if name == b.s.Extra {
		return b.extra.strings()
	}
	for i, c := range b.s.Columns {
		if c.Name != name {
			continue
		}
		switch col := &b.cols[i]; col.typ {
		case String:
			return col.text.strings()
		case Int64:
			return col.ints
		case Float64:
			return col.floats
		}
	}
	return nil
}

// manyFields is the number of fields above which Append finds repeated
// extra fields with a map rather than by comparing every pair.
const manyFields = 32

// Append validates one record, given as its top-level fields in input order
// (names unescaped, values as compact JSON text, as jsonscan.Object returns
// them), against the schema and appends it: each column gets the value of
// the last field of its name (the zero value when it is missing or null;
// strings unescaped), and the extra column gets the other fields as one
// compact JSON object, in input order, the last of each name. A record that
// does not fit is not appended and the error says why.
func (b *Block) Append(fields []Field) error {
	var err error
	if b.key, err = b.s.Validate(b.key[:0], fields); err != nil {
		return err
	}
	if b.CheckKey != nil {
		if err := b.CheckKey(b.key); err != nil {
			return err
		}
	}
	for i := range b.last {
		b.last[i] = -1
	}
	b.fieldCol = b.fieldCol[:0]
	for k := range fields {
		col := -1
		for i := range b.s.Columns {
			if string(fields[k].Name) == b.s.Columns[i].Name {
				col = i
				b.last[i] = k
				break
			}
		}
		b.fieldCol = append(b.fieldCol, col)
	}

	// String values are unescaped into the column buffers as they go; should
	// one fail, the buffers are cut back, so that every column keeps the
	// same length.
	for i := range b.cols {
		col := &b.cols[i]
		var v []byte
		if k := b.last[i]; k >= 0 && !isNull(fields[k].Value) {
			v = fields[k].Value
		}
		if col.typ != String || v == nil {
			continue
		}
		if col.text.buf, err = AppendText(col.text.buf, v); err != nil {
			b.undo(i)
			return &ValidationError{Field: b.s.Columns[i].Name, Reason: err.Error()}
		}
	}

	// From here on nothing fails.
	for i := range b.cols {
		col := &b.cols[i]
		var v []byte
		if k := b.last[i]; k >= 0 && !isNull(fields[k].Value) {
			v = fields[k].Value
		}
		switch col.typ {
		case String:
			col.text.ends = append(col.text.ends, len(col.text.buf))
		case Int64:
			col.ints = append(col.ints, parseInt(v))
		case Float64:
			col.floats = append(col.floats, parseFloat(v))
		}
	}
	b.appendExtra(fields)
	b.n++
	return nil
}

// undo cuts the buffers of the first n columns back to the end of the last
// record.
func (b *Block) undo(n int) {
	for i := range b.cols[:n+1] {
		t := &b.cols[i].text
		end := 0
		if len(t.ends) > 0 {
			end = t.ends[len(t.ends)-1]
		}
		t.buf = t.buf[:end]
	}
}

// appendExtra appends the fields that are not columns as one JSON object.
func (b *Block) appendExtra(fields []Field) {
	buf := append(b.extra.buf, '{')
	many := len(fields) > manyFields
	if many {
		if b.names == nil {
			b.names = map[string]int{}
		}
		clear(b.names)
		for k := range fields {
			if b.fieldCol[k] < 0 {
				b.names[string(fields[k].Name)] = k
			}
		}
	}
	first := true
	for k := range fields {
		if b.fieldCol[k] >= 0 {
			continue
		}
		name := fields[k].Name
		if many {
			if b.names[string(name)] != k {
				continue
			}
		} else if repeated(fields[k+1:], name) {
			continue // a later field of the same name wins
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendString(buf, name)
		buf = append(buf, ':')
		buf = append(buf, fields[k].Value...)
	}
	b.extra.buf = append(buf, '}')
	b.extra.ends = append(b.extra.ends, len(b.extra.buf))
}

// repeated reports whether a field of fields is called name.
func repeated(fields []Field, name []byte) bool {
	for k := range fields {
		if string(fields[k].Name) == string(name) {
			return true
		}
	}
	return false
}

// appendString appends s as a JSON string: the quote, the backslash and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			if c < 0x20 {
				const hex = "0123456789abcdef"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			} else {
				dst = append(dst, `\ufffd`...)
			}
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// parseInt returns the value of an integer that Validate has accepted, or
// 0 for nil. strconv takes every JSON integer that fits in an int64, as
// Validate's decoder does; should the text hold more (white space around
// it), that decoder has the last word.
func parseInt(v []byte) int64 {
	if v == nil {
		return 0
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		_ = json.Unmarshal(v, &n)
	}
	return n
}

// parseFloat is parseInt for numbers.
func parseFloat(v []byte) float64 {
	if v == nil {
		return 0
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		f = 0
		_ = json.Unmarshal(v, &f)
	}
	return f
}
