package schemas

import (
	"fmt"
	"math"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
)

// ColumnType is the type of a column as a record type declares it. Only
// types that behave the same on ClickHouse 18.16 and on current releases
// are offered; each has one ClickHouse type (ClickHouseType).
type ColumnType string

// The column types a schema may use.
const (
	String  ColumnType = "String"
	Int64   ColumnType = "Int64"
	UInt64  ColumnType = "UInt64"
	Float64 ColumnType = "Float64"
	// Bool is stored as UInt8, 0 or 1: 18.16 has no Bool.
	Bool ColumnType = "Bool"
	// Date is a calendar day, 1970-01-01 to 2105-12-31: ClickHouse's Date,
	// within what 18.16 prints back as it is (it prints days from
	// 2106-02-07 on as 1970-01-01).
	Date ColumnType = "Date"
	// DateTime is a time to the second, in UTC: DateTime('UTC'), so that
	// it reads the same whatever the server's time zone; 1970 to the end
	// of 2105, as Date.
	DateTime ColumnType = "DateTime"
	// Timestamp is a time to the millisecond, in UTC. 18.16 has no
	// DateTime64, so it is stored as the String "YYYY-MM-DD hh:mm:ss.sss":
	// fixed width, so it sorts and compares as text in time order, it reads
	// as what it is, and current ClickHouse turns it into a DateTime64 with
	// toDateTime64(ts, 3) (18.16: toDateTime(substring(ts, 1, 19)) for the
	// second).
	Timestamp ColumnType = "Timestamp"
)

// ColumnTypes lists every column type, in the order the docs give them.
var ColumnTypes = []ColumnType{String, Int64, UInt64, Float64, Bool, Date, DateTime, Timestamp}

// Valid reports whether t is one of ColumnTypes.
func (t ColumnType) Valid() bool {
	for _, c := range ColumnTypes {
		if t == c {
			return true
		}
	}
	return false
}

// Integer reports whether t holds whole numbers (a sum of them is exact).
func (t ColumnType) Integer() bool { return t == Int64 || t == UInt64 }

// clickHouse is t's ClickHouse type, without Nullable.
func (t ColumnType) clickHouse() string {
	switch t {
	case Bool:
		return "UInt8"
	case DateTime:
		return "DateTime('UTC')"
	case Timestamp:
		return "String"
	}
	return string(t)
}

// ClickHouseType is the column's type in ClickHouse.
func (c Column) ClickHouseType() string {
	if c.Nullable {
		return "Nullable(" + c.Type.clickHouse() + ")"
	}
	return c.Type.clickHouse()
}

// Layouts of the canonical text of the time types, in UTC.
const (
	dateLayout      = "2006-01-02"
	dateTimeLayout  = "2006-01-02 15:04:05"
	timestampLayout = "2006-01-02 15:04:05.000"
)

// The range of Date and DateTime: from the Unix epoch (both are unsigned
// on 18.16) to the end of 2105, which 18.16's Date and DateTime both print
// back as they are and clickhouse-go writes.
var (
	minTime  = time.Unix(0, 0).UTC()
	maxDate  = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
	maxTime  = time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
	minStamp = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxStamp = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
)

// Canonical appends the canonical text of v, a present, non-null JSON value
// of column c, to dst: the value as the column holds it, written as
// ClickHouse's toString writes it (a string unescaped, an integer in
// decimal, a Bool 0 or 1, a Date YYYY-MM-DD, a DateTime YYYY-MM-DD hh:mm:ss,
// a Timestamp YYYY-MM-DD hh:mm:ss.sss, both UTC). Keys and aggregate
// groups are built from it, so that two spellings of one value (a number
// in quotes from a CSV file, a time with another offset) are one value.
//
// Values come as JSON: a number of a numeric column may also be a string
// holding the number, as every value of a CSV row is. A value that does
// not fit is a *ValidationError naming the field and why.
func (c *Column) Canonical(dst, v []byte) ([]byte, error) {
	if c.Type == String {
		if len(v) == 0 || v[0] != '"' {
			return dst, c.invalid(fmt.Sprintf("want a string, got %s", kind(v)))
		}
		if c.Required && len(v) == 2 {
			return dst, c.invalid("required field is empty")
		}
		out, err := AppendText(dst, v)
		if err != nil {
			return dst, c.invalid(err.Error())
		}
		return out, nil
	}
	text, quoted, err := scalarText(v)
	if err != nil {
		return dst, c.invalid(fmt.Sprintf("want %s, got %s", c.Type.want(), kind(v)))
	}
	switch c.Type {
	case Int64:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return dst, c.invalid(fmt.Sprintf("not an integer that fits Int64: %s", show(v)))
		}
		return strconv.AppendInt(dst, n, 10), nil
	case UInt64:
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return dst, c.invalid(fmt.Sprintf("not a non-negative integer that fits UInt64: %s", show(v)))
		}
		return strconv.AppendUint(dst, n, 10), nil
	case Float64:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || quoted && !jsonNumber(text) {
			return dst, c.invalid(fmt.Sprintf("not a finite number: %s", show(v)))
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	case Bool:
		switch text {
		case "true", "1":
			return append(dst, '1'), nil
		case "false", "0":
			return append(dst, '0'), nil
		}
		return dst, c.invalid(fmt.Sprintf("not a boolean (true, false, 1 or 0): %s", show(v)))
	case Date:
		t, err := time.Parse(dateLayout, text)
		if !quoted || err != nil || t.Before(minTime) || t.After(maxDate) {
			return dst, c.invalid(fmt.Sprintf("not a date (YYYY-MM-DD, 1970-01-01 to 2105-12-31): %s", show(v)))
		}
		return t.AppendFormat(dst, dateLayout), nil
	case DateTime, Timestamp:
		t, ok := parseTime(text)
		if !quoted || !ok {
			return dst, c.invalid(fmt.Sprintf("not an RFC 3339 time: %s", show(v)))
		}
		if c.Type == DateTime {
			t = t.Truncate(time.Second)
			if t.Before(minTime) || t.After(maxTime) {
				return dst, c.invalid(fmt.Sprintf("time out of DateTime's range (1970 to 2105): %s", show(v)))
			}
			return t.AppendFormat(dst, dateTimeLayout), nil
		}
		t = t.Truncate(time.Millisecond)
		if t.Before(minStamp) || t.After(maxStamp) {
			return dst, c.invalid(fmt.Sprintf("time out of range (years 1 to 9999): %s", show(v)))
		}
		return t.AppendFormat(dst, timestampLayout), nil
	}
	return dst, c.invalid(fmt.Sprintf("unknown column type %q", c.Type))
}

// TextSQL returns the SQL that reads column expression expr back as its
// canonical text, on ClickHouse 18.16 and current releases alike:
// toString, but for the epoch, which 18.16 prints as 0000-00-00.
func (c *Column) TextSQL(expr string) string {
	switch c.Type {
	case Date:
		return fmt.Sprintf("if(toUInt16(%s) = 0, '1970-01-01', toString(%s))", expr, expr)
	case DateTime:
		return fmt.Sprintf("if(toUInt32(%s) = 0, '1970-01-01 00:00:00', toString(%s))", expr, expr)
	}
	return "toString(" + expr + ")"
}

func (c *Column) invalid(reason string) error { return &ValidationError{Field: c.Name, Reason: reason} }

// want names what a column of type t takes, for error messages.
func (t ColumnType) want() string {
	switch t {
	case Int64, UInt64:
		return "an integer"
	case Float64:
		return "a number"
	case Bool:
		return "a boolean"
	}
	return "a string"
}

// scalarText returns the text of a JSON number, boolean or string (a
// string unescaped, and quoted true), or an error for an object or array.
func scalarText(v []byte) (text string, quoted bool, err error) {
	if len(v) == 0 {
		return "", false, fmt.Errorf("empty value")
	}
	switch v[0] {
	case '{', '[', 'n':
		return "", false, fmt.Errorf("not a scalar")
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, err
		}
		return s, true, nil
	}
	return string(v), false, nil
}

// jsonNumber reports whether s is written as a JSON number (so not "Inf",
// "0x1p-2" or "1_000", which strconv also takes).
func jsonNumber(s string) bool {
	return json.Valid([]byte(s)) && len(s) > 0 && (s[0] == '-' || s[0] >= '0' && s[0] <= '9')
}

// parseTime reads an RFC 3339 time (a fraction of any length, any offset)
// or "YYYY-MM-DD hh:mm:ss[.fff]", taken as UTC, as ClickHouse writes one.
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// show quotes a value for an error message, cut to a readable length.
func show(v []byte) string {
	const most = 64
	if len(v) > most {
		return string(v[:most]) + "..."
	}
	return string(v)
}

// empty reports whether v is the empty string, which a CSV row gives for a
// cell left blank: for a column of any type but String it is no value.
func empty(v []byte) bool { return len(v) == 2 && v[0] == '"' }
