package schemas

import (
	"unicode/utf8"

	"skuflow/internal/keysort"
)

// Block gathers records column by column for one columnar INSERT: one typed
// column per schema column, the extra column, and for an Identity schema
// the identity columns. It keeps its memory across Reset, so that filling it
// again allocates nothing per record.
type Block struct {
	s     *Schema
	cols  []*Vector // in the order of s.Columns
	extra textColumn
	// file and offset are the identity columns (Identity schemas only).
	file, offset *Vector
	n            int
	// CheckKey, when set, is given each record's key after it validated;
	// an error refuses the record as a validation error does.
	CheckKey func(key []byte) error

	// Scratch space of Append.
	key      []byte         // the key Validate builds
	text     []byte         // a canonical value
	last     []int          // per column: index of its last field, or -1
	fieldCol []int          // per field: index of the column it names, or -1
	names    map[string]int // for records with many extra fields: name -> last index

	// Scratch space of SortByKey.
	sorter keysort.Sorter
	perm   []int32
	tmp    scratch
}

// NewBlock returns an empty block for s.
func (s *Schema) NewBlock() *Block {
	b := &Block{s: s, cols: make([]*Vector, len(s.Columns)), last: make([]int, len(s.Columns))}
	for i, c := range s.Columns {
		b.cols[i] = NewVector(c)
	}
	if s.Identity {
		b.file, b.offset = NewVector(IdentityColumns[0]), NewVector(IdentityColumns[1])
	}
	return b
}

// Len is the number of records in the block.
func (b *Block) Len() int { return b.n }

// Reset empties the block, keeping its memory. Slices that Column returned
// before are overwritten by later use.
func (b *Block) Reset() {
	for _, c := range b.cols {
		c.Reset()
	}
	if b.file != nil {
		b.file.Reset()
		b.offset.Reset()
	}
	b.extra.reset()
	b.n = 0
}

// KeyText is the index in s.Columns of the column the table is ordered by
// when that is one String column, else -1: the key of a record is then
// that column's text, which ClickHouse compares as bytes.
func (s *Schema) KeyText() int {
	if s.Identity || len(s.Key) != 1 {
		return -1
	}
	for i, c := range s.Columns {
		if c.Name == s.Key[0] && c.Type == String && !c.Nullable {
			return i
		}
	}
	return -1
}

// SortByKey puts the rows in the order ClickHouse keeps them in when that
// is the bytes of one String key column (Schema.KeyText), rows of one key
// in the order they came, and returns that order: row k is now the one
// appended perm[k]-th. It returns nil when it moved nothing: for a schema
// ordered otherwise, fewer than two rows, or rows it has sorted already
// (so that a caller never moves what it keeps beside them twice). Nothing
// is appended after it until Reset.
// The slice is the block's own, valid until the next Reset; the caller
// puts what it keeps beside the rows in the same order (Permute).
//
// Why: ClickHouse sorts every part it writes by the table's ORDER BY, and
// spends much less doing so on blocks already in that order (see
// processor.batch.seal).
func (b *Block) SortByKey() []int32 {
	k := b.s.KeyText()
	if k < 0 || b.n < 2 {
		return nil
	}
	key := &b.cols[k].text
	if key.order != nil {
		return nil // sorted already
	}
	b.perm = b.sorter.Order(b.perm, key.buf, key.ends)
	for _, c := range b.cols {
		c.permute(b.perm, &b.tmp)
	}
	if b.file != nil {
		b.file.permute(b.perm, &b.tmp)
		b.offset.permute(b.perm, &b.tmp)
	}
	clear(b.tmp.times) // a time.Time holds a pointer (its Location)
	b.extra.order = b.perm
	return b.perm
}

// Column returns the values of column name as its ClickHouse column takes
// them (see Vector.Values), or of the extra column ([]string), or nil for
// a name that is neither. The slice is the block's own, valid until the
// next Reset.
func (b *Block) Column(name string) any {
	if name == b.s.Extra {
		return b.extra.strings()
	}
	for i, c := range b.s.Columns {
		if c.Name == name {
			return b.cols[i].Values()
		}
	}
	if b.file != nil {
		switch name {
		case IdentityColumns[0].Name:
			return b.file.Values()
		case IdentityColumns[1].Name:
			return b.offset.Values()
		}
	}
	return nil
}

// Input returns column name as Column does, or as a ch-go column sharing
// the block's memory where its type has one (see Vector.Input).
func (b *Block) Input(name string) any {
	if name == b.s.Extra {
		return b.extra.colStr()
	}
	for i, c := range b.s.Columns {
		if c.Name == name {
			return b.cols[i].Input()
		}
	}
	if b.file != nil {
		switch name {
		case IdentityColumns[0].Name:
			return b.file.Input()
		case IdentityColumns[1].Name:
			return b.offset.Input()
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
func (b *Block) Append(fields []Field) error { return b.AppendKeyed(nil, fields) }

// AppendKeyed is Append for a record whose Kafka key is key. For an
// Identity schema the key is where the record came from (IdentityKey),
// read into the identity columns and checked by CheckKey; other schemas
// build the key from the fields, and key is not used.
func (b *Block) AppendKeyed(key []byte, fields []Field) error {
	var err error
	if b.key, err = b.s.Validate(b.key[:0], fields); err != nil {
		return err
	}
	var file []byte
	var offset uint64
	if b.s.Identity {
		if file, offset, err = ParseIdentityKey(key); err != nil {
			return err
		}
		b.key = append(b.key[:0], key...)
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
	for i, col := range b.cols {
		v := b.value(i, fields)
		if col.col.Type != String || v == nil {
			continue
		}
		if col.text.buf, err = AppendText(col.text.buf, v); err != nil {
			b.undo(i)
			return &ValidationError{Field: b.s.Columns[i].Name, Reason: err.Error()}
		}
	}

	// From here on nothing fails: Validate has accepted every value.
	for i, col := range b.cols {
		v := b.value(i, fields)
		switch {
		case col.col.Type == String:
			col.text.ends = append(col.text.ends, len(col.text.buf))
			if col.col.Nullable {
				col.nulls = append(col.nulls, v == nil)
			}
		case v == nil:
			col.appendMissing()
		default:
			b.text, _ = col.col.Canonical(b.text[:0], v)
			col.appendText(b.text)
		}
	}
	if b.file != nil {
		b.file.text.buf = append(b.file.text.buf, file...)
		b.file.text.ends = append(b.file.text.ends, len(b.file.text.buf))
		b.offset.uints = append(b.offset.uints, offset)
	}
	b.appendExtra(fields)
	b.n++
	return nil
}

// value returns the value of column i in the record being appended, or nil
// when it has none (missing, null, or for a type other than String the
// empty string of a blank CSV cell).
func (b *Block) value(i int, fields []Field) []byte {
	k := b.last[i]
	if k < 0 {
		return nil
	}
	v, ok := present(fields[k].Value, &b.s.Columns[i])
	if !ok {
		return nil
	}
	return v
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
