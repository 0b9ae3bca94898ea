package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// Every kind, nullable and not.
var allKinds = []Column{
	{Name: "s", Kind: String}, {Name: "i", Kind: Int64}, {Name: "u", Kind: UInt64}, {Name: "f", Kind: Float64},
	{Name: "b", Kind: Bool}, {Name: "d", Kind: Date}, {Name: "dt", Kind: DateTime}, {Name: "ts", Kind: Timestamp},
	{Name: "ns", Kind: String, Nullable: true}, {Name: "ni", Kind: Int64, Nullable: true},
}

func sampleRows() [][]Value {
	day := time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
	return [][]Value{
		{{S: "plain"}, {I: -42}, {U: math.MaxUint64}, {F: 0.1}, {U: 1}, {T: day},
			{T: time.Date(2019, 4, 23, 12, 45, 43, 0, time.UTC)}, {T: time.Date(2019, 4, 23, 12, 45, 43, 111e6, time.UTC)},
			{Null: true}, {Null: true}},
		{{S: "quote \" comma , line\nbreak, tab\t, ünïcode ✓"}, {I: math.MinInt64}, {U: 0}, {F: -1.5e300}, {U: 0},
			{T: time.Unix(0, 0).UTC()}, {T: time.Unix(0, 0).UTC()}, {T: time.Unix(0, 0).UTC()},
			{S: ""}, {I: 7}},
	}
}

func write(t *testing.T, f Format, cols []Column, rows [][]Value) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newRowWriter(f, &buf, "all", cols, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// NDJSON holds every value as `loader push` reads it back: numbers as
// numbers (uint64's top too), times in RFC 3339, NULL as null.
func TestNDJSONValues(t *testing.T) {
	out := write(t, NDJSON, allKinds, sampleRows())
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), out)
	}
	want := `{"s":"plain","i":-42,"u":18446744073709551615,"f":0.1,"b":true,"d":"2105-12-31","dt":"2019-04-23T12:45:43Z","ts":"2019-04-23T12:45:43.111Z","ns":null,"ni":null}`
	if lines[0] != want {
		t.Fatalf("line 1:\n%s\nwant\n%s", lines[0], want)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &back); err != nil {
		t.Fatalf("line 2 is not JSON: %v: %s", err, lines[1])
	}
	if back["s"] != sampleRows()[1][0].S || back["ns"] != "" || back["ni"] != 7.0 || back["b"] != false ||
		back["d"] != "1970-01-01" || back["ts"] != "1970-01-01T00:00:00.000Z" {
		t.Fatalf("line 2 reads back as %v", back)
	}
}

// CSV has a header of the names, RFC 4180 quoting, and NULL as an empty
// field.
func TestCSVValues(t *testing.T) {
	out := write(t, CSV, allKinds, sampleRows())
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != "s,i,u,f,b,d,dt,ts,ns,ni" {
		t.Fatalf("%q", recs)
	}
	if got := strings.Join(recs[1], "|"); got != "plain|-42|18446744073709551615|0.1|true|2105-12-31|2019-04-23T12:45:43Z|2019-04-23T12:45:43.111Z||" {
		t.Fatalf("row 1: %s", got)
	}
	if recs[2][0] != sampleRows()[1][0].S || recs[2][9] != "7" {
		t.Fatalf("row 2: %q", recs[2])
	}
}

// Parquet has the declared types, in the columns' order, and every value
// reads back as written (through parquet-go's reader; DuckDB reads the
// files in the loader's end-to-end tests).
func TestParquetTypesAndValues(t *testing.T) {
	for _, codec := range Compressions {
		out := write(t, Parquet, allKinds, sampleRows())
		if codec != "zstd" {
			var buf bytes.Buffer
			w, err := newRowWriter(Parquet, &buf, "all", allKinds, Options{Compression: codec})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range sampleRows() {
				if err := w.write(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
			out = buf.Bytes()
		}
		f, err := parquet.OpenFile(bytes.NewReader(out), int64(len(out)))
		if err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		var names, types []string
		for _, fl := range f.Schema().Fields() {
			names = append(names, fl.Name())
			typ := fl.Type().String()
			if fl.Optional() {
				typ = "optional " + typ
			}
			types = append(types, typ)
		}
		if got := strings.Join(names, ","); got != "s,i,u,f,b,d,dt,ts,ns,ni" {
			t.Fatalf("%s: columns %s", codec, got)
		}
		wantTypes := "STRING,INT(64,true),INT(64,false),DOUBLE,BOOLEAN,DATE,TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS),TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS),optional STRING,optional INT(64,true)"
		if got := strings.Join(types, ","); got != wantTypes {
			t.Fatalf("%s: types\n%s\nwant\n%s", codec, got, wantTypes)
		}
		r := parquet.NewReader(bytes.NewReader(out))
		rows := make([]parquet.Row, 4)
		n, err := r.ReadRows(rows)
		if err != nil && err != io.EOF || n != 2 {
			t.Fatalf("%s: read %d rows: %v", codec, n, err)
		}
		for i, want := range sampleRows() {
			row := rows[i]
			for c, v := range want {
				got := row[c]
				var ok bool
				switch col := allKinds[c]; {
				case v.Null:
					ok = got.IsNull()
				case col.Kind == String:
					ok = got.String() == v.S
				case col.Kind == Int64:
					ok = got.Int64() == v.I
				case col.Kind == UInt64:
					ok = got.Uint64() == v.U
				case col.Kind == Float64:
					ok = got.Double() == v.F
				case col.Kind == Bool:
					ok = got.Boolean() == (v.U != 0)
				case col.Kind == Date:
					ok = int64(got.Int32()) == v.T.Unix()/86400
				default:
					ok = got.Int64() == v.T.UnixMilli()
				}
				if !ok {
					t.Errorf("%s: row %d column %s: %v, want %+v", codec, i, allKinds[c].Name, got, v)
				}
			}
		}
	}
}

// Any text survives NDJSON and CSV as it was.
func FuzzTextRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a,b", "\"", "line\r\nbreak", "\x00", "\u2028", "ü✓", " lead", "\\u0041"} {
		f.Add(s)
	}
	cols := []Column{{Name: "s", Kind: String}, {Name: "t", Kind: String, Nullable: true}}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			// Records arrive as JSON or checked CSV: valid UTF-8.
			t.Skip()
		}
		rows := [][]Value{{{S: s}, {S: s}}, {{S: s}, {Null: true}}}
		out := write(t, NDJSON, cols, rows)
		dec := json.NewDecoder(bytes.NewReader(out))
		for i := range rows {
			var back struct {
				S string  `json:"s"`
				T *string `json:"t"`
			}
			if err := dec.Decode(&back); err != nil {
				t.Fatalf("NDJSON line %d: %v: %q", i+1, err, out)
			}
			if back.S != s || (i == 0) != (back.T != nil) || back.T != nil && *back.T != s {
				t.Fatalf("NDJSON line %d: %+v, want %q", i+1, back, s)
			}
		}
		recs, err := csv.NewReader(bytes.NewReader(write(t, CSV, cols, rows))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		// encoding/csv reads \r\n inside quotes as \n.
		norm := strings.ReplaceAll(s, "\r\n", "\n")
		if len(recs) != 3 || recs[1][0] != norm || recs[1][1] != norm || recs[2][1] != "" {
			t.Fatalf("CSV %q, want %q", recs, norm)
		}
	})
}
