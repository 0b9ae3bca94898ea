package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"skuflow/internal/jsonstr"
	"slices"
	"strings"
	"unicode/utf8"
)

// Column is one typed field of a record.
type Column struct {
	// Name is both the record's field name and the ClickHouse column name.
	// It is case-sensitive.
	Name string
	Type ColumnType
	// Required: the field must be present, not null, and not empty.
	Required bool
	// Nullable: a missing or null value is stored as NULL rather than the
	// type's default (0, "", 1970-01-01). Never for a key or group column.
	Nullable bool
}

// Schema describes one record type.
type Schema struct {
	// Name names the record type and its ClickHouse table.
	Name string
	// Topic is the Kafka topic of its records.
	Topic string
	// Partitions is the topic's partition count, fixed once it holds data
	// (invariant 2); 0: kafka.partitions (config.For applies it).
	Partitions int
	// Key lists the fields whose values form the Kafka key, in order. Every
	// key field is also a required column. Empty when Identity is set.
	Key []string
	// Identity, when set, makes a record's identity where it came from
	// rather than its fields: the content hash of its file and its place
	// in it (IdentityColumns). Pushing the same file again replaces its own
	// records; another file adds new ones.
	Identity bool
	// Columns are the typed fields, in table order. Fields of a record that
	// are not columns are kept, as JSON text, in the Extra column.
	Columns []Column
	// Extra is the name of the column holding the record's other fields as a
	// JSON object ("{}" when there are none).
	Extra string
	// Aggregates are kept exact by the aggregator, each in a view.
	Aggregates []Aggregate
}

// Aggregate is a declared aggregate of a record type: per group of the By
// columns' values, the number of keys (Sum empty) or the sum of column Sum
// over the current row of every key.
type Aggregate struct {
	// Name is the view users query: the By columns, then As.
	Name string
	// Table holds the aggregator's partial results, one row per
	// (partition, group), versioned.
	Table string
	By    []string
	// Sum is the integer column summed; empty counts keys.
	Sum string
	// As names the view's result column.
	As string
}

// Counts reports whether the aggregate counts keys rather than summing.
func (a *Aggregate) Counts() bool { return a.Sum == "" }

// Field is one top-level member of a decoded record: its name, unescaped, and
// its value as JSON text. Readers fill these; slices may point into reader
// buffers and are valid only until the reader's next call.
type Field struct {
	Name  []byte
	Value []byte
}

// Products is the built-in schema: products keyed by sku, counted by name
// in products_agg.
var Products = &Schema{
	Name:  "products",
	Topic: "products",
	Key:   []string{"sku"},
	Columns: []Column{
		{Name: "sku", Type: String, Required: true},
		{Name: "name", Type: String},
		{Name: "description", Type: String},
	},
	Extra: "extra",
	Aggregates: []Aggregate{
		{Name: "products_agg", Table: "product_counts", By: []string{"name"}, As: "no_of_products"},
	},
}

// ErrInvalidSchema is returned by Check for a schema that cannot work.
var ErrInvalidSchema = errors.New("invalid schema")

// MaxPartitions bounds a topic's partition count (kafka.partitions, a
// type's partitions).
const MaxPartitions = 10000

// Check reports whether the schema is usable, with the first reason it is
// not (Problems gives them all, each with where it is).
func (s *Schema) Check() error {
	if ps := s.Problems(); len(ps) > 0 {
		name := s.Name
		if name == "" {
			name = "(no name)"
		}
		return fmt.Errorf("%w %s: %s: %s", ErrInvalidSchema, name, ps[0].Path, ps[0].Reason)
	}
	return nil
}

// Problem is one reason a schema cannot work, and where: a path below the
// type's declaration ("key[1]", "columns[2].type", "aggregates[0].by[1]").
type Problem struct {
	Path   string
	Reason string
}

// Problems returns every reason the schema cannot work: a name, a key
// (or Identity, not both), every key field a required column, names that
// are unique and not reserved, known types, and aggregates over columns
// that can be grouped and summed exactly.
func (s *Schema) Problems() []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
	}
	if s.Name == "" {
		bad("name", "must not be empty")
	}
	ps = append(ps, s.identifierProblems()...)
	if s.Extra == "" {
		bad("extra", "must not be empty")
	} else if strings.HasPrefix(s.Extra, "_") {
		bad("extra", "%q: names starting with _ are skuflow's (provenance)", s.Extra)
	}
	seen := map[string]bool{s.Extra: true}
	for i, c := range s.Columns {
		path := fmt.Sprintf("columns[%d]", i)
		switch {
		case c.Name == "":
			bad(path+".name", "must not be empty")
		case seen[c.Name]:
			bad(path+".name", "%q is repeated (or is the extra column)", c.Name)
		case strings.HasPrefix(c.Name, "_"):
			bad(path+".name", "%q: names starting with _ are skuflow's (provenance)", c.Name)
		}
		seen[c.Name] = true
		if !c.Type.Valid() {
			bad(path+".type", "%q is not a column type (one of %s)", c.Type, typeList())
		}
		if c.Nullable && c.Required {
			bad(path+".nullable", "a required column is never null")
		}
	}
	switch {
	case s.Identity && len(s.Key) > 0:
		bad("key", "a type whose identity is its source has no key fields")
	case !s.Identity && len(s.Key) == 0:
		bad("key", "at least one key field is needed (or identity: source)")
	}
	for i, k := range s.Key {
		path := fmt.Sprintf("key[%d]", i)
		c, ok := s.Column(k)
		switch {
		case !ok:
			bad(path, "%q is not a column", k)
		case !c.Required:
			bad(path, "key column %q must be required", k)
		case c.Type == Float64:
			bad(path, "key column %q is Float64: two spellings of one number would be two keys", k)
		case slices.Contains(s.Key[:i], k):
			bad(path, "%q is repeated", k)
		}
	}
	// The type's own tables and views: an aggregate's view or table must
	// not be one of them (migration would take the records table for an
	// outdated view, or add an aggregate's columns to it).
	taken := map[string]string{s.Name: "the type's table", s.Name + "_final": "the type's final view"}
	claim := func(path, name, what string) {
		if other, ok := taken[name]; ok {
			bad(path, "%q is already %s", name, other)
			return
		}
		taken[name] = what
	}
	for i, a := range s.Aggregates {
		path := fmt.Sprintf("aggregates[%d]", i)
		if a.Name == "" {
			bad(path+".name", "must not be empty")
		} else {
			claim(path+".name", a.Name, fmt.Sprintf("the view of aggregates[%d]", i))
		}
		if a.Table == "" {
			bad(path+".table", "must not be empty")
		} else {
			claim(path+".table", a.Table, fmt.Sprintf("the table of aggregates[%d]", i))
		}
		if a.As == "" {
			bad(path+".as", "must not be empty")
		} else if slices.Contains(aggregateOwn, a.As) {
			bad(path+".as", "%q is a column of the aggregate's table (%s): choose another name", a.As, strings.Join(aggregateOwn, ", "))
		}
		if len(a.By) == 0 {
			bad(path+".by", "at least one column to group by is needed")
		}
		for j, b := range a.By {
			at := fmt.Sprintf("%s.by[%d]", path, j)
			c, ok := s.Column(b)
			switch {
			case !ok:
				bad(at, "%q is not a column", b)
			case c.Nullable:
				bad(at, "column %q is nullable: a group needs a value", b)
			case c.Type == Float64:
				bad(at, "column %q is Float64: two spellings of one number would be two groups", b)
			case slices.Contains(a.By[:j], b):
				bad(at, "%q is repeated", b)
			case slices.Contains(aggregateOwn, b):
				bad(at, "%q is a column of the aggregate's table (%s): rename the column", b, strings.Join(aggregateOwn, ", "))
			case b == a.As:
				bad(path+".as", "%q is also a column grouped by", b)
			}
		}
		if a.Sum != "" {
			if c, ok := s.Column(a.Sum); !ok {
				bad(path+".sum", "%q is not a column", a.Sum)
			} else if !c.Type.Integer() {
				bad(path+".sum", "column %q is %s: only integer columns (Int64, UInt64) sum exactly", a.Sum, c.Type)
			}
		}
	}
	return ps
}

// aggregateOwn are the columns of an aggregate's table besides its groups
// (AggregateColumns): no group or result column may take their names.
var aggregateOwn = []string{"partition", AggCount, AggTotal, "version", "updated_at"}

func typeList() string {
	names := make([]string, len(ColumnTypes))
	for i, t := range ColumnTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// Column returns the column with the given name.
func (s *Schema) Column(name string) (Column, bool) {
	for _, c := range s.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// HasField reports whether name is one of the schema's columns.
func (s *Schema) HasField(name string) bool {
	_, ok := s.Column(name)
	return ok
}

// ValidationError says why a record does not fit its schema.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

// Validate checks a record's fields against the schema and returns its Kafka
// key, appended to dst (nothing for an Identity schema, whose key is where
// the record came from: IdentityKey). When a field occurs more than once,
// the last occurrence counts, as in most JSON decoders.
//
// The key is built from the canonical text of the key values (see
// Column.Canonical), so that every spelling of a value gives one key: a
// single key is that text, a composite key the JSON array of the texts as
// strings, which keeps the parts apart whatever bytes they hold.
func (s *Schema) Validate(dst []byte, fields []Field) ([]byte, error) {
	// The value of a single String key, kept from the loop: the common
	// case (products) then looks its key up once.
	var key []byte
	single := len(s.Key) == 1
	for i := range s.Columns {
		c := &s.Columns[i]
		v, ok := value(fields, c)
		if !ok {
			if c.Required {
				return dst, c.invalid(requiredReason(fields, c))
			}
			continue
		}
		if c.Type == String {
			// The cheap check: the text is unescaped where it is stored.
			if v[0] != '"' {
				return dst, c.invalid(fmt.Sprintf("want a string, got %s", kind(v)))
			}
			if c.Required && len(v) == 2 {
				return dst, c.invalid("required field is empty")
			}
			if single && c.Name == s.Key[0] {
				key = v
			}
			continue
		}
		// Converted into dst's spare room, and dropped: only the check counts.
		if _, err := c.Canonical(dst[len(dst):], v); err != nil {
			return dst, err
		}
	}
	if key != nil {
		return AppendText(dst, key)
	}
	return s.AppendKey(dst, fields)
}

// AppendKey appends the key of a record that Validate has accepted.
func (s *Schema) AppendKey(dst []byte, fields []Field) ([]byte, error) {
	if s.Identity {
		return dst, nil
	}
	if len(s.Key) == 1 {
		c, _ := s.Column(s.Key[0])
		v, _ := value(fields, &c)
		return c.Canonical(dst, v)
	}
	dst = append(dst, '[')
	for i, k := range s.Key {
		if i > 0 {
			dst = append(dst, ',')
		}
		c, _ := s.Column(k)
		v, _ := value(fields, &c)
		// The text goes in, then its JSON string after it, which moves
		// over it: appendString reads the text where it is while
		// appending past its end (or into a new array).
		start := len(dst)
		var err error
		if dst, err = c.Canonical(dst, v); err != nil {
			return dst[:start], err
		}
		end := len(dst)
		dst = appendString(dst, dst[start:end])
		n := copy(dst[start:], dst[end:])
		dst = dst[:start+n]
	}
	return append(dst, ']'), nil
}

// value returns the value of column c in fields: the last field of its
// name, or false when there is none, it is null, or (for a type other
// than String) it is the empty string a blank CSV cell gives.
func value(fields []Field, c *Column) ([]byte, bool) {
	v, ok := lastValue(fields, c.Name)
	if !ok {
		return nil, false
	}
	return present(v, c)
}

// present returns v, a value of column c, or false when it is no value:
// null, or (for a type other than String) the empty string.
func present(v []byte, c *Column) ([]byte, bool) {
	if isNull(v) || c.Type != String && empty(v) {
		return nil, false
	}
	return v, true
}

func requiredReason(fields []Field, c *Column) string {
	if v, ok := lastValue(fields, c.Name); ok && !isNull(v) {
		return "required field is empty"
	}
	return "required field is missing"
}

// lastValue returns the value of the last field called name.
func lastValue(fields []Field, name string) ([]byte, bool) {
	for i := len(fields) - 1; i >= 0; i-- {
		if string(fields[i].Name) == name {
			return fields[i].Value, true
		}
	}
	return nil, false
}

func isNull(v []byte) bool { return len(v) == 4 && string(v) == "null" }

// kind names the JSON type of a value for error messages.
func kind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// Kind names the JSON type of a value ("a string", "an array", ...), for
// error messages.
func Kind(v []byte) string { return kind(v) }

// AppendText appends the text of a JSON value to dst: a string unescaped,
// anything else as it is written.
func AppendText(dst, v []byte) ([]byte, error) {
	if len(v) < 2 || v[0] != '"' {
		return append(dst, v...), nil
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return append(dst, inner...), nil
	}
	n := len(dst)
	out, err := jsonstr.Unescape(dst, inner)
	if err != nil {
		return dst, fmt.Errorf("unescape string: %w", err)
	}
	if !utf8.Valid(out[n:]) {
		return dst, errors.New("string is not valid UTF-8")
	}
	return out, nil
}

// Text returns the text of the last field called name (a string unescaped),
// appended to dst, and whether the field is present and not null.
func Text(dst []byte, fields []Field, name string) ([]byte, bool, error) {
	v, ok := lastValue(fields, name)
	if !ok || isNull(v) {
		return dst, false, nil
	}
	out, err := AppendText(dst, v)
	return out, true, err
}

// AppendValue appends the canonical text of column c's value in a record's
// fields (Column.Canonical), and reports whether it has one: false for a
// missing, null or (not String) blank value, whose column then holds NULL
// or the type's default.
func AppendValue(dst []byte, fields []Field, c Column) ([]byte, bool, error) {
	v, ok := value(fields, &c)
	if !ok {
		return dst, false, nil
	}
	out, err := c.Canonical(dst, v)
	return out, err == nil, err
}
