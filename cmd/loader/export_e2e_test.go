package main_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// The end-to-end tests of `loader export` (issue 14): what it writes is
// read back by DuckDB, a Parquet reader nobody here wrote, and compared,
// every column, with what ClickHouse holds.

// exportKind is what a column of an export holds. Each reader's text of a
// value (ClickHouse's, DuckDB's, the NDJSON and CSV files') is brought to
// one form per kind before comparing: integers in decimal, floats as Go
// prints them, booleans as true/false, dates as days since 1970 and times
// as milliseconds since 1970.
type exportKind int

const (
	kString exportKind = iota
	kInt
	kUint
	kFloat
	kBool
	kDate
	kDateTime
	kTimestamp
)

// kindName is how `loader export --json` names each kind.
var kindName = map[exportKind]string{
	kString: "String", kInt: "Int64", kUint: "UInt64", kFloat: "Float64", kBool: "Bool", kDate: "Date",
	kDateTime: "DateTime", kTimestamp: "Timestamp",
}

// duckType is the type DuckDB must report for a column of each kind.
var duckType = map[exportKind]string{
	kString: "VARCHAR", kInt: "BIGINT", kUint: "UBIGINT", kFloat: "DOUBLE", kBool: "BOOLEAN", kDate: "DATE",
	kDateTime: "TIMESTAMP WITH TIME ZONE", kTimestamp: "TIMESTAMP WITH TIME ZONE",
}

type exportCol struct {
	name     string
	kind     exportKind
	nullable bool
}

// exportTable is what an export of a type or an aggregate must hold: the
// columns, in order, of the rows of from (SQL), in key order.
type exportTable struct {
	name string
	from string
	key  []string
	cols []exportCol
}

// typeTable is a record type's export: its declared columns, extra, the
// identity columns of an identity: source type, and _version.
func typeTable(name string, key []string, identity bool, cols ...exportCol) exportTable {
	cols = append(cols, exportCol{"extra", kString, false})
	if identity {
		key = []string{"_file_sha256", "_file_offset"}
		cols = append(cols, exportCol{"_file_sha256", kString, false}, exportCol{"_file_offset", kUint, false})
	}
	cols = append(cols, exportCol{"_version", kUint, false})
	return exportTable{name: name, from: "skuflow." + name + " FINAL", key: key, cols: cols}
}

var (
	productsTable = typeTable("products", []string{"sku"}, false,
		exportCol{"sku", kString, false}, exportCol{"name", kString, false}, exportCol{"description", kString, false})
	eventsTable = typeTable("events", []string{"id", "ts"}, false,
		exportCol{"id", kString, false}, exportCol{"data", kString, false}, exportCol{"ts", kTimestamp, false})
	playsTable = typeTable("plays", nil, true,
		exportCol{"song", kString, false}, exportCol{"date", kDate, false}, exportCol{"plays", kUint, false})
	// readings has a column of every type, nullable and not.
	readingsTable = typeTable("readings", []string{"station", "at"}, false,
		exportCol{"station", kInt, false}, exportCol{"at", kDateTime, false},
		exportCol{"seq", kUint, false}, exportCol{"value", kFloat, false}, exportCol{"ok", kBool, false},
		exportCol{"day", kDate, false}, exportCol{"seen", kTimestamp, false}, exportCol{"note", kString, false},
		exportCol{"n_int", kInt, true}, exportCol{"n_uint", kUint, true}, exportCol{"n_float", kFloat, true},
		exportCol{"n_bool", kBool, true}, exportCol{"n_date", kDate, true}, exportCol{"n_time", kDateTime, true},
		exportCol{"n_seen", kTimestamp, true}, exportCol{"n_note", kString, true})
	// The view sums signed partial counts (product_counts): Int64.
	productsAggTable = exportTable{name: "products_agg", from: "skuflow.products_agg", key: []string{"name"},
		cols: []exportCol{{"name", kString, false}, {"no_of_products", kInt, false}}}
	playsAggTable = exportTable{name: "plays_by_song_date", from: "skuflow.plays_by_song_date", key: []string{"song", "date"},
		cols: []exportCol{{"song", kString, false}, {"date", kDate, false}, {"plays", kUint, false}}}
)

// readingsDecl declares readings, in the configuration's types section.
const readingsDecl = `
  readings:
    key: [station, at]
    columns:
      - {name: station, type: Int64, required: true}
      - {name: at, type: DateTime, required: true}
      - {name: seq, type: UInt64}
      - {name: value, type: Float64}
      - {name: ok, type: Bool}
      - {name: day, type: Date}
      - {name: seen, type: Timestamp}
      - {name: note, type: String}
      - {name: n_int, type: Int64, nullable: true}
      - {name: n_uint, type: UInt64, nullable: true}
      - {name: n_float, type: Float64, nullable: true}
      - {name: n_bool, type: Bool, nullable: true}
      - {name: n_date, type: Date, nullable: true}
      - {name: n_time, type: DateTime, nullable: true}
      - {name: n_seen, type: Timestamp, nullable: true}
      - {name: n_note, type: String, nullable: true}
`

// exportConfig is skuflow.example.yaml, whose types are the shipped ones
// (events, plays), with readings added to its types section.
func exportConfig(t *testing.T) string {
	t.Helper()
	example, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "skuflow.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// types: is the file's last section: what follows it is inside it.
	i := bytes.Index(example, []byte("\ntypes:\n"))
	if i < 0 {
		t.Fatal("skuflow.example.yaml has no types: section")
	}
	for _, line := range strings.Split(string(example[i+len("\ntypes:\n"):]), "\n") {
		if line != "" && line[0] != ' ' && line[0] != '#' {
			t.Fatalf("skuflow.example.yaml: a section after types: (%q); add readings another way", line)
		}
	}
	return writeFile(t, t.TempDir(), "skuflow.yaml", strings.TrimRight(string(example), "\n")+"\n"+readingsDecl)
}

// readingsFile writes rows of readings as NDJSON: extreme values first,
// then random ones, a quarter of them new values for an earlier key;
// nullable fields are null or missing a third of the time.
func readingsFile(t *testing.T, dir, name string, rows int, seed uint64) string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 14))
	maxAt := time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
	minSeen := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxSeen := time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
	stamp := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }
	notes := []string{"", "plain", `comma, and "quotes"`, "line\nbreak", "tab\there", `back\slash`, "ünïcödé ✓ 日本", "🎵", "null", "NULL", `\N`, " padded "}
	type key struct{ station, at int64 }
	var keys []key
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range rows {
		k := key{station: r.Int64N(201) - 100, at: r.Int64N(maxAt.Unix() + 1)}
		if len(keys) > 0 && r.IntN(4) == 0 {
			k = keys[r.IntN(len(keys))]
		} else {
			keys = append(keys, k)
		}
		rec := map[string]any{
			"station": k.station,
			"at":      time.Unix(k.at, 0).UTC().Format(time.RFC3339),
			"seq":     r.Uint64(),
			"value":   r.NormFloat64() * math.Pow(10, float64(r.IntN(30)-15)),
			"ok":      r.IntN(2) == 0,
			"day":     time.Unix(r.Int64N(maxAt.Unix()+1), 0).UTC().Format(time.DateOnly),
			"seen":    stamp(minSeen.UnixMilli() + r.Int64N(maxSeen.UnixMilli()-minSeen.UnixMilli()+1)),
			"note":    notes[r.IntN(len(notes))],
		}
		nullable := map[string]any{
			"n_int":   r.Int64() - math.MaxInt64/2,
			"n_uint":  r.Uint64(),
			"n_float": r.Float64() * 1e6,
			"n_bool":  r.IntN(2) == 0,
			"n_date":  time.Unix(r.Int64N(maxAt.Unix()+1), 0).UTC().Format(time.DateOnly),
			"n_time":  time.Unix(r.Int64N(maxAt.Unix()+1), 0).UTC().Format(time.RFC3339),
			"n_seen":  stamp(r.Int64N(4e12) - 1e12),
			"n_note":  notes[r.IntN(len(notes))],
		}
		for f, v := range nullable {
			switch r.IntN(6) {
			case 0:
				rec[f] = nil
			case 1: // missing
			default:
				rec[f] = v
			}
		}
		// The edges of every type, on rows of their own.
		switch i {
		case 0:
			rec["station"], rec["at"], rec["seq"], rec["value"] = int64(math.MinInt64), "1970-01-01T00:00:00Z", uint64(math.MaxUint64), math.Copysign(0, -1)
			rec["day"], rec["seen"], rec["n_int"], rec["n_uint"] = "1970-01-01", stamp(minSeen.UnixMilli()), int64(math.MinInt64), uint64(math.MaxUint64)
			rec["n_seen"], rec["n_float"] = "1969-12-31T23:59:59.999Z", 5e-324
		case 1:
			rec["station"], rec["at"], rec["seq"], rec["value"] = int64(math.MaxInt64), maxAt.Format(time.RFC3339), uint64(1)<<63, math.MaxFloat64
			rec["day"], rec["seen"], rec["n_date"], rec["n_time"] = "2105-12-31", stamp(maxSeen.UnixMilli()), "2105-12-31", maxAt.Format(time.RFC3339)
			rec["n_int"], rec["n_uint"], rec["n_float"] = int64(math.MaxInt64), uint64(1)<<63, -math.MaxFloat64
		}
		if i%10 == 3 {
			rec["tags"] = []any{i, map[string]any{"ü": "ß"}}
		}
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	return writeFile(t, dir, name, b.String())
}

// --- reading each side -------------------------------------------------------

// canon brings one reader's text of a value of kind k to the form the
// test compares; via says whose text it is: "ch" (clickhouse-client with
// the expressions of chExpr), "duck" (DuckDB with duckExpr), "ndjson" or
// "csv" (an export's text).
func canon(k exportKind, via, s string) (string, error) {
	switch k {
	case kString:
		return s, nil
	case kInt:
		n, err := strconv.ParseInt(s, 10, 64)
		return strconv.FormatInt(n, 10), err
	case kUint:
		n, err := strconv.ParseUint(s, 10, 64)
		return strconv.FormatUint(n, 10), err
	case kFloat:
		f, err := strconv.ParseFloat(s, 64)
		return strconv.FormatFloat(f, 'g', -1, 64), err
	case kBool:
		switch {
		case via == "ch" && s == "0", via != "ch" && s == "false":
			return "false", nil
		case via == "ch" && s == "1", via != "ch" && s == "true":
			return "true", nil
		}
		return "", fmt.Errorf("not a boolean: %q", s)
	case kDate:
		if via == "ch" { // toUInt16: days
			n, err := strconv.ParseUint(s, 10, 16)
			return strconv.FormatUint(n, 10), err
		}
		d, err := time.Parse(time.DateOnly, s)
		return strconv.FormatInt(d.Unix()/86400, 10), err
	}
	// The times, to the millisecond.
	var ms int64
	var err error
	switch {
	case via == "ch" && k == kDateTime: // toUnixTimestamp
		ms, err = strconv.ParseInt(s, 10, 64)
		ms *= 1000
	case via == "ch": // a Timestamp as stored
		var ts time.Time
		ts, err = time.Parse("2006-01-02 15:04:05.000", s)
		ms = ts.UnixMilli()
	case via == "duck": // epoch_ms
		ms, err = strconv.ParseInt(s, 10, 64)
	default: // RFC 3339 in UTC
		var ts time.Time
		ts, err = time.Parse(time.RFC3339Nano, s)
		if err == nil && !strings.HasSuffix(s, "Z") {
			err = fmt.Errorf("not in UTC: %q", s)
		}
		ms = ts.UnixMilli()
	}
	return strconv.FormatInt(ms, 10), err
}

// canonRow brings a row of text values (nil: NULL) to the compared form.
func canonRow(t *testing.T, cols []exportCol, via string, row []*string, n int) []*string {
	t.Helper()
	out := make([]*string, len(cols))
	for i, c := range cols {
		if row[i] == nil {
			if !c.nullable {
				t.Fatalf("%s row %d: NULL in column %s, which is not nullable", via, n, c.name)
			}
			continue
		}
		v, err := canon(c.kind, via, *row[i])
		if err != nil {
			t.Fatalf("%s row %d, column %s: %v", via, n, c.name, err)
		}
		out[i] = &v
	}
	return out
}

func chIdent(name string) string   { return "`" + name + "`" }
func duckIdent(name string) string { return `"` + name + `"` }

// chExpr is the text of a column in ClickHouse, for canon.
func chExpr(c exportCol) string {
	switch c.kind {
	case kString, kTimestamp:
		return chIdent(c.name)
	case kDateTime:
		return "toString(toUnixTimestamp(" + chIdent(c.name) + "))"
	case kDate:
		// Days: 18.16 prints the first day, 1970-01-01, as 0000-00-00.
		return "toString(toUInt16(" + chIdent(c.name) + "))"
	}
	return "toString(" + chIdent(c.name) + ")"
}

// duckExpr is the text of a column in DuckDB, for canon.
func duckExpr(c exportCol) string {
	switch c.kind {
	case kString:
		return duckIdent(c.name)
	case kDateTime, kTimestamp:
		return "CAST(epoch_ms(" + duckIdent(c.name) + ") AS VARCHAR)"
	}
	return "CAST(" + duckIdent(c.name) + " AS VARCHAR)"
}

// chRows reads the table's rows from ClickHouse in key order.
func (x exportTable) chRows(t *testing.T, st *testenv.Stack) [][]*string {
	t.Helper()
	exprs := make([]string, len(x.cols))
	for i, c := range x.cols {
		exprs[i] = fmt.Sprintf("%s AS c%d", chExpr(c), i)
	}
	order := make([]string, len(x.key))
	for i, k := range x.key {
		order[i] = chIdent(k)
	}
	out := st.CH.Query(t, fmt.Sprintf("SELECT %s FROM (SELECT * FROM %s) ORDER BY %s FORMAT JSONEachRow",
		strings.Join(exprs, ", "), x.from, strings.Join(order, ", ")))
	var rows [][]*string
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		var m map[string]*string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("clickhouse row %.200q: %v", line, err)
		}
		row := make([]*string, len(x.cols))
		for i := range x.cols {
			row[i] = m[fmt.Sprintf("c%d", i)]
		}
		rows = append(rows, canonRow(t, x.cols, "ch", row, len(rows)+1))
	}
	return rows
}

// duckSelect is the DuckDB query of the table's columns, for canon, over
// from, ordered by order.
func (x exportTable) duckSelect(from, order string) string {
	exprs := make([]string, len(x.cols))
	for i, c := range x.cols {
		exprs[i] = fmt.Sprintf("%s AS c%d", duckExpr(c), i)
	}
	return fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(exprs, ", "), from, order)
}

// duckRows reads the rows a duckSelect query returned.
func (x exportTable) duckRows(t *testing.T, rows []map[string]any) [][]*string {
	t.Helper()
	var out [][]*string
	for _, m := range rows {
		row := make([]*string, len(x.cols))
		for i := range x.cols {
			switch v := m[fmt.Sprintf("c%d", i)].(type) {
			case nil:
			case string:
				row[i] = &v
			default:
				t.Fatalf("duckdb: column %s is %T (%v), not text", x.cols[i].name, v, v)
			}
		}
		out = append(out, canonRow(t, x.cols, "duck", row, len(out)+1))
	}
	return out
}

// duckFiles is a DuckDB table expression of Parquet files, read in order:
// ordered by filename and file_row_number, their rows are as written.
func duckFiles(files ...string) string {
	return "read_parquet(" + duckList(files...) + ", filename = true, file_row_number = true)"
}

// duckList is a DuckDB list of file names.
func duckList(files ...string) string {
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ndjsonRows reads an NDJSON export: one object a row, its keys the
// columns in order.
func (x exportTable) ndjsonRows(t *testing.T, data []byte) [][]*string {
	t.Helper()
	var out [][]*string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		// The keys, in order.
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("ndjson line %d: not an object: %.200q", len(out)+1, sc.Text())
		}
		row := make([]*string, len(x.cols))
		for i := 0; dec.More(); i++ {
			k, err := dec.Token()
			if err != nil || i >= len(x.cols) || k != x.cols[i].name {
				t.Fatalf("ndjson line %d: key %d is %v (%v), want %s", len(out)+1, i, k, err, x.cols[min(i, len(x.cols)-1)].name)
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			var s string
			switch v := v.(type) {
			case nil:
				continue
			case string:
				s = v
			case json.Number:
				s = v.String()
			case bool:
				s = strconv.FormatBool(v)
			default:
				t.Fatalf("ndjson line %d, %s: %T", len(out)+1, k, v)
			}
			if (x.cols[i].kind == kString || x.cols[i].kind >= kDate) != (fmt.Sprintf("%T", v) == "string") {
				t.Fatalf("ndjson line %d, %s: %#v is not what a %s column writes", len(out)+1, k, v, kindName[x.cols[i].kind])
			}
			row[i] = &s
		}
		out = append(out, canonRow(t, x.cols, "ndjson", row, len(out)+1))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// csvRows reads a CSV export: a header of the column names, then the
// rows; an empty field of a nullable column is NULL.
func (x exportTable) csvRows(t *testing.T, data []byte) [][]*string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	var names []string
	for _, c := range x.cols {
		names = append(names, c.name)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], names) {
		t.Fatalf("csv header %q, want %q", recs[:min(1, len(recs))], names)
	}
	var out [][]*string
	for _, rec := range recs[1:] {
		row := make([]*string, len(x.cols))
		for i := range rec {
			if rec[i] != "" || !x.cols[i].nullable {
				row[i] = &rec[i]
			}
		}
		out = append(out, canonRow(t, x.cols, "csv", row, len(out)+1))
	}
	return out
}

// csvNulls is want as a CSV export can say it: an empty string in a
// nullable column reads back as NULL.
func (x exportTable) csvNulls(want [][]*string) [][]*string {
	out := make([][]*string, len(want))
	for r, row := range want {
		out[r] = slices.Clone(row)
		for i, c := range x.cols {
			if c.nullable && row[i] != nil && *row[i] == "" {
				out[r][i] = nil
			}
		}
	}
	return out
}

// columnSum is a checksum of column i of rows.
func columnSum(rows [][]*string, i int) [32]byte {
	h := sha256.New()
	for _, r := range rows {
		if r[i] == nil {
			io.WriteString(h, "\x00\x1e")
			continue
		}
		io.WriteString(h, "\x01"+*r[i]+"\x1e")
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// compareRows compares got with want, row count and a checksum of every
// column, and says where the first difference of a column is.
func (x exportTable) compareRows(t *testing.T, what string, got, want [][]*string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
		return
	}
	show := func(v *string) string {
		if v == nil {
			return "NULL"
		}
		return strconv.Quote(*v)
	}
	for i, c := range x.cols {
		g, w := columnSum(got, i), columnSum(want, i)
		if g == w {
			continue
		}
		for r := range got {
			if show(got[r][i]) != show(want[r][i]) {
				t.Errorf("%s: column %s: checksum %x, want %x; first difference at row %d: %s, want %s", what, c.name, g[:6], w[:6], r+1, show(got[r][i]), show(want[r][i]))
				break
			}
		}
	}
}

// checkParquet reads Parquet files that together are an export of x with
// DuckDB and compares them with ClickHouse: the schema, the row count and
// every column, row by row in the files' order. want is x's rows in
// ClickHouse.
func (x exportTable) checkParquet(t *testing.T, want [][]*string, files ...string) {
	t.Helper()
	res := testenv.DuckDB(t,
		"DESCRIBE SELECT * FROM "+duckFiles(files...),
		"SELECT name, type, repetition_type, logical_type FROM parquet_schema("+duckList(files[0])+")",
		"SELECT count(*) AS n FROM "+duckFiles(files...),
		x.duckSelect(duckFiles(files...), "filename, file_row_number"))
	var got, wantSchema []string
	for _, r := range res[0] {
		if r["column_name"] == "filename" || r["column_name"] == "file_row_number" {
			continue
		}
		got = append(got, fmt.Sprint(r["column_name"], " ", r["column_type"]))
	}
	leaves := map[string]map[string]any{}
	for _, r := range res[1] {
		if r["type"] != nil {
			leaves[fmt.Sprint(r["name"])] = r
		}
	}
	for _, c := range x.cols {
		wantSchema = append(wantSchema, c.name+" "+duckType[c.kind])
		rep := "REQUIRED"
		if c.nullable {
			rep = "OPTIONAL"
		}
		if leaf := leaves[c.name]; leaf == nil || leaf["repetition_type"] != rep {
			t.Errorf("%s: Parquet column %s is %v, want %s", x.name, c.name, leaf, rep)
		} else if lt := fmt.Sprint(leaf["logical_type"]); (c.kind == kDateTime || c.kind == kTimestamp) &&
			(!strings.Contains(lt, "isAdjustedToUTC=1") || !strings.Contains(lt, "MILLIS=MilliSeconds")) {
			t.Errorf("%s: Parquet column %s is %s, want a timestamp in milliseconds, UTC", x.name, c.name, lt)
		}
	}
	if !slices.Equal(got, wantSchema) {
		t.Errorf("%s: DuckDB reads the columns\n%s\nwant\n%s", x.name, strings.Join(got, "\n"), strings.Join(wantSchema, "\n"))
	}
	if n := fmt.Sprint(res[2][0]["n"]); n != strconv.Itoa(len(want)) {
		t.Errorf("%s: DuckDB counts %s rows, ClickHouse %d", x.name, n, len(want))
	}
	x.compareRows(t, x.name+" (Parquet, DuckDB)", x.duckRows(t, res[3]), want)
}

// --- running the loader ------------------------------------------------------

// exportOutput is what `loader export --json` prints.
type exportOutput struct {
	Source  string `json:"source"`
	Rows    int64  `json:"rows"`
	Columns []struct {
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		Nullable bool   `json:"nullable"`
	} `json:"columns"`
	Files []struct {
		Path string `json:"path"`
		Rows int64  `json:"rows"`
	} `json:"files"`
	State *struct {
		Parts int               `json:"parts"`
		Next  map[string]uint64 `json:"next_version"`
	} `json:"state"`
}

// exportJSON runs `loader export --json` with args.
func exportJSON(t *testing.T, st *testenv.Stack, args ...string) exportOutput {
	t.Helper()
	out, stderr, err := st.Loader(t, append([]string{"export", "--json", "--no-progress"}, args...)...)
	if err != nil {
		t.Fatalf("export %v: %v\n%s\n%s", args, err, out, stderr)
	}
	var res exportOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("export %v --json: %v\n%s", args, err, out)
	}
	return res
}

// exportStdout runs `loader export --out - --json` with args and returns
// what it wrote on stdout: the data alone, the summary on stderr.
func exportStdout(t *testing.T, st *testenv.Stack, args ...string) []byte {
	t.Helper()
	out, stderr, err := st.Loader(t, append([]string{"export", "--no-progress", "--json", "--out", "-"}, args...)...)
	if err != nil {
		t.Fatalf("export %v: %v\n%s", args, err, stderr)
	}
	var res exportOutput
	if err := json.Unmarshal([]byte(stderr), &res); err != nil || len(res.Columns) == 0 {
		t.Fatalf("export %v --out - --json: the summary on stderr: %v\n%s", args, err, stderr)
	}
	return []byte(out)
}

// --- the tests ---------------------------------------------------------------

// TestExportTypesReadByDuckDB pushes products, the shipped events and
// plays, and readings (a column of every type, nullable and not), each
// with keys written more than once, exports each type and both aggregates
// as Parquet, and reads the files back with DuckDB: the schema is the
// declared types, the row count is FINAL's, and every column equals
// ClickHouse's, row by row in key order. NDJSON and CSV exports of
// products and readings say the same values.
func TestExportTypesReadByDuckDB(t *testing.T) {
	st := testenv.NewStack(t, "SKUFLOW_CONFIG="+exportConfig(t))
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	dir := t.TempDir()

	products := testenv.Gen(t, dir, "products.ndjson", "--rows", "3000", "--rename-rate", "0.2", "--dup-rate", "0.05", "--names", "200")
	more := writeFile(t, dir, "more.ndjson", `{"sku":"zz-ünï-1","name":"Ünïcode ✓","description":"comma, \"quote\"\nline\ttab\\","color":"red","dims":[1,2.5,{"d":null}]}
{"sku":"zz-2","name":"","description":"\\N"}
{"sku":"zz-ünï-1","name":"Ünïcode ✓ 2","description":"","size":"XL"}
`)
	events := testenv.Gen(t, dir, "events.ndjson", "--type", "events", "--rows", "3000", "--update-rate", "0.2", "--dup-rate", "0.05")
	plays := testenv.Gen(t, dir, "plays.csv", "--type", "plays", "--rows", "3000", "--songs", "150")
	readings := readingsFile(t, dir, "readings.ndjson", 2000, 1)
	pushType(t, st, "products", products)
	pushType(t, st, "products", more)
	pushType(t, st, "events", events)
	pushType(t, st, "plays", plays)
	pushType(t, st, "readings", readings)
	// FINAL matters: there are fewer rows than records.
	for typ, records := range map[string]int64{"products": 3003, "events": 3000, "readings": 2000} {
		if n := st.Count(t, "SELECT count() FROM skuflow."+typ+" FINAL"); n == 0 || n >= records {
			t.Fatalf("%s FINAL holds %d rows of %d records: the files repeat no key", typ, n, records)
		}
	}

	out := t.TempDir()
	for _, x := range []exportTable{productsTable, eventsTable, playsTable, readingsTable, productsAggTable, playsAggTable} {
		want := x.chRows(t, st)
		if len(want) == 0 {
			t.Fatalf("%s is empty in ClickHouse", x.name)
		}
		// Each nullable column holds NULLs and values.
		for i, c := range x.cols {
			nulls := 0
			for _, r := range want {
				if r[i] == nil {
					nulls++
				}
			}
			if c.nullable && (nulls == 0 || nulls == len(want)) {
				t.Fatalf("%s.%s: %d NULLs in %d rows", x.name, c.name, nulls, len(want))
			}
		}
		if n := st.Count(t, "SELECT count() FROM "+x.from); n != int64(len(want)) {
			t.Fatalf("%s: %d rows, count() says %d", x.name, len(want), n)
		}
		path := filepath.Join(out, x.name+".parquet")
		res := exportJSON(t, st, x.name, "--out", path)
		if res.Rows != int64(len(want)) || len(res.Files) != 1 || res.Files[0].Path != path {
			t.Errorf("%s: export says %d rows in %+v, want %d in %s", x.name, res.Rows, res.Files, len(want), path)
		}
		var gotCols, wantCols []string
		for _, c := range res.Columns {
			gotCols = append(gotCols, fmt.Sprintf("%s %s %v", c.Name, c.Kind, c.Nullable))
		}
		for _, c := range x.cols {
			wantCols = append(wantCols, fmt.Sprintf("%s %s %v", c.name, kindName[c.kind], c.nullable))
		}
		if !slices.Equal(gotCols, wantCols) {
			t.Errorf("%s: export --json says the columns are %q, want %q", x.name, gotCols, wantCols)
		}
		x.checkParquet(t, want, path)
	}

	// The text formats, of a type with every column type and of products,
	// whole (NDJSON on stdout, CSV in a file).
	for _, x := range []exportTable{readingsTable, productsTable} {
		want := x.chRows(t, st)
		x.compareRows(t, x.name+" (NDJSON)", x.ndjsonRows(t, exportStdout(t, st, x.name, "--format", "ndjson")), want)
		path := filepath.Join(out, x.name+".csv")
		exportJSON(t, st, x.name, "--format", "csv", "--out", path)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		x.compareRows(t, x.name+" (CSV)", x.csvRows(t, data), x.csvNulls(want))
	}
	// --where filters the current rows: a name some keys had before a
	// rename selects only the keys whose last write has it.
	history := map[string][]string{}
	for _, f := range []string{products, more} {
		for _, line := range strings.Split(strings.TrimSpace(string(readBytes(t, f))), "\n") {
			var p struct{ Sku, Name string }
			if err := json.Unmarshal([]byte(line), &p); err != nil {
				t.Fatal(err)
			}
			history[p.Sku] = append(history[p.Sku], p.Name)
		}
	}
	var old string
	for _, names := range history {
		if old == "" && len(names) > 1 && !slices.Contains(names[1:], names[0]) {
			old = names[0]
		}
	}
	var wantKeys []string
	for sku, names := range history {
		if names[len(names)-1] == old {
			wantKeys = append(wantKeys, sku)
		}
	}
	slices.Sort(wantKeys)
	var gotKeys []string
	for _, line := range strings.Split(strings.TrimSpace(string(exportStdout(t, st, "products", "--format", "ndjson", "--where", "name = '"+strings.ReplaceAll(old, "'", "\\'")+"'"))), "\n") {
		var p struct{ Sku string }
		if line != "" && json.Unmarshal([]byte(line), &p) == nil {
			gotKeys = append(gotKeys, p.Sku)
		}
	}
	if old == "" || !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("products --where name = %q: %q, want the keys whose last write has it, %q", old, gotKeys, wantKeys)
	}

	// A few values seen as a person would: the products written last.
	if got := string(exportStdout(t, st, "products", "--format", "ndjson", "--where", "sku LIKE 'zz-%'")); !strings.Contains(got, `"name":"Ünïcode ✓ 2","description":"","extra":"{\"size\":\"XL\"}"`) ||
		strings.Count(got, "\n") != 2 {
		t.Errorf("products zz-*, as NDJSON:\n%s", got)
	}
}

// TestExportIncremental: products pushed and exported with --incremental
// (part 1: every row), then updates of some keys and new keys pushed and
// exported again: part 2 holds exactly the updated and new keys, and the
// latest row per key over both parts (the README's DuckDB query) equals
// FINAL, every column. A third export, nothing changed, writes no part.
// The state file as it was before part 2, used again into another folder,
// writes the same bytes.
func TestExportIncremental(t *testing.T) {
	st := testenv.NewStack(t)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	dir := t.TempDir()
	first := testenv.Gen(t, dir, "first.ndjson", "--rows", "3000", "--rename-rate", "0.1")
	st.PushWait(t, first)

	parts := t.TempDir()
	state := filepath.Join(t.TempDir(), "products.state")
	part1 := filepath.Join(parts, "products-000001.parquet")
	want := productsTable.chRows(t, st)
	res := exportJSON(t, st, "products", "--incremental", state, "--out", parts)
	if res.Rows != int64(len(want)) || len(res.Files) != 1 || res.Files[0].Path != part1 || res.State == nil || res.State.Parts != 1 {
		t.Fatalf("first export: %+v, want %d rows in %s, part 1", res, len(want), part1)
	}
	productsTable.checkParquet(t, want, part1)

	// Every fifth key renamed (some twice), and new keys.
	last := testenv.LastWrites(t, first)
	changed := map[string]bool{}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	write := func(p testenv.Product) {
		if err := enc.Encode(map[string]string{"sku": p.Sku, "name": p.Name, "description": p.Description}); err != nil {
			t.Fatal(err)
		}
		changed[p.Sku] = true
	}
	for i, sku := range slices.Sorted(maps.Keys(last)) {
		if i%5 == 0 {
			write(testenv.Product{Sku: sku, Name: fmt.Sprintf("renamed %d", i), Description: last[sku].Description})
		}
		if i%50 == 0 {
			write(testenv.Product{Sku: sku, Name: fmt.Sprintf("renamed again %d", i), Description: "updated"})
		}
	}
	for i := range 300 {
		write(testenv.Product{Sku: fmt.Sprintf("new-%04d", i), Name: "new", Description: strconv.Itoa(i)})
	}
	update := writeFile(t, dir, "update.ndjson", b.String())
	before := filepath.Join(t.TempDir(), "products.state")
	copyFile(t, state, before)
	st.PushWait(t, update)

	part2 := filepath.Join(parts, "products-000002.parquet")
	res = exportJSON(t, st, "products", "--incremental", state, "--out", parts)
	if res.Rows != int64(len(changed)) || len(res.Files) != 1 || res.Files[0].Path != part2 || res.State.Parts != 2 {
		t.Fatalf("second export: %+v, want %d rows in %s, part 2", res, len(changed), part2)
	}
	got := testenv.DuckDB(t,
		"SELECT sku FROM "+duckFiles(part2)+" ORDER BY file_row_number",
		productsTable.duckSelect(`(SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY sku ORDER BY _version DESC) rn FROM read_parquet('`+parts+`/*.parquet')) WHERE rn = 1)`, "sku"))
	var keys []string
	for _, r := range got[0] {
		keys = append(keys, fmt.Sprint(r["sku"]))
	}
	if want := slices.Sorted(maps.Keys(changed)); !slices.Equal(keys, want) {
		t.Errorf("part 2 holds %d keys, want the %d updated and new ones, in order; first differences: %v", len(keys), len(want), firstDiffs(keys, want))
	}
	want = productsTable.chRows(t, st)
	if len(want) != len(last)+300 {
		t.Fatalf("products FINAL: %d rows, want %d", len(want), len(last)+300)
	}
	productsTable.compareRows(t, "the latest row per key over parts 1 and 2", productsTable.duckRows(t, got[1]), want)

	// Nothing changed: no part, and the state still says 2 parts.
	res = exportJSON(t, st, "products", "--incremental", state, "--out", parts)
	if res.Rows != 0 || len(res.Files) != 0 || res.State.Parts != 2 {
		t.Errorf("third export, nothing changed: %+v", res)
	}
	if names := dirNames(t, parts); !slices.Equal(names, []string{"products-000001.parquet", "products-000002.parquet"}) {
		t.Errorf("parts folder holds %q", names)
	}

	// The same state over the same data writes the same part.
	again := t.TempDir()
	res = exportJSON(t, st, "products", "--incremental", before, "--out", again)
	if len(res.Files) != 1 || res.Files[0].Path != filepath.Join(again, "products-000002.parquet") {
		t.Fatalf("export again from the state before part 2: %+v", res)
	}
	if a, b := readBytes(t, part2), readBytes(t, res.Files[0].Path); !bytes.Equal(a, b) {
		t.Errorf("part 2 written again from the same state: %d bytes, differing from the first %d", len(b), len(a))
	}
	if a, b := readBytes(t, state), readBytes(t, before); !bytes.Equal(a, b) {
		t.Errorf("the two series' states differ:\n%s\n%s", a, b)
	}
}

// TestExportSplitRows: --split-rows N writes files of N rows, the last
// one the rest, in key order across the files (every column compared
// with FINAL, the files read one after the other), each Parquet file in
// row groups of --row-group-rows; NDJSON and CSV split the same way, each
// CSV file with its header.
func TestExportSplitRows(t *testing.T) {
	st := testenv.NewStack(t)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	dir := t.TempDir()
	st.PushWait(t, testenv.Gen(t, dir, "p.ndjson", "--rows", "2600", "--rename-rate", "0.1"))
	want := productsTable.chRows(t, st)
	const split, group = 700, 300
	files := (len(want) + split - 1) / split
	if files < 3 {
		t.Fatalf("%d rows make %d files", len(want), files)
	}
	rowsOf := func(i int) int { return min(split, len(want)-i*split) }

	out := t.TempDir()
	res := exportJSON(t, st, "products", "--out", filepath.Join(out, "p.parquet"), "--split-rows", strconv.Itoa(split), "--row-group-rows", strconv.Itoa(group))
	var paths, names []string
	for i := range files {
		names = append(names, fmt.Sprintf("p-%05d.parquet", i+1))
		paths = append(paths, filepath.Join(out, names[i]))
	}
	if got := dirNames(t, out); !slices.Equal(got, names) {
		t.Fatalf("split export wrote %q, want %q", got, names)
	}
	if res.Rows != int64(len(want)) || len(res.Files) != files {
		t.Errorf("split export says %d rows in %d files, want %d in %d", res.Rows, len(res.Files), len(want), files)
	}
	var stmts []string
	for _, p := range paths {
		stmts = append(stmts, "SELECT count(*) AS n, count(DISTINCT row_group_id) AS groups FROM parquet_metadata("+duckList(p)+") WHERE column_id = 0",
			"SELECT count(*) AS n FROM "+duckFiles(p))
	}
	got := testenv.DuckDB(t, stmts...)
	for i := range files {
		meta, n := got[2*i][0], fmt.Sprint(got[2*i+1][0]["n"])
		if n != strconv.Itoa(rowsOf(i)) || (i < len(res.Files) && res.Files[i].Rows != int64(rowsOf(i))) {
			t.Errorf("%s: %s rows, want %d", names[i], n, rowsOf(i))
		}
		if g, w := fmt.Sprint(meta["groups"]), strconv.Itoa((rowsOf(i)+group-1)/group); g != w {
			t.Errorf("%s: %s row groups, want %s of at most %d rows", names[i], g, w, group)
		}
	}
	productsTable.checkParquet(t, want, paths...)

	// The text formats split alike.
	for _, f := range []string{"ndjson", "csv"} {
		sub := t.TempDir()
		exportJSON(t, st, "products", "--format", f, "--out", filepath.Join(sub, "p."+f), "--split-rows", strconv.Itoa(split))
		var rows [][]*string
		for i := range files {
			data := readBytes(t, filepath.Join(sub, fmt.Sprintf("p-%05d.%s", i+1, f)))
			var part [][]*string
			if f == "csv" {
				part = productsTable.csvRows(t, data)
			} else {
				part = productsTable.ndjsonRows(t, data)
			}
			if len(part) != rowsOf(i) {
				t.Errorf("%s file %d: %d rows, want %d", f, i+1, len(part), rowsOf(i))
			}
			rows = append(rows, part...)
		}
		if n := len(dirNames(t, sub)); n != files {
			t.Errorf("%s: %d files, want %d", f, n, files)
		}
		productsTable.compareRows(t, "products split as "+f, rows, want)
	}
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, readBytes(t, from), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dirNames lists a folder, hidden files (an export's temporary ones)
// included.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// firstDiffs says where two sorted lists first differ.
func firstDiffs(got, want []string) []string {
	var out []string
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			out = append(out, "missing "+w)
		}
	}
	for _, g := range got {
		if _, ok := slices.BinarySearch(want, g); !ok {
			out = append(out, "extra "+g)
		}
	}
	return out[:min(len(out), 10)]
}
