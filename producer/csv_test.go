package producer

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"
)

// csvRow is what a test sees of one Next call: a record's values, or a
// RecordError's reason.
type csvRow struct {
	Line   int64
	Offset int64
	Values []string // nil for a RecordError
	Err    string   // RecordError.Reason
	Raw    string   // RecordError.Raw
}

func (r csvRow) String() string {
	if r.Err != "" {
		return fmt.Sprintf("line %d @%d: error %q raw %q", r.Line, r.Offset, r.Err, r.Raw)
	}
	return fmt.Sprintf("line %d @%d: %q", r.Line, r.Offset, r.Values)
}

// csvReads are the ways a test feeds its input: whole, a byte at a time, and
// in small odd-sized pieces, so that rows straddle every refill.
var csvReads = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one-byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"chunks-7", func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 7} }},
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// readCSV reads all of r. It checks what every record must satisfy (valid
// compact JSON whose members are the header in order, Fields pointing into
// JSON, lines and offsets that never go back) and returns the header, the
// rows and the error that ended the input (nil for io.EOF).
func readCSV(t testing.TB, r io.Reader, opts ReaderOptions) ([]string, []csvRow, error) {
	t.Helper()
	cr, err := NewCSVReader(r, opts)
	if err != nil {
		return nil, nil, err
	}
	header := cr.Header()
	var rows []csvRow
	var lastLine, lastOff int64 = 0, -1
	for {
		rec, err := cr.Next()
		var re *RecordError
		switch {
		case err == io.EOF:
			if _, again := cr.Next(); again != io.EOF {
				t.Fatalf("Next after io.EOF: %v", again)
			}
			return header, rows, nil
		case errors.As(err, &re):
			rows = append(rows, csvRow{Line: re.Line, Offset: re.Offset, Err: re.Reason, Raw: string(re.Raw)})
		case err != nil:
			if _, again := cr.Next(); again != err {
				t.Fatalf("Next after fatal %v: %v", err, again)
			}
			return header, rows, err
		default:
			vals, err := checkCSVRecord(header, rec)
			if err != nil {
				t.Fatalf("line %d: %v\nJSON: %s", rec.Line, err, rec.JSON)
			}
			rows = append(rows, csvRow{Line: rec.Line, Offset: rec.Offset, Values: vals})
		}
		row := rows[len(rows)-1]
		if row.Line < lastLine || row.Offset <= lastOff {
			t.Fatalf("row %v after line %d offset %d", row, lastLine, lastOff)
		}
		lastLine, lastOff = row.Line, row.Offset
	}
}

// checkCSVRecord checks a record against the header and returns its values.
func checkCSVRecord(header []string, rec *Record) ([]string, error) {
	if !json.Valid(rec.JSON) {
		return nil, errors.New("invalid JSON")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, rec.JSON); err != nil || !bytes.Equal(compact.Bytes(), rec.JSON) {
		return nil, fmt.Errorf("JSON is not compact (%v)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.JSON))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v %v", tok, err)
	}
	var keys, vals []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		v, err := dec.Token()
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("member %v is %T, not a string", k, v)
		}
		keys = append(keys, k.(string))
		vals = append(vals, s)
	}
	if !reflect.DeepEqual(keys, header) {
		return nil, fmt.Errorf("keys %q, header %q", keys, header)
	}
	if len(rec.Fields) != len(header) {
		return nil, fmt.Errorf("%d fields, header has %d", len(rec.Fields), len(header))
	}
	for i, f := range rec.Fields {
		if string(f.Name) != header[i] {
			return nil, fmt.Errorf("field %d named %q, header says %q", i, f.Name, header[i])
		}
		var s string
		if err := json.Unmarshal(f.Value, &s); err != nil || s != vals[i] {
			return nil, fmt.Errorf("field %q value %s, JSON has %q (%v)", f.Name, f.Value, vals[i], err)
		}
		if !within(f.Value, rec.JSON) {
			return nil, fmt.Errorf("field %q value does not point into JSON", f.Name)
		}
	}
	return vals, nil
}

// within reports whether sub lies in b.
func within(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= lo && p+uintptr(len(sub)) <= lo+uintptr(len(b))
}

func rec(line, off int64, vals ...string) csvRow {
	if vals == nil {
		vals = []string{}
	}
	return csvRow{Line: line, Offset: off, Values: vals}
}

func bad(line, off int64, reason, raw string) csvRow {
	return csvRow{Line: line, Offset: off, Err: reason, Raw: raw}
}

func TestCSVReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		header  []string
		rows    []csvRow
		fatal   string // substring of the error that ends the input
		initErr string // substring of NewCSVReader's error
	}{
		{
			name:   "simple LF",
			in:     "a,b,c\n1,2,3\n4,5,6\n",
			header: []string{"a", "b", "c"},
			rows:   []csvRow{rec(2, 6, "1", "2", "3"), rec(3, 12, "4", "5", "6")},
		},
		{
			name:   "CRLF, no final line end",
			in:     "a,b\r\n1,2\r\n3,4",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 5, "1", "2"), rec(3, 10, "3", "4")},
		},
		{
			name:   "CR at the very end is a line end",
			in:     "a,b\r\n1,2\r",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 5, "1", "2")},
		},
		{
			name:   "quoted CR at the very end",
			in:     "a,b\r\n1,\"2\"\r",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 5, "1", "2")},
		},
		{
			name:   "lone CR inside an unquoted field is data",
			in:     "a,b\n1,x\ry\n",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 4, "1", "x\ry")},
		},
		{
			name:   "BOM",
			in:     "\xEF\xBB\xBFsku,name\nx,y\n",
			header: []string{"sku", "name"},
			rows:   []csvRow{rec(2, 12, "x", "y")},
		},
		{
			name:   "BOM only once",
			in:     "\xEF\xBB\xBF\xEF\xBB\xBFsku\nx\n",
			header: []string{"\uFEFFsku"},
			rows:   []csvRow{rec(2, 10, "x")},
		},
		{
			name:   "quoted commas, quotes, LF and CRLF kept",
			in:     "a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\n\"l1\nl2\",\"c1\r\nc2\"\r\n",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 5, "x,y", `say "hi"`), rec(3, 25, "l1\nl2", "c1\r\nc2")},
		},
		{
			name:   "line numbers count line breaks inside quotes",
			in:     "a,b\n1,\"x\n\ny\"\n2,\"\r\n\"\n3,4\n",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 4, "1", "x\n\ny"), rec(5, 13, "2", "\r\n"), rec(7, 20, "3", "4")},
		},
		{
			name:   "blank lines are skipped",
			in:     "\n\r\na,b\n\n1,2\r\n\r\n\n3,4\n\n",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(5, 8, "1", "2"), rec(8, 16, "3", "4")},
		},
		{
			name:   "one column: blank lines skipped, quoted empty kept",
			in:     "a\nx\n\n\"\"\n,\n",
			header: []string{"a"},
			rows:   []csvRow{rec(2, 2, "x"), rec(4, 5, ""), bad(5, 8, "row has 2 fields, header has 1", ",")},
		},
		{
			name:   "empty fields",
			in:     "a,b,c\n,,\n1,\"\",\"\"\n,,\n",
			header: []string{"a", "b", "c"},
			rows:   []csvRow{rec(2, 6, "", "", ""), rec(3, 9, "1", "", ""), rec(4, 17, "", "", "")},
		},
		{
			name:   "trailing comma at the end of input is an empty field",
			in:     "a,b\n1,",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 4, "1", "")},
		},
		{
			name:   "a quote after a space is literal",
			in:     "a, b\n 1 , \" 2 \"\n",
			header: []string{"a", " b"},
			rows:   []csvRow{rec(2, 5, " 1 ", ` " 2 "`)},
		},
		{
			name:   "spaces around unquoted values are kept",
			in:     "a,b\n 1 ,  2\t\n",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 4, " 1 ", "  2\t")},
		},
		{
			name:   "JSON escapes",
			in:     "a,b\n\"\\ \"\"q\"\" \t\x01\x1f\",x\x00y\x7f\n",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 4, "\\ \"q\" \t\x01\x1f", "x\x00y\x7f")},
		},
		{
			name:   "escaped header names",
			in:     "\"a\"\"b\",\"c\\d\",\"e\nf\"\n1,2,3\n",
			header: []string{`a"b`, `c\d`, "e\nf"},
			rows:   []csvRow{rec(3, 19, "1", "2", "3")},
		},
		{
			name:   "UTF-8",
			in:     "名前,sku\nʤ,😀\n",
			header: []string{"名前", "sku"},
			rows:   []csvRow{rec(2, 11, "ʤ", "😀")},
		},
		{
			name:   "literal quote inside an unquoted field",
			in:     "a,b\n12\" pipe,37°36'37.8\"N\nx\"\",\"\"\n",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 4, `12" pipe`, `37°36'37.8"N`), rec(3, 27, `x""`, "")},
		},
		{
			name:   "too many and too few fields",
			in:     "a,b,c\n1,2,3,4\n5,6\n7,8,9\n",
			header: []string{"a", "b", "c"},
			rows: []csvRow{
				bad(2, 6, "row has 4 fields, header has 3", "1,2,3,4"),
				bad(3, 14, "row has 2 fields, header has 3", "5,6"),
				rec(4, 18, "7", "8", "9"),
			},
		},
		{
			name:   "text after a closing quote",
			in:     "a,b\n\"abc\"x,2\n\"ab\" ,\"c\"\"d\"e\"\r\n3,4\r\n",
			header: []string{"a", "b"},
			rows: []csvRow{
				bad(2, 4, `text after the closing quote of field 1 (column "a")`, `"abc"x,2`),
				bad(3, 13, `text after the closing quote of field 1 (column "a")`, `"ab" ,"c""d"e"`),
				rec(4, 29, "3", "4"),
			},
		},
		{
			name:   "text after a closing quote does not reopen quoting",
			in:     "a,b\n\"x\"y\"z,w\n1,2\n",
			header: []string{"a", "b"},
			rows: []csvRow{
				bad(2, 4, `text after the closing quote of field 1 (column "a")`, `"x"y"z,w`),
				rec(3, 13, "1", "2"),
			},
		},
		{
			name:   "invalid UTF-8",
			in:     "a,b\n1,x\xffy\n\"\xc3\",2\n3,4\n",
			header: []string{"a", "b"},
			rows: []csvRow{
				bad(2, 4, `field 2 (column "b") is not valid UTF-8`, "1,x\xffy"),
				bad(3, 10, `field 1 (column "a") is not valid UTF-8`, "\"\xc3\",2"),
				rec(4, 16, "3", "4"),
			},
		},
		{
			name:   "unterminated quote at the end of input",
			in:     "a,b\n1,2\n3,\"abc\ndef\n",
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 4, "1", "2")},
			fatal:  "line 3, column 3 (byte 10): quoted field opened on line 3 is never closed",
		},
		{
			name:   "oversized row is skipped to its end",
			in:     "a,b\n1,2\n3,\"" + strings.Repeat("x\n", 20) + "\"\n5,6\n" + strings.Repeat("y", 40) + "\n7,8",
			max:    24,
			header: []string{"a", "b"},
			rows: []csvRow{
				rec(2, 4, "1", "2"),
				bad(3, 8, "row is longer than 24 bytes (MaxRecordBytes): skipped to its end", "3,\""+strings.Repeat("x\n", 20)+"\""),
				rec(24, 53, "5", "6"),
				bad(25, 57, "row is longer than 24 bytes (MaxRecordBytes): skipped to its end", strings.Repeat("y", 40)),
				rec(26, 98, "7", "8"),
			},
		},
		{
			name:   "row of exactly MaxRecordBytes",
			in:     "a,b\n" + "1," + strings.Repeat("z", 22) + "\r\n3,4",
			max:    24,
			header: []string{"a", "b"},
			rows:   []csvRow{rec(2, 4, "1", strings.Repeat("z", 22)), rec(3, 30, "3", "4")},
		},
		{name: "empty input", in: "", initErr: "empty CSV input"},
		{name: "only BOM and blank lines", in: "\xEF\xBB\xBF\n\r\n\n", initErr: "empty CSV input"},
		{name: "duplicate column", in: "sku,name,sku\n", initErr: `line 1: column 3 "sku" repeats the name of column 1`},
		{name: "empty column name", in: "sku,,name\n", initErr: "line 1: column 2 has an empty name"},
		{name: "empty quoted column name", in: "\n\"\"\n", initErr: "line 2: column 1 has an empty name"},
		{name: "header with bad quote", in: "\"a\"b,c\n", initErr: "text after the closing quote of field 1"},
		{name: "header not UTF-8", in: "a,\xff\n", initErr: "column 2: name is not valid UTF-8"},
		{name: "header unterminated", in: "a,\"b\n", initErr: "line 1, column 3 (byte 2): quoted field opened on line 1 is never closed"},
		{name: "header too long", in: "abcdefgh,ijklmnop\n1,2\n", max: 8, initErr: "row is longer than 8 bytes"},
	}
	for _, tt := range tests {
		for _, rd := range csvReads {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				header, rows, err := readCSV(t, rd.wrap(strings.NewReader(tt.in)), ReaderOptions{MaxRecordBytes: tt.max})
				if tt.initErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.initErr) {
						t.Fatalf("NewCSVReader error %v, want %q", err, tt.initErr)
					}
					return
				}
				if !reflect.DeepEqual(header, tt.header) {
					t.Errorf("header %q, want %q", header, tt.header)
				}
				if !reflect.DeepEqual(rows, tt.rows) {
					t.Errorf("rows:\n%s\nwant:\n%s", rowsString(rows), rowsString(tt.rows))
				}
				switch {
				case tt.fatal == "" && err != nil:
					t.Errorf("error %v", err)
				case tt.fatal != "" && (err == nil || !strings.Contains(err.Error(), tt.fatal)):
					t.Errorf("error %v, want %q", err, tt.fatal)
				}
			})
		}
	}
}

func rowsString(rows []csvRow) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %v\n", r)
	}
	return b.String()
}

func TestCSVErrorTypes(t *testing.T) {
	cr, err := NewCSVReader(strings.NewReader("a,b\n1,2,3\n\"x"), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cr.Next()
	var re *RecordError
	if !errors.As(err, &re) || re.Line != 2 || re.Offset != 4 || string(re.Raw) != "1,2,3" {
		t.Fatalf("got %#v, want a *RecordError on line 2", err)
	}
	if got, want := err.Error(), "line 2: row has 3 fields, header has 2"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = cr.Next()
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 3 || se.Column != 1 || se.Offset != 10 {
		t.Fatalf("got %#v, want a *SyntaxError on line 3", err)
	}

	for _, in := range []string{"a,a\n", "a,\n"} {
		if _, err := NewCSVReader(strings.NewReader(in), ReaderOptions{}); !errors.Is(err, ErrHeader) {
			t.Errorf("header %q: error %v, want ErrHeader", in, err)
		}
	}
	if _, err := NewCSVReader(strings.NewReader("\n"), ReaderOptions{}); !errors.Is(err, ErrEmptyCSV) {
		t.Errorf("blank input: error %v, want ErrEmptyCSV", err)
	}
	if _, err := NewCSVReader(strings.NewReader("a\n"), ReaderOptions{MaxRecordBytes: -1}); err == nil {
		t.Error("negative MaxRecordBytes accepted")
	}
}

func TestCSVReadError(t *testing.T) {
	boom := errors.New("boom")
	in := io.MultiReader(strings.NewReader("a,b\n1,2\n3,"), iotest.ErrReader(boom))
	cr, err := NewCSVReader(in, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := cr.Next(); err != nil || string(r.JSON) != `{"a":"1","b":"2"}` {
		t.Fatalf("first row: %v %v", r, err)
	}
	for range 2 {
		if _, err := cr.Next(); !errors.Is(err, boom) {
			t.Fatalf("error %v, want boom", err)
		}
	}
	if _, err := NewCSVReader(iotest.ErrReader(boom), ReaderOptions{}); !errors.Is(err, boom) {
		t.Fatalf("NewCSVReader error %v, want boom", err)
	}
}

func TestCSVRecordJSON(t *testing.T) {
	cr, err := NewCSVReader(strings.NewReader("sku,na\"me,d\n1,\"a\r\nb\",\"\x01\"\n"), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := cr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(r.JSON), `{"sku":"1","na\"me":"a\r\nb","d":"\u0001"}`; got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
	if got := string(r.Fields[1].Name) + "=" + string(r.Fields[1].Value); got != `na"me="a\r\nb"` {
		t.Errorf("field 1: %s", got)
	}
}

// TestCSVRefills reads generated rows of every shape through every way of
// feeding input and a small buffer limit, and wants the same rows each time.
func TestCSVRefills(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,text,note\r\n")
	var want []csvRow
	line := int64(2)
	for i := range 3000 {
		off := int64(b.Len())
		text := strings.Repeat("é", i%7) + fmt.Sprint(i)
		var raw string
		switch i % 6 {
		case 0:
			raw = fmt.Sprintf("%d,%s,plain", i, text)
		case 1:
			text += "\r\nafter CRLF, \"quoted\""
			raw = fmt.Sprintf("%d,\"%s\",", i, strings.ReplaceAll(text, `"`, `""`))
		case 2:
			text = strings.Repeat("long ", i%300) + "\n" + text
			raw = fmt.Sprintf("%d,\"%s\",\"\"", i, text)
		case 3:
			raw = fmt.Sprintf("%d,%s,extra,field", i, text)
		case 4:
			raw = fmt.Sprintf("%d,\"%s\"", i, text)
		case 5:
			raw = fmt.Sprintf("%d,\"\"\"%s\"\"\",\"\r\"", i, text)
			text = `"` + text + `"`
		}
		b.WriteString(raw)
		b.WriteString("\r\n")
		if i%50 == 0 {
			b.WriteString("\r\n")
		}
		switch i % 6 {
		case 0:
			want = append(want, rec(line, off, fmt.Sprint(i), text, "plain"))
		case 1:
			want = append(want, rec(line, off, fmt.Sprint(i), text, ""))
		case 2:
			want = append(want, rec(line, off, fmt.Sprint(i), text, ""))
		case 3:
			want = append(want, bad(line, off, "row has 4 fields, header has 3", raw))
		case 4:
			want = append(want, bad(line, off, "row has 2 fields, header has 3", raw))
		case 5:
			want = append(want, rec(line, off, fmt.Sprint(i), text, "\r"))
		}
		line += int64(strings.Count(raw, "\n")) + 1
		if i%50 == 0 {
			line++
		}
	}
	in := b.String()
	for _, rd := range csvReads {
		for _, max := range []int{0, 1600} {
			t.Run(fmt.Sprintf("%s/max=%d", rd.name, max), func(t *testing.T) {
				_, rows, err := readCSV(t, rd.wrap(strings.NewReader(in)), ReaderOptions{MaxRecordBytes: max})
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) != len(want) {
					t.Fatalf("%d rows, want %d", len(rows), len(want))
				}
				for i := range want {
					if !reflect.DeepEqual(rows[i], want[i]) {
						t.Fatalf("row %d:\n%v\nwant\n%v", i, rows[i], want[i])
					}
				}
			})
		}
	}
}

// endlessField is a CSV input whose second row is one quoted field of n
// bytes, with a line break every 100 bytes, then a short row.
type endlessField struct {
	n, i int
	tail string
}

func (e *endlessField) Read(p []byte) (int, error) {
	if e.i < e.n {
		k := min(len(p), e.n-e.i)
		for j := range k {
			p[j] = 'x'
			if (e.i+j)%100 == 99 {
				p[j] = '\n'
			}
		}
		e.i += k
		return k, nil
	}
	if e.tail == "" {
		return 0, io.EOF
	}
	k := copy(p, e.tail)
	e.tail = e.tail[k:]
	return k, nil
}

// TestCSVMemoryBound reads a 64 MB row with a 64 KB limit: the buffer and
// the JSON stay small, and the rows after it are read with the right lines.
func TestCSVMemoryBound(t *testing.T) {
	const size = 64 << 20
	in := io.MultiReader(strings.NewReader("a,b\n1,\""), &endlessField{n: size, tail: "\"\n2,3\n"})
	cr, err := NewCSVReader(in, ReaderOptions{MaxRecordBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cr.Next()
	var re *RecordError
	if !errors.As(err, &re) || re.Line != 2 || !strings.Contains(re.Reason, "longer than 65536 bytes") {
		t.Fatalf("got %v, want an oversized row", err)
	}
	if len(re.Raw) != csvMaxRaw || !strings.HasPrefix(string(re.Raw), "1,\"xxx") {
		t.Errorf("Raw is %d bytes: %.20q", len(re.Raw), re.Raw)
	}
	if c := cap(cr.buf); c > 64<<10+csvSlack {
		t.Errorf("buffer grew to %d bytes", c)
	}
	if c := cap(cr.out); c > 8*64<<10 {
		t.Errorf("JSON buffer grew to %d bytes", c)
	}
	r, err := cr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2 + size/100 + 1); r.Line != want || string(r.JSON) != `{"a":"2","b":"3"}` {
		t.Errorf("next row: line %d %s, want line %d", r.Line, r.JSON, want)
	}
	if want := int64(4 + 3 + size + 2); r.Offset != want {
		t.Errorf("next row offset %d, want %d", r.Offset, want)
	}
}

// TestCSVAllocs wants no allocation per record once the buffers have grown.
func TestCSVAllocs(t *testing.T) {
	data := genProductsCSV(2000)
	cr, err := NewCSVReader(bytes.NewReader(data), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 { // let the buffers grow
		if _, err := cr.Next(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := cr.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.01 {
		t.Errorf("%.2f allocations per record", allocs)
	}
}

// externalDir finds the shared external test data: ../shared/testdata/external
// from the module root.
func externalDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			ext := filepath.Join(d, "..", "shared", "testdata", "external")
			if _, err := os.Stat(ext); err != nil {
				t.Fatalf("external test data: %v", err)
			}
			return ext
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

// csvSpectrumDiffs are the known errors of csv-spectrum's expected JSON: file,
// field, the value upstream's JSON has, and the value its CSV really holds.
var csvSpectrumDiffs = []struct{ file, field, upstream, csv string }{
	// Upstream's JSON has a placeholder phone number; the CSV has the real one.
	{"location_coordinates", "Contact Phone Number", "1234567890", "2095257564"},
}

// TestCSVSpectrum reads every csv-spectrum CSV and wants the records of its
// JSON.
func TestCSVSpectrum(t *testing.T) {
	dir := filepath.Join(externalDir(t), "csv-spectrum")
	files, err := filepath.Glob(filepath.Join(dir, "csvs", "*.csv"))
	if err != nil || len(files) < 12 {
		t.Fatalf("csv-spectrum: %d files in %s (%v)", len(files), dir, err)
	}
	usedDiffs := 0
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".csv")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			js, err := os.ReadFile(filepath.Join(dir, "json", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			// The JSON is an array of records, or (location_coordinates) the
			// one record itself.
			var want []map[string]string
			if err := json.Unmarshal(js, &want); err != nil {
				var one map[string]string
				if err2 := json.Unmarshal(js, &one); err2 != nil {
					t.Fatalf("%s.json: %v", name, err)
				}
				want = []map[string]string{one}
			}
			for _, d := range csvSpectrumDiffs {
				if d.file != name {
					continue
				}
				usedDiffs++
				for _, w := range want {
					if w[d.field] != d.upstream {
						t.Fatalf("known difference %+v no longer holds: JSON has %q", d, w[d.field])
					}
					w[d.field] = d.csv
				}
			}
			// Upstream's .gitattributes says `csvs/*_crlf.csv eol=crlf`: a
			// checkout has CRLF line ends, though the stored blobs have LF.
			// Our copy was taken from the blobs, so do what the checkout does.
			if strings.HasSuffix(name, "_crlf") && !bytes.Contains(in, []byte("\r")) {
				in = bytes.ReplaceAll(in, []byte("\n"), []byte("\r\n"))
			}
			for _, rd := range csvReads {
				header, rows, err := readCSV(t, rd.wrap(bytes.NewReader(in)), ReaderOptions{})
				if err != nil {
					t.Fatalf("%s: %v", rd.name, err)
				}
				var got []map[string]string
				for _, r := range rows {
					if r.Err != "" {
						t.Fatalf("%s: %v", rd.name, r)
					}
					m := make(map[string]string)
					for i, v := range r.Values {
						m[header[i]] = v
					}
					got = append(got, m)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: got\n%q\nwant\n%q", rd.name, got, want)
				}
			}
		})
	}
	if usedDiffs != len(csvSpectrumDiffs) {
		t.Errorf("%d of %d known differences used", usedDiffs, len(csvSpectrumDiffs))
	}
}

// TestCSVProducts2000 reads the real products file and checks every value,
// line and offset against encoding/csv (the file has no CRLF inside quotes,
// where encoding/csv would differ).
func TestCSVProducts2000(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(externalDir(t), "products-2000.csv"))
	if err != nil {
		t.Fatal(err)
	}
	std := csv.NewReader(bytes.NewReader(in))
	stdHeader, err := std.Read()
	if err != nil {
		t.Fatal(err)
	}
	type stdRow struct {
		line, off int64
		vals      []string
	}
	var want []stdRow
	for {
		off := std.InputOffset()
		vals, err := std.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		line, _ := std.FieldPos(0)
		want = append(want, stdRow{int64(line), off, vals})
	}
	if len(want) != 2000 {
		t.Fatalf("encoding/csv reads %d rows", len(want))
	}
	for _, rd := range csvReads {
		t.Run(rd.name, func(t *testing.T) {
			header, rows, err := readCSV(t, rd.wrap(bytes.NewReader(in)), ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(header, []string{"name", "sku", "description"}) || !reflect.DeepEqual(header, stdHeader) {
				t.Fatalf("header %q, encoding/csv %q", header, stdHeader)
			}
			if len(rows) != 2000 {
				t.Fatalf("%d rows, want 2000", len(rows))
			}
			for i, r := range rows {
				w := want[i]
				if r.Err != "" || r.Line != w.line || r.Offset != w.off || !reflect.DeepEqual(r.Values, w.vals) {
					t.Fatalf("row %d: %v\nencoding/csv: line %d @%d %q", i, r, w.line, w.off, w.vals)
				}
			}
			if last := rows[len(rows)-1]; last.Line < 2000 {
				t.Errorf("last row on line %d", last.Line)
			}
		})
	}
}

// TestCSVPlainRun checks the 8-bytes-at-a-time scan against the byte table.
func TestCSVPlainRun(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("ab,\"\\\x00\x1f\x20\x7f\x80\xff\n\r\t")
	s := make([]byte, 40)
	for range 200_000 {
		n := rng.IntN(len(s) + 1)
		for i := range n {
			if rng.IntN(4) == 0 {
				s[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				s[i] = byte(rng.IntN(256))
			}
		}
		for _, quoted := range []bool{false, true} {
			table := csvPlainUnquoted
			if quoted {
				table = csvPlainQuoted
			}
			want := 0
			for want < n && table[s[want]] {
				want++
			}
			if got := csvPlainRun(s[:n], quoted); got != want {
				t.Fatalf("csvPlainRun(%q, %v) = %d, want %d", s[:n], quoted, got, want)
			}
		}
	}
}

// TestCSVSmallReadsLongRow reads a long row a byte at a time: the buffer is
// compacted only when full, so this is linear, not quadratic, in the row.
func TestCSVSmallReadsLongRow(t *testing.T) {
	long := strings.Repeat("abcdefgh\n", 100_000)
	in := "a,b\n1,\"" + long + "\"\n2,3"
	_, rows, err := readCSV(t, iotest.OneByteReader(strings.NewReader(in)), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []csvRow{rec(2, 4, "1", long), rec(100_003, int64(len(in)-3), "2", "3")}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("got %d rows: %.200v", len(rows), rows)
	}
}
