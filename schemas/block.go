package schemas

import (
	"fmt"
	"sort"

	json "github.com/goccy/go-json"
)

// Block gathers records column by column for one columnar INSERT: one
// typed slice per schema column, and the extra column.
type Block struct {
	s       *Schema
	strings map[string]*[]string
	ints    map[string]*[]int64
	floats  map[string]*[]float64
	extra   []string
	n       int
}

// NewBlock returns an empty block for s.
func (s *Schema) NewBlock() *Block {
	b := &Block{s: s, strings: map[string]*[]string{}, ints: map[string]*[]int64{}, floats: map[string]*[]float64{}}
	for _, c := range s.Columns {
		switch c.Type {
		case String:
			b.strings[c.Name] = new([]string)
		case Int64:
			b.ints[c.Name] = new([]int64)
		case Float64:
			b.floats[c.Name] = new([]float64)
		}
	}
	return b
}

// Len is the number of records in the block.
func (b *Block) Len() int { return b.n }

// Reset empties the block, keeping its memory.
func (b *Block) Reset() {
	for _, v := range b.strings {
		*v = (*v)[:0]
	}
	for _, v := range b.ints {
		*v = (*v)[:0]
	}
	for _, v := range b.floats {
		*v = (*v)[:0]
	}
	b.extra = b.extra[:0]
	b.n = 0
}

// Column returns the values of column name (a []string, []int64 or
// []float64), or of the extra column.
func (b *Block) Column(name string) any {
	if name == b.s.Extra {
		return b.extra
	}
	if v, ok := b.strings[name]; ok {
		return *v
	}
	if v, ok := b.ints[name]; ok {
		return *v
	}
	if v, ok := b.floats[name]; ok {
		return *v
	}
	return nil
}

// Append decodes one record, a JSON object, validates it against the
// schema, and appends it. A record that does not fit is not appended and
// the error says why.
func (b *Block) Append(value []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(value, &obj); err != nil {
		return &ValidationError{Reason: fmt.Sprintf("value is not a JSON object: %v", err)}
	}
	if obj == nil {
		return &ValidationError{Reason: "value is null, not a JSON object"}
	}
	fields := make([]Field, 0, len(obj))
	for k, v := range obj {
		fields = append(fields, Field{Name: []byte(k), Value: v})
	}
	if _, err := b.s.Validate(nil, fields); err != nil {
		return err
	}
	// Every check is done: from here on nothing fails, so the columns stay
	// the same length.
	for _, c := range b.s.Columns {
		v, present := obj[c.Name]
		if present && isNull(v) {
			present = false
		}
		switch c.Type {
		case String:
			var s string
			if present {
				_ = json.Unmarshal(v, &s) // Validate checked it is a string
			}
			*b.strings[c.Name] = append(*b.strings[c.Name], s)
		case Int64:
			var n int64
			if present {
				_ = json.Unmarshal(v, &n)
			}
			*b.ints[c.Name] = append(*b.ints[c.Name], n)
		case Float64:
			var f float64
			if present {
				_ = json.Unmarshal(v, &f)
			}
			*b.floats[c.Name] = append(*b.floats[c.Name], f)
		}
		delete(obj, c.Name)
	}
	b.extra = append(b.extra, extraJSON(obj))
	b.n++
	return nil
}

// extraJSON writes the fields that are not columns as one JSON object, keys
// sorted so that the same record always gives the same text.
func extraJSON(rest map[string]json.RawMessage) string {
	if len(rest) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(rest))
	for k := range rest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		name, _ := json.Marshal(k)
		out = append(out, name...)
		out = append(out, ':')
		out = append(out, rest[k]...)
	}
	return string(append(out, '}'))
}
