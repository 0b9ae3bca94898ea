// Package export writes what skuflow holds (a record type's current rows,
// one per key, or an aggregate) as files other tools read: Parquet, NDJSON
// or CSV. It streams: one block of the ClickHouse result and one row group
// are held at a time, however many rows there are. With a state file it
// writes only what changed since the last export (incremental parts).
package export

import (
	"fmt"
	"strings"
	"time"

	"skuflow/schemas"
)

// Kind is what a column's values are, whatever ClickHouse calls the type:
// every writer maps each kind to its own type.
type Kind int

// The kinds of column an export writes.
const (
	String Kind = iota
	Int64
	UInt64
	Float64
	Bool
	Date
	// DateTime is a time to the second, Timestamp one to the millisecond;
	// both in UTC.
	DateTime
	Timestamp
)

func (k Kind) String() string {
	return [...]string{"String", "Int64", "UInt64", "Float64", "Bool", "Date", "DateTime", "Timestamp"}[k]
}

// MarshalText names the kind in `loader export --json`, where its number
// would say nothing.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Column is a column of an export.
type Column struct {
	Name     string `json:"name"`
	Kind     Kind   `json:"kind"`
	Nullable bool   `json:"nullable"`
}

// kindOf maps a ClickHouse type (as the server names a result column) to
// a kind; declared, when set, is the type the record type declares for the
// column, which says what ClickHouse cannot: a UInt8 that is a Bool, a
// String that is a millisecond Timestamp.
func kindOf(chType string, declared schemas.ColumnType) (Kind, bool, error) {
	t, nullable := chType, false
	if inner, ok := strings.CutPrefix(t, "Nullable("); ok {
		t, nullable = strings.TrimSuffix(inner, ")"), true
	}
	switch declared {
	case schemas.Bool:
		return Bool, nullable, nil
	case schemas.Timestamp:
		return Timestamp, nullable, nil
	}
	switch {
	case t == "String" || strings.HasPrefix(t, "FixedString("):
		return String, nullable, nil
	case t == "Int8" || t == "Int16" || t == "Int32" || t == "Int64":
		return Int64, nullable, nil
	case t == "UInt8" || t == "UInt16" || t == "UInt32" || t == "UInt64":
		return UInt64, nullable, nil
	case t == "Float32" || t == "Float64":
		return Float64, nullable, nil
	case t == "Date":
		return Date, nullable, nil
	case t == "DateTime" || strings.HasPrefix(t, "DateTime("):
		return DateTime, nullable, nil
	}
	return 0, false, fmt.Errorf("cannot export a column of ClickHouse type %s", chType)
}

// Value is one cell of a row, read from ClickHouse: the field that its
// column's kind uses is set (T for the three time kinds, U for UInt64 and
// Bool, as 0 or 1).
type Value struct {
	Null bool
	S    string
	I    int64
	U    uint64
	F    float64
	T    time.Time
}

// timestampLayout is how a Timestamp column is stored (schemas.Timestamp).
const timestampLayout = "2006-01-02 15:04:05.000"

// jsonTimestamp and jsonDateTime are how the text formats write the time
// kinds: RFC 3339 in UTC, which `loader push` reads back as the same
// value.
const (
	jsonTimestamp = "2006-01-02T15:04:05.000Z07:00"
	jsonDateTime  = time.RFC3339
)
