package schemas

import (
	"reflect"
	"strconv"
	"testing"
	"time"
)

// TestCanonical checks every column type's conversion from JSON (and the
// string form a CSV cell takes) and its reasons for refusing a value.
func TestCanonical(t *testing.T) {
	for _, c := range []struct {
		typ       ColumnType
		in, want  string
		wantError string
	}{
		{String, `"a\u00e9"`, "aé", ""},
		{String, `5`, "", `field "f": want a string, got a number`},
		{Int64, `-42`, "-42", ""},
		{Int64, `"42"`, "42", ""},
		{Int64, `" 42"`, "", `not an integer that fits Int64: " 42"`},
		{Int64, `4.2`, "", `not an integer that fits Int64: 4.2`},
		{Int64, `[1]`, "", `want an integer, got an array`},
		{UInt64, `18446744073709551615`, "18446744073709551615", ""},
		{UInt64, `-1`, "", `not a non-negative integer that fits UInt64: -1`},
		{Float64, `1.50`, "1.5", ""},
		{Float64, `"2e3"`, "2000", ""},
		{Float64, `"NaN"`, "", `not a finite number: "NaN"`},
		{Float64, `"Inf"`, "", `not a finite number: "Inf"`},
		{Bool, `true`, "1", ""},
		{Bool, `"0"`, "0", ""},
		{Bool, `"yes"`, "", `not a boolean (true, false, 1 or 0): "yes"`},
		{Date, `"2019-04-23"`, "2019-04-23", ""},
		{Date, `"2019-02-30"`, "", `not a date (YYYY-MM-DD, 1970-01-01 to 2105-12-31): "2019-02-30"`},
		{Date, `"1969-12-31"`, "", `not a date`},
		{Date, `"1970-01-01"`, "1970-01-01", ""},
		{Date, `"2105-12-31"`, "2105-12-31", ""},
		{Date, `"2106-02-07"`, "", `not a date`},
		{Date, `20190423`, "", `not a date`},
		{DateTime, `"2019-04-23T17:25:43.999+02:00"`, "2019-04-23 15:25:43", ""},
		{DateTime, `"2019-04-23 17:25:43"`, "2019-04-23 17:25:43", ""},
		{DateTime, `"2200-01-01T00:00:00Z"`, "", `time out of DateTime's range`},
		{DateTime, `"2106-01-01T00:00:00Z"`, "", `time out of DateTime's range`},
		{DateTime, `"2105-12-31T23:59:59Z"`, "2105-12-31 23:59:59", ""},
		{DateTime, `"1970-01-01T00:00:00Z"`, "1970-01-01 00:00:00", ""},
		{Timestamp, `"2019-04-23T17:25:43.111Z"`, "2019-04-23 17:25:43.111", ""},
		{Timestamp, `"2019-04-23T17:25:43.1119Z"`, "2019-04-23 17:25:43.111", ""},
		{Timestamp, `"2019-04-23T19:25:43+02:00"`, "2019-04-23 17:25:43.000", ""},
		{Timestamp, `"2019-04-23 17:25:43.5"`, "2019-04-23 17:25:43.500", ""},
		{Timestamp, `"2019-13-01"`, "", `field "f": not an RFC 3339 time: "2019-13-01"`},
		{Timestamp, `1556040343111`, "", `not an RFC 3339 time: 1556040343111`},
	} {
		t.Run(string(c.typ)+" "+c.in, func(t *testing.T) {
			col := Column{Name: "f", Type: c.typ}
			got, err := col.Canonical(nil, []byte(c.in))
			if c.wantError != "" {
				if err == nil || !contains(err.Error(), c.wantError) {
					t.Fatalf("Canonical(%s) = %q, %v; want error with %q", c.in, got, err, c.wantError)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("Canonical(%s) = %q, %v; want %q", c.in, got, err, c.want)
			}
			// The canonical text is a fixed point: reading it back (as
			// toString gives it from ClickHouse) means the same value.
			again, err := col.Canonical(nil, strconv.AppendQuote(nil, string(got)))
			if err != nil || string(again) != c.want {
				t.Fatalf("Canonical of its own text %q = %q, %v", got, again, err)
			}
			v := NewVector(col)
			if err := v.Append(got); err != nil || v.Len() != 1 {
				t.Fatalf("Vector.Append(%q): %v, len %d", got, err, v.Len())
			}
		})
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestBlockAllTypes appends records of every type, with a missing value
// of a nullable and of a plain column, and checks the values the INSERT
// gets.
func TestBlockAllTypes(t *testing.T) {
	s := &Schema{Name: "all", Key: []string{"id"}, Extra: "extra", Columns: []Column{
		{Name: "id", Type: Int64, Required: true},
		{Name: "u", Type: UInt64},
		{Name: "f", Type: Float64, Nullable: true},
		{Name: "b", Type: Bool},
		{Name: "d", Type: Date},
		{Name: "dt", Type: DateTime, Nullable: true},
		{Name: "ts", Type: Timestamp},
		{Name: "s", Type: String, Nullable: true},
	}}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	b := s.NewBlock()
	if err := b.Append(fields("id", `"1"`, "u", `7`, "f", `0.5`, "b", `true`, "d", `"2020-02-29"`, "dt", `"2020-02-29T23:59:59Z"`, "ts", `"2020-02-29T23:59:59.123Z"`, "s", `"x"`)); err != nil {
		t.Fatal(err)
	}
	// Blank CSV cells ("") are missing for every type but String.
	if err := b.Append(fields("id", `2`, "u", `""`, "f", `""`, "d", `null`, "s", `null`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(fields("id", `3`, "d", `"2020-02-30"`)); err == nil || err.Error() != `field "d": not a date (YYYY-MM-DD, 1970-01-01 to 2105-12-31): "2020-02-30"` {
		t.Fatalf("bad date: %v", err)
	}
	day := time.Date(2020, 2, 29, 0, 0, 0, 0, time.UTC)
	second := time.Date(2020, 2, 29, 23, 59, 59, 0, time.UTC)
	half, x := 0.5, "x"
	want := map[string]any{
		"id": []int64{1, 2},
		"u":  []uint64{7, 0},
		"f":  []*float64{&half, nil},
		"b":  []uint8{1, 0},
		"d":  []time.Time{day, time.Unix(0, 0).UTC()},
		"dt": []*time.Time{&second, nil},
		"ts": []string{"2020-02-29 23:59:59.123", "1970-01-01 00:00:00.000"},
		"s":  []*string{&x, nil},
	}
	for name, w := range want {
		if got := b.Column(name); !reflect.DeepEqual(got, w) {
			t.Errorf("column %s = %#v, want %#v", name, got, w)
		}
	}
}

func TestIdentityKey(t *testing.T) {
	sha := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	key := IdentityKey(nil, sha, 1234)
	file, off, err := ParseIdentityKey(key)
	if err != nil || string(file) != sha || off != 1234 {
		t.Fatalf("round trip of %s: %s %d %v", key, file, off, err)
	}
	for _, bad := range []string{"", sha, sha + "/", sha + "/x", sha + "/01", sha[:63] + "G/1", "ab/1", sha + "/-1"} {
		if _, _, err := ParseIdentityKey([]byte(bad)); err == nil {
			t.Errorf("ParseIdentityKey(%q) passed", bad)
		}
	}
	s := &Schema{Name: "plays", Identity: true, Extra: "extra", Columns: []Column{{Name: "song", Type: String, Required: true}}}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	b := s.NewBlock()
	if err := b.AppendKeyed(key, fields("song", `"a"`)); err != nil {
		t.Fatal(err)
	}
	if err := b.AppendKeyed([]byte("a,b"), fields("song", `"a"`)); err == nil {
		t.Fatal("a key that is no identity passed")
	}
	if got := b.Column("_file_sha256"); !reflect.DeepEqual(got, []string{sha}) {
		t.Fatalf("_file_sha256 = %v", got)
	}
	if got := b.Column("_file_offset"); !reflect.DeepEqual(got, []uint64{1234}) {
		t.Fatalf("_file_offset = %v", got)
	}
	if got := string(s.AppendKeyFromTexts(nil, [][]byte{[]byte(sha), []byte("1234")})); got != string(key) {
		t.Fatalf("key from texts %s, want %s", got, key)
	}
}

// FuzzCanonical: no value makes a conversion panic, and an accepted value's
// canonical text reads back as itself, for every type.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`"2019-04-23T17:25:43.111Z"`, `12`, `"12"`, `-0`, `1e5`, `"2019-02-28"`, `true`, `"a\u0000"`, `null`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, typ := range ColumnTypes {
			col := Column{Name: "f", Type: typ}
			got, err := col.Canonical(nil, []byte(in))
			if err != nil || typ == String {
				continue
			}
			again, err := col.Canonical(nil, strconv.AppendQuote(nil, string(got)))
			if err != nil || string(again) != string(got) {
				t.Fatalf("%s: %s -> %q -> %q, %v", typ, in, got, again, err)
			}
		}
	})
}
