package schemas

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ClickHouse/ch-go/proto"
)

// row returns the block's last row as column name -> value.
func row(b *Block) map[string]any {
	out := map[string]any{}
	for _, c := range append(b.s.Columns, Column{Name: b.s.Extra}) {
		v := reflect.ValueOf(b.Column(c.Name))
		out[c.Name] = v.Index(v.Len() - 1).Interface()
	}
	return out
}

// checkLengths fails unless every column of b holds n values.
func checkLengths(t *testing.T, b *Block, n int) {
	t.Helper()
	if b.Len() != n {
		t.Fatalf("Len() = %d, want %d", b.Len(), n)
	}
	for _, c := range append(b.s.Columns, Column{Name: b.s.Extra}) {
		if got := reflect.ValueOf(b.Column(c.Name)).Len(); got != n {
			t.Fatalf("column %s has %d values, want %d", c.Name, got, n)
		}
	}
}

type blockCase struct {
	name   string
	fields []Field
	want   map[string]any // the row appended; nil when err is set
	err    string         // part of the error, when the record is refused
}

func runBlockCases(t *testing.T, s *Schema, cases []blockCase) {
	// One block for all cases, so that a refused record that left anything
	// behind shows up in the rows after it.
	b := s.NewBlock()
	n := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Append(tc.fields)
			switch {
			case tc.err != "" && err == nil:
				t.Fatalf("appended %v, want an error with %q", row(b), tc.err)
			case tc.err != "" && !strings.Contains(err.Error(), tc.err):
				t.Fatalf("error %q, want one with %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			}
			if err != nil {
				if _, ok := err.(*ValidationError); !ok {
					t.Errorf("error %T, want a *ValidationError", err)
				}
				checkLengths(t, b, n)
				return
			}
			n++
			checkLengths(t, b, n)
			if got := row(b); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("row\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
	b.Reset()
	checkLengths(t, b, 0)
}

func product(sku, name, desc, extra string) map[string]any {
	return map[string]any{"sku": sku, "name": name, "description": desc, "extra": extra}
}

func TestBlockProducts(t *testing.T) {
	many := []string{"sku", `"m"`}
	wantMany := []string{}
	for i := range 40 {
		many = append(many, fmt.Sprintf("f%d", i), fmt.Sprint(i))
		if i != 5 {
			wantMany = append(wantMany, fmt.Sprintf(`"f%d":%d`, i, i))
		}
	}
	many = append(many, "f5", `"last"`)
	wantMany = append(wantMany, `"f5":"last"`)

	runBlockCases(t, Products, []blockCase{
		{"columns", fields("sku", `"a"`, "name", `"Anna"`, "description", `"d"`), product("a", "Anna", "d", "{}"), ""},
		{"input order does not matter", fields("description", `"d"`, "name", `"N"`, "sku", `"b"`), product("b", "N", "d", "{}"), ""},
		{"missing optional columns", fields("sku", `"c"`), product("c", "", "", "{}"), ""},
		{"escapes unescaped", fields("sku", `"a\/b"`, "name", `"tab\tquote\" back\\ \u00e9\ud83d\ude00"`, "description", `"l1\nl2\r"`),
			product("a/b", "tab\tquote\" back\\ é😀", "l1\nl2\r", "{}"), ""},
		{"lone surrogate", fields("sku", `"s"`, "name", `"\ud800"`), product("s", "\uFFFD", "", "{}"), ""},
		{"extra fields in input order", fields("sku", `"e"`, "b", `1`, "name", `"n"`, "a", `[1,{"x":null}]`, "c", `"s\n"`),
			product("e", "n", "", `{"b":1,"a":[1,{"x":null}],"c":"s\n"}`), ""},
		{"extra names escaped again", fields("sku", `"f"`, "a\"b\\", `1`, "new\nline", `2`, "ctl\x01", `3`, "é", `4`),
			product("f", "", "", `{"a\"b\\":1,"new\nline":2,"ctl\u0001":3,"é":4}`), ""},
		{"extra name of invalid UTF-8", fields("sku", `"g"`, "a\xffb", `1`), product("g", "", "", `{"a\ufffdb":1}`), ""},
		{"duplicate column: the last wins", fields("sku", `"x"`, "name", `"first"`, "sku", `"h"`, "name", `"second"`),
			product("h", "second", "", "{}"), ""},
		{"duplicate extra: the last wins, in its place", fields("sku", `"i"`, "x", `1`, "y", `2`, "x", `3`),
			product("i", "", "", `{"y":2,"x":3}`), ""},
		{"many extra fields with a duplicate", fields(many...), product("m", "", "", "{"+strings.Join(wantMany, ",")+"}"), ""},
		{"null columns are empty", fields("sku", `"j"`, "name", `null`, "description", `null`), product("j", "", "", "{}"), ""},
		{"a later null wins", fields("sku", `"k"`, "name", `"n"`, "name", `null`), product("k", "", "", "{}"), ""},
		{"null extra kept", fields("sku", `"l"`, "z", `null`), product("l", "", "", `{"z":null}`), ""},
		{"required missing", fields("name", `"n"`), nil, `field "sku": required field is missing`},
		{"required null", fields("sku", `null`, "name", `"n"`), nil, `field "sku": required field is missing`},
		{"required empty", fields("sku", `""`), nil, `field "sku": required field is empty`},
		{"required null after a value", fields("sku", `"a"`, "sku", `null`), nil, `field "sku": required field is missing`},
		{"number for a string", fields("sku", `"a"`, "name", `5`), nil, `field "name": want a string, got a number`},
		{"object for a string", fields("sku", `{"a":1}`), nil, `field "sku": want a string, got an object`},
		{"bad escape after good columns", fields("sku", `"a"`, "name", `"ok"`, "description", `"bad \x"`), nil, `field "description": unescape string`},
		{"after a refusal", fields("sku", `"z"`, "name", `"clean"`), product("z", "clean", "", "{}"), ""},
	})
}

func TestBlockTypedColumns(t *testing.T) {
	events := &Schema{
		Name: "events",
		Key:  []string{"id", "ts"},
		Columns: []Column{
			{Name: "id", Type: String, Required: true},
			{Name: "ts", Type: Int64, Required: true},
			{Name: "score", Type: Float64},
			{Name: "kind", Type: String},
		},
		Extra: "rest",
	}
	if err := events.Check(); err != nil {
		t.Fatal(err)
	}
	event := func(id string, ts int64, score float64, kind, rest string) map[string]any {
		return map[string]any{"id": id, "ts": ts, "score": score, "kind": kind, "rest": rest}
	}
	runBlockCases(t, events, []blockCase{
		{"typed", fields("id", `"a"`, "ts", `42`, "score", `-1.5e3`, "kind", `"k"`), event("a", 42, -1500, "k", "{}"), ""},
		{"limits", fields("id", `"b"`, "ts", `-9223372036854775808`, "score", `1e-400`), event("b", -9223372036854775808, 0, "", "{}"), ""},
		{"null and missing", fields("id", `"c"`, "ts", `0`, "score", `null`, "x", `true`), event("c", 0, 0, "", `{"x":true}`), ""},
		{"fraction for an integer", fields("id", `"d"`, "ts", `1.5`), nil, `field "ts": not an integer that fits Int64: 1.5`},
		{"exponent for an integer", fields("id", `"d"`, "ts", `1e3`), nil, `field "ts": not an integer that fits Int64: 1e3`},
		{"integer too large", fields("id", `"d"`, "ts", `9223372036854775808`), nil, `field "ts": not an integer that fits Int64`},
		{"an integer in a string, as CSV gives it", fields("id", `"d2"`, "ts", `"7"`), event("d2", 7, 0, "", "{}"), ""},
		{"boolean for an integer", fields("id", `"d"`, "ts", `true`), nil, `field "ts": not an integer that fits Int64: true`},
		{"string for a number", fields("id", `"d"`, "ts", `7`, "score", `"x"`), nil, `field "score": not a finite number: "x"`},
		{"number out of range", fields("id", `"d"`, "ts", `7`, "score", `1e400`), nil, `field "score": not a finite number: 1e400`},
		{"hex float in a string", fields("id", `"d"`, "ts", `7`, "score", `"0x1p-2"`), nil, `field "score": not a finite number`},
		{"required integer missing", fields("id", `"d"`), nil, `field "ts": required field is missing`},
		{"after the refusals", fields("id", `"e"`, "ts", `7`, "score", `2`), event("e", 7, 2, "", "{}"), ""},
	})
}

func TestBlockReset(t *testing.T) {
	b := Products.NewBlock()
	for i := range 3 {
		if err := b.Append(fields("sku", fmt.Sprintf(`"s%d"`, i), "x", `1`)); err != nil {
			t.Fatal(err)
		}
	}
	b.Reset()
	if err := b.Append(fields("sku", `"after"`)); err != nil {
		t.Fatal(err)
	}
	checkLengths(t, b, 1)
	if got := b.Column("sku"); !reflect.DeepEqual(got, []string{"after"}) {
		t.Errorf("sku after Reset: %q", got)
	}
	if got := b.Column("extra"); !reflect.DeepEqual(got, []string{"{}"}) {
		t.Errorf("extra after Reset: %q", got)
	}
	if b.Column("nope") != nil {
		t.Error("a column that does not exist is not nil")
	}
}

// Appending allocates nothing once the block's buffers have grown. (A
// string with escapes goes through AppendText's decoder, which allocates.)
func TestBlockAppendAllocs(t *testing.T) {
	rec := fields("sku", `"sku-0000001"`, "name", `"Anna A"`, "description", `"a description"`, "x", `{"y":[1,2]}`, "y", `"\n"`)
	b := Products.NewBlock()
	for range 1000 {
		if err := b.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	b.Reset()
	allocs := testing.AllocsPerRun(1000, func() {
		if b.Len() == 1000 {
			b.Reset()
		}
		if err := b.Append(fields2(rec)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("%.2f allocations per Append", allocs)
	}
}

// fields2 returns fs itself; a function, so that the compiler cannot see
// through the benchmark.
func fields2(fs []Field) []Field { return fs }

// benchRecords returns n decoded records like the generated products: a
// quarter of the descriptions hold a line break. size is their JSON size.
func benchRecords(n int) (recs [][]Field, size int) {
	recs = make([][]Field, n)
	for i := range recs {
		desc := `"Community lead stone best often budget. Plant deal tax evidence floor budget sing season market model sing."`
		if i%4 == 0 {
			desc = `"Community lead stone best often budget.\nPlant deal tax evidence floor budget sing season market model sing."`
		}
		recs[i] = fields("sku", fmt.Sprintf(`"sku-%07d"`, i), "name", `"Anna Smith"`, "description", desc)
		for _, f := range recs[i] {
			size += len(f.Name) + len(f.Value) + 4
		}
	}
	return recs, size
}

// BenchmarkValidate is the loader's per-record check: required fields and
// types, and the Kafka key.
func BenchmarkValidate(b *testing.B) {
	const n = 10000
	recs, size := benchRecords(n)
	var key []byte
	b.ReportAllocs()
	b.SetBytes(int64(size / n))
	i := 0
	for b.Loop() {
		var err error
		if key, err = Products.Validate(key[:0], recs[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkBlockAppend is the processor's per-record encoding: decoded
// fields into typed ClickHouse columns.
func BenchmarkBlockAppend(b *testing.B) {
	const n = 10000
	recs, size := benchRecords(n)
	blk := Products.NewBlock()
	b.ReportAllocs()
	b.SetBytes(int64(size / n))
	i := 0
	for b.Loop() {
		if i == n {
			i = 0
			blk.Reset()
		}
		if err := blk.Append(recs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// SortByKey puts every column, the extra one with them, in the order of
// the key's bytes, and says which row went where.
func TestSortByKey(t *testing.T) {
	s := &Schema{Name: "all", Key: []string{"k"}, Extra: "extra", Columns: []Column{
		{Name: "i", Type: Int64}, {Name: "k", Type: String, Required: true},
		{Name: "u", Type: UInt64}, {Name: "f", Type: Float64, Nullable: true}, {Name: "b", Type: Bool},
		{Name: "d", Type: Date}, {Name: "dt", Type: DateTime, Nullable: true}, {Name: "ts", Type: Timestamp},
		{Name: "s", Type: String, Nullable: true}, {Name: "n", Type: Int64, Nullable: true},
	}}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.KeyText() != 1 {
		t.Fatalf("KeyText %d, want 1", s.KeyText())
	}
	b := s.NewBlock()
	keys := []string{"m", "b", "0", "zz", "b", "a", "ba", "é", "B", "m"}
	for i, k := range keys {
		fs := fields("k", fmt.Sprintf("%q", k), "i", fmt.Sprint(i), "u", fmt.Sprint(100+i), "b", fmt.Sprint(i%2 == 0),
			"d", fmt.Sprintf(`"2020-01-%02d"`, i+1), "ts", fmt.Sprintf(`"2020-01-01T00:00:%02d.5Z"`, i), "x", fmt.Sprint(i))
		if i%3 != 0 {
			fs = append(fs, fields("f", fmt.Sprint(i)+".5", "dt", fmt.Sprintf(`"2020-01-01T00:00:%02dZ"`, i), "s", fmt.Sprintf(`"s%d"`, i), "n", fmt.Sprint(-i))...)
		}
		if err := b.Append(fs); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"i", "k", "u", "f", "b", "d", "dt", "ts", "s", "n", "extra"}
	// values shows a column's values, NULL for a nil pointer.
	values := func(n string) []string {
		v := reflect.ValueOf(b.Column(n))
		out := make([]string, v.Len())
		for i := range out {
			e := v.Index(i)
			switch {
			case e.Kind() != reflect.Pointer:
				out[i] = fmt.Sprint(e.Interface())
			case e.IsNil():
				out[i] = "NULL"
			default:
				out[i] = fmt.Sprint(e.Elem().Interface())
			}
		}
		return out
	}
	before := map[string][]string{}
	for _, n := range names {
		before[n] = values(n)
	}
	perm := b.SortByKey()
	if len(perm) != len(keys) {
		t.Fatalf("order of %d rows: %v", len(keys), perm)
	}
	if again := b.SortByKey(); again != nil {
		t.Fatalf("second SortByKey moved the rows again: %v", again)
	}
	got := b.Column("k").([]string)
	if want := []string{"0", "B", "a", "b", "b", "ba", "m", "m", "zz", "é"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
	if perm[3] != 1 || perm[4] != 4 || perm[6] != 0 || perm[7] != 9 {
		t.Errorf("rows of one key out of their order: %v", perm)
	}
	for _, n := range names {
		after := values(n)
		for k, i := range perm {
			if w, g := before[n][i], after[k]; w != g {
				t.Errorf("column %s row %d: %v, want row %d's %v", n, k, g, i, w)
			}
		}
	}
	if in, ok := b.Input("ts").(proto.ColStr); !ok || in.Rows() != len(keys) || in.Row(0) != before["ts"][perm[0]] {
		t.Errorf("ts as a ch-go column: %v", b.Input("ts"))
	}
	b.Reset()
	if b.Append(fields("k", `"q"`)) != nil || b.Append(fields("k", `"p"`)) != nil {
		t.Fatal("append after Reset")
	}
	if got := b.Column("k"); !reflect.DeepEqual(got, []string{"q", "p"}) {
		t.Errorf("after Reset: %q, want the order appended", got)
	}

	ints := &Schema{Name: "ints", Key: []string{"id"}, Extra: "extra", Columns: []Column{{Name: "id", Type: String}, {Name: "v", Type: String}}}
	ints.Key = []string{"id", "v"}
	for _, o := range []*Schema{ints, {Name: "plays", Identity: true, Extra: "extra", Columns: []Column{{Name: "song", Type: String}}}} {
		if o.KeyText() != -1 {
			t.Errorf("%s: KeyText %d, want -1", o.Name, o.KeyText())
		}
	}
}

func TestPermute(t *testing.T) {
	var tmp []string // shared by every call, as a block's is
	for m := range 80 {
		n := min(m, 79-m) // lengths up, then down: tmp longer than vals

		perm := make([]int32, n)
		for i := range perm {
			perm[i] = int32(i)
		}
		for trial := range 5 {
			for i := range perm { // a different permutation each trial
				j := (i*7 + trial*13) % n
				perm[i], perm[j] = perm[j], perm[i]
			}
			vals := make([]string, n)
			for i := range vals {
				vals[i] = fmt.Sprint("v", i)
			}
			Permute(vals, perm, &tmp)
			for k, i := range perm {
				if vals[k] != fmt.Sprint("v", i) {
					t.Fatalf("n %d perm %v: %v", n, perm, vals)
				}
			}
		}
	}
}
