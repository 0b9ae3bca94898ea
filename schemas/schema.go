package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// ColumnType is the ClickHouse type of a column. Only types that behave the
// same on ClickHouse 18.16 and on current releases are offered.
type ColumnType string

// The column types a schema may use.
const (
	String  ColumnType = "String"
	Int64   ColumnType = "Int64"
	Float64 ColumnType = "Float64"
)

// Column is one typed field of a record.
type Column struct {
	// Name is both the record's field name and the ClickHouse column name.
	// It is case-sensitive.
	Name     string
	Type     ColumnType
	Required bool // the field must be present, not null, and (for String) not empty
}

// Schema describes one record type.
type Schema struct {
	// Name names the record type and its ClickHouse table.
	Name string
	// Key lists the fields whose values form the Kafka key, in order. Every
	// key field is also a required column.
	Key []string
	// Columns are the typed fields, in table order. Fields of a record that
	// are not columns are kept, as JSON text, in the Extra column.
	Columns []Column
	// Extra is the name of the column holding the record's other fields as a
	// JSON object ("{}" when there are none).
	Extra string
	// AggregateBy names the column whose values the aggregate counts keys by.
	AggregateBy string
}

// Field is one top-level member of a decoded record: its name, unescaped, and
// its value as JSON text. Readers fill these; slices may point into reader
// buffers and are valid only until the reader's next call.
type Field struct {
	Name  []byte
	Value []byte
}

// Products is the built-in schema: products keyed by sku.
var Products = &Schema{
	Name: "products",
	Key:  []string{"sku"},
	Columns: []Column{
		{Name: "sku", Type: String, Required: true},
		{Name: "name", Type: String},
		{Name: "description", Type: String},
	},
	Extra:       "extra",
	AggregateBy: "name",
}

// ErrInvalidSchema is returned by Check for a schema that cannot work.
var ErrInvalidSchema = errors.New("invalid schema")

// Check reports whether the schema is usable: a name, at least one key
// field, every key field a required column, and no duplicate names.
func (s *Schema) Check() error {
	if s.Name == "" {
		return fmt.Errorf("%w: no name", ErrInvalidSchema)
	}
	if len(s.Key) == 0 {
		return fmt.Errorf("%w %s: no key field", ErrInvalidSchema, s.Name)
	}
	seen := map[string]bool{s.Extra: true}
	for _, c := range s.Columns {
		if c.Name == "" || seen[c.Name] || strings.HasPrefix(c.Name, "_") {
			return fmt.Errorf("%w %s: column name %q is empty, repeated or reserved", ErrInvalidSchema, s.Name, c.Name)
		}
		seen[c.Name] = true
	}
	for _, k := range s.Key {
		c, ok := s.Column(k)
		if !ok || !c.Required {
			return fmt.Errorf("%w %s: key field %q must be a required column", ErrInvalidSchema, s.Name, k)
		}
	}
	if s.AggregateBy != "" {
		if _, ok := s.Column(s.AggregateBy); !ok {
			return fmt.Errorf("%w %s: aggregate column %q is not a column", ErrInvalidSchema, s.Name, s.AggregateBy)
		}
	}
	return nil
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
// key, appended to dst. When a field occurs more than once, the last
// occurrence counts, as in most JSON decoders.
func (s *Schema) Validate(dst []byte, fields []Field) ([]byte, error) {
	for _, c := range s.Columns {
		v, present := lastValue(fields, c.Name)
		if !present || isNull(v) {
			if c.Required {
				return dst, &ValidationError{Field: c.Name, Reason: "required field is missing"}
			}
			continue
		}
		if err := checkType(c, v); err != nil {
			return dst, err
		}
	}
	if len(s.Key) == 1 {
		v, _ := lastValue(fields, s.Key[0])
		return AppendText(dst, v)
	}
	// A composite key is the JSON array of the key values, which keeps the
	// parts apart whatever bytes they hold.
	dst = append(dst, '[')
	for i, k := range s.Key {
		if i > 0 {
			dst = append(dst, ',')
		}
		v, _ := lastValue(fields, k)
		dst = append(dst, v...)
	}
	return append(dst, ']'), nil
}

func checkType(c Column, v []byte) error {
	switch c.Type {
	case String:
		if v[0] != '"' {
			return &ValidationError{Field: c.Name, Reason: fmt.Sprintf("want a string, got %s", kind(v))}
		}
		if c.Required && len(v) == 2 {
			return &ValidationError{Field: c.Name, Reason: "required field is empty"}
		}
	case Int64:
		var n int64
		if err := json.Unmarshal(v, &n); err != nil {
			return &ValidationError{Field: c.Name, Reason: fmt.Sprintf("want an integer, got %s", kind(v))}
		}
	case Float64:
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return &ValidationError{Field: c.Name, Reason: fmt.Sprintf("want a number, got %s", kind(v))}
		}
	}
	return nil
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
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return dst, fmt.Errorf("unescape string: %w", err)
	}
	if !utf8.ValidString(s) {
		return dst, errors.New("string is not valid UTF-8")
	}
	return append(dst, s...), nil
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
