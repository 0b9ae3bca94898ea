package producer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"skuflow/internal/jsonscan"
)

// jsonEvents reads r to its end and renders what it returned, one line per
// call: "L<line>@<offset> <json> [<name>=<value> ...]" for a record,
// "E L<line>@<offset> <reason>" for a *RecordError, then "EOF", or "SYNTAX
// <message>" for a *SyntaxError, or "ERR <error>".
func jsonEvents(t testing.TB, r Reader) []string {
	t.Helper()
	var out []string
	for n := 0; ; n++ {
		if n > 1_000_000 {
			t.Fatal("reader does not end")
		}
		rec, err := r.Next()
		var re *RecordError
		var se *SyntaxError
		switch {
		case err == nil:
			var b strings.Builder
			fmt.Fprintf(&b, "L%d@%d %s", rec.Line, rec.Offset, rec.JSON)
			for _, f := range rec.Fields {
				fmt.Fprintf(&b, " %s=%s", f.Name, f.Value)
			}
			out = append(out, b.String())
		case errors.As(err, &re):
			out = append(out, fmt.Sprintf("E L%d@%d %s", re.Line, re.Offset, re.Reason))
		case err == io.EOF:
			return append(out, "EOF")
		case errors.As(err, &se):
			out = append(out, "SYNTAX "+se.Error())
		default:
			out = append(out, "ERR "+err.Error())
		}
		if err != nil && re == nil {
			// The error must stick.
			if _, err2 := r.Next(); err2 != err {
				t.Fatalf("after %v, Next returned %v", err, err2)
			}
			return out
		}
	}
}

// jsonReaders builds the same reader over input in several ways: whole, one
// byte per read with a tiny buffer (so every record straddles refills), and
// with data arriving together with io.EOF.
func jsonReaders(input string, opts ReaderOptions, ndjson bool) map[string]Reader {
	mk := func(r io.Reader, size int) Reader {
		if ndjson {
			return newNDJSONReader(r, opts, size)
		}
		return newJSONReader(r, opts, size)
	}
	return map[string]Reader{
		"whole":    mk(strings.NewReader(input), jsonBufSize),
		"onebyte":  mk(iotest.OneByteReader(strings.NewReader(input)), 1),
		"halfbuf":  mk(iotest.HalfReader(strings.NewReader(input)), 7),
		"dataerr":  mk(iotest.DataErrReader(strings.NewReader(input)), 16),
		"timeout":  mk(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader(input))), 3),
		"nonempty": mk(&emptyReads{r: strings.NewReader(input)}, 5),
	}
}

// emptyReads returns (0, nil) every other call, as io.Reader allows.
type emptyReads struct {
	r io.Reader
	n int
}

func (e *emptyReads) Read(p []byte) (int, error) {
	e.n++
	if e.n%2 == 1 {
		return 0, nil
	}
	return e.r.Read(p[:min(len(p), 3)])
}

// checkEvents runs every variant of the reader over input and compares what
// it returned with want. The timeout variant fails with an I/O error in the
// middle (iotest.ErrTimeout) unless the input is a single byte: it is only
// checked to agree with the others up to that error.
func checkEvents(t *testing.T, input string, opts ReaderOptions, ndjson bool, want []string) {
	t.Helper()
	for name, r := range jsonReaders(input, opts, ndjson) {
		got := jsonEvents(t, r)
		checkPositions(t, input, got)
		if name == "timeout" {
			last := got[len(got)-1]
			if strings.HasPrefix(last, "ERR ") {
				if !strings.Contains(last, iotest.ErrTimeout.Error()) {
					t.Errorf("%s: %s", name, last)
				}
				got = got[:len(got)-1]
				if len(got) > len(want) || strings.Join(got, "\n") != strings.Join(want[:len(got)], "\n") {
					t.Errorf("%s: got\n%s\nwant a prefix of\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				continue
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: input %q:\ngot\n%s\nwant\n%s", name, input, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// checkPositions checks the line and offset of each record and record error
// against the input: the offset is where a value starts, the line is the
// number of newlines before it plus one.
func checkPositions(t *testing.T, input string, events []string) {
	t.Helper()
	for _, e := range events {
		var line, off int
		if _, err := fmt.Sscanf(strings.TrimPrefix(e, "E "), "L%d@%d", &line, &off); err != nil {
			continue
		}
		if off < 0 || off >= len(input) || jsonscan.IsSpace(input[off]) {
			t.Errorf("%q: offset %d is not where a value starts", e, off)
			continue
		}
		if want := strings.Count(input[:off], "\n") + 1; line != want {
			t.Errorf("%q: line %d, want %d", e, line, want)
		}
		if !strings.HasPrefix(e, "E ") && input[off] != '{' {
			t.Errorf("%q: offset %d is not where an object starts", e, off)
		}
	}
}

var productKeys = ReaderOptions{KeyFields: []string{"sku"}}

// jsonReaderCase is a unit case of a reader: its input, options and the
// events it must give (see jsonEvents).
type jsonReaderCase struct {
	name  string
	input string
	opts  ReaderOptions
	want  []string
}

// jsonReaderCases are the unit cases of the JSON reader; they seed
// FuzzJSONReader too.
var jsonReaderCases = []jsonReaderCase{
	{"array", `[{"sku":"a","n":1},{"sku":"b"}]`, productKeys, []string{
		`L1@1 {"sku":"a","n":1} sku="a" n=1`,
		`L1@19 {"sku":"b"} sku="b"`,
		"EOF"}},
	{"empty array", " [ ] \n", productKeys, []string{"EOF"}},
	{"empty object in array", `[{}, { }]`, productKeys, []string{"L1@1 {}", "L1@5 {}", "EOF"}},
	{"pretty array", "[\n  {\n    \"sku\" : \"a b\",\n    \"tags\" : [ 1 , { \"x\" : null } ]\n  },\n  {\"sku\":\"c\"}\n]\n", productKeys, []string{
		`L2@4 {"sku":"a b","tags":[1,{"x":null}]} sku="a b" tags=[1,{"x":null}]`,
		`L6@68 {"sku":"c"} sku="c"`,
		"EOF"}},
	{"non-object elements", `[1, "x", [ {"a":1} ], true, null, {"sku":"a"}, -0.5e3]`, productKeys, []string{
		"E L1@1 record is a number, not an object",
		"E L1@4 record is a string, not an object",
		"E L1@9 record is an array, not an object",
		"E L1@22 record is a boolean, not an object",
		"E L1@28 record is null, not an object",
		`L1@34 {"sku":"a"} sku="a"`,
		"E L1@47 record is a number, not an object",
		"EOF"}},
	{"wrapper", `{"records":[{"sku":"a"},{"sku":"b"}],"count":2}`, productKeys, []string{
		`L1@12 {"sku":"a"} sku="a"`,
		`L1@24 {"sku":"b"} sku="b"`,
		"EOF"}},
	{"wrapper with members around", "{\"meta\": {\"x\": [{\"y\": 1}]}, \"n\": [1, {\"z\": 2}], \"e\": [],\n \"data\" : [ {\"sku\":\"a\"} ,\n{\"sku\":\"b\"}\n] , \"after\": {\"rows\": [{\"k\": 1}]}, \"tail\": [], \"more\": [[{}]] }\n", productKeys, []string{
		`L2@69 {"sku":"a"} sku="a"`,
		`L3@83 {"sku":"b"} sku="b"`,
		"EOF"}},
	{"wrapper without key fields", `{"x":1,"items":[{"id":1}]}`, ReaderOptions{}, []string{
		`L1@16 {"id":1} id=1`,
		"EOF"}},
	{"wrapper with non-object records", `{"items":[{"id":1},2]}`, ReaderOptions{}, []string{
		`L1@10 {"id":1} id=1`,
		"E L1@19 record is a number, not an object",
		"EOF"}},
	{"key field first makes a record", `{"sku":"a","parts":[{"p":1}],"more":[{"q":2}]}`, productKeys, []string{
		`L1@0 {"sku":"a","parts":[{"p":1}],"more":[{"q":2}]} sku="a" parts=[{"p":1}] more=[{"q":2}]`,
		"EOF"}},
	{"escaped key field first makes a record", `{"\u0073ku":"a","parts":[{"p":1}]}`, productKeys, []string{
		`L1@0 {"\u0073ku":"a","parts":[{"p":1}]} sku="a" parts=[{"p":1}]`,
		"EOF"}},
	{"key field after the array makes a record", `{"parts":[{"p":1}],"sku":"a"}`, productKeys, []string{
		`L1@0 {"parts":[{"p":1}],"sku":"a"} parts=[{"p":1}] sku="a"`,
		"EOF"}},
	{"bundle with its key after the array", `{"bundle":[{"sku":"p1"}],"sku":"B1","name":"Bundle"}`, productKeys, []string{
		`L1@0 {"bundle":[{"sku":"p1"}],"sku":"B1","name":"Bundle"} bundle=[{"sku":"p1"}] sku="B1" name="Bundle"`,
		"EOF"}},
	{"bundle with its key before the array", `{"sku":"B1","bundle":[{"sku":"p1"}],"name":"Bundle"}`, productKeys, []string{
		`L1@0 {"sku":"B1","bundle":[{"sku":"p1"}],"name":"Bundle"} sku="B1" bundle=[{"sku":"p1"}] name="Bundle"`,
		"EOF"}},
	{"key field after two arrays makes a record", "{\"a\":[{\"x\":1}],\n\"b\":[{\"y\":2}], \"sku\":\"k\"}", productKeys, []string{
		`L1@0 {"a":[{"x":1}],"b":[{"y":2}],"sku":"k"} a=[{"x":1}] b=[{"y":2}] sku="k"`,
		"EOF"}},
	{"key field nested is no key", `{"r":[{"sku":"a"}],"meta":{"sku":"m"}}`, productKeys, []string{
		`L1@6 {"sku":"a"} sku="a"`,
		"EOF"}},
	{"record with its key after the array, too long", `{"r":[{"a":1}],"n":"12345678","sku":"k"}`, ReaderOptions{MaxRecordBytes: 36, KeyFields: []string{"sku"}}, []string{
		`SYNTAX line 1, column 1 (byte 0): record longer than 36 bytes (MaxRecordBytes): the rest of the document cannot be read`}},
	{"key field after the array, past MaxRecordBytes", `{"r":[{"a":1},{"a":2}],"n":"1234567890","sku":"k"}`, ReaderOptions{MaxRecordBytes: 30, KeyFields: []string{"sku"}}, []string{
		`L1@6 {"a":1} a=1`,
		`L1@14 {"a":2} a=2`,
		`SYNTAX line 1, column 41 (byte 40): member "sku" is a key field, so the object around the array of records in "r" may be one record, but it is longer than 30 bytes (MaxRecordBytes): refused rather than guessed`}},
	{"syntax error in the key field after the array", `{"r":[{"a":1}],"sku":tru}`, productKeys, []string{
		"SYNTAX line 1, column 25 (byte 24): invalid character '}' in literal true (expecting 'e')"}},
	{"lone record", " {\"sku\": \"a\",\n \"name\": \"b\", \"n\": [1, 2]}", productKeys, []string{
		`L1@1 {"sku":"a","name":"b","n":[1,2]} sku="a" name="b" n=[1,2]`,
		"EOF"}},
	{"empty array decides nothing", `{"records":[],"count":0}`, productKeys, []string{
		`L1@0 {"records":[],"count":0} records=[] count=0`,
		"EOF"}},
	{"empty array then records", `{"old":[],"records":[{"sku":"a"}]}`, productKeys, []string{
		`L1@21 {"sku":"a"} sku="a"`,
		"EOF"}},
	{"empty wrapper object", `{}`, productKeys, []string{"L1@0 {}", "EOF"}},
	{"second records array", `{"a":[{"sku":"1"}],"b":[ {"sku":"2"}]}`, productKeys, []string{
		`L1@6 {"sku":"1"} sku="1"`,
		`SYNTAX line 1, column 24 (byte 23): member "b" holds a second array of records after "a": a wrapper object may hold only one`}},
	{"scalar string", `"abc"`, productKeys, []string{"E L1@0 record is a string, not an object", "EOF"}},
	{"scalar number", " 123 \n", productKeys, []string{"E L1@1 record is a number, not an object", "EOF"}},
	{"scalar then garbage", `123 4`, productKeys, []string{
		"E L1@0 record is a number, not an object",
		"SYNTAX line 1, column 5 (byte 4): invalid character '4' after top-level value"}},
	{"empty", ``, productKeys, []string{"SYNTAX line 1, column 1 (byte 0): unexpected end of input: no JSON value"}},
	{"white space only", " \r\n\t ", productKeys, []string{"SYNTAX line 2, column 3 (byte 5): unexpected end of input: no JSON value"}},
	{"BOM", "\xEF\xBB\xBF[{\"a\":1}]", productKeys, []string{`L1@4 {"a":1} a=1`, "EOF"}},
	{"BOM only", "\xEF\xBB\xBF", productKeys, []string{"SYNTAX line 1, column 1 (byte 3): unexpected end of input: no JSON value"}},
	{"BOM then error", "\xEF\xBB\xBF[x]", productKeys, []string{"SYNTAX line 1, column 2 (byte 4): invalid character 'x' looking for beginning of value"}},
	{"half BOM", "\xEF\xBB{}", productKeys, []string{"SYNTAX line 1, column 1 (byte 0): invalid character byte 0xEF (not UTF-8) looking for beginning of value"}},
	{"trailing garbage", `[{"a":1}] x`, productKeys, []string{
		`L1@1 {"a":1} a=1`,
		"SYNTAX line 1, column 11 (byte 10): invalid character 'x' after top-level value"}},
	{"two documents", `{"a":1}{"a":2}`, productKeys, []string{
		`L1@0 {"a":1} a=1`,
		"SYNTAX line 1, column 8 (byte 7): invalid character '{' after top-level value"}},
	{"missing colon", "[\n {\"a\" 1}]", productKeys, []string{"SYNTAX line 2, column 7 (byte 8): invalid character '1' after object key"}},
	{"trailing comma in array", `[{"a":1},]`, productKeys, []string{
		`L1@1 {"a":1} a=1`,
		"SYNTAX line 1, column 10 (byte 9): invalid character ']' looking for beginning of value"}},
	{"trailing comma in object", `[{"a":1,}]`, productKeys, []string{"SYNTAX line 1, column 9 (byte 8): invalid character '}' looking for beginning of object key string"}},
	{"missing comma", `[{"a":1} {"a":2}]`, productKeys, []string{
		`L1@1 {"a":1} a=1`,
		"SYNTAX line 1, column 10 (byte 9): invalid character '{' after array element"}},
	{"unclosed string", `[{"a":"xy`, productKeys, []string{"SYNTAX line 1, column 10 (byte 9): unexpected end of input in string literal"}},
	{"unclosed array", "[{\"a\":1}\n", productKeys, []string{`L1@1 {"a":1} a=1`, "SYNTAX line 2, column 1 (byte 9): unexpected end of input in array"}},
	{"unclosed wrapper", `{"r":[{"a":1}]`, productKeys, []string{`L1@6 {"a":1} a=1`, "SYNTAX line 1, column 15 (byte 14): unexpected end of input in object"}},
	{"bad member after wrapper array", `{"r":[{"a":1}],"x":tru}`, productKeys, []string{`L1@6 {"a":1} a=1`, "SYNTAX line 1, column 23 (byte 22): invalid character '}' in literal true (expecting 'e')"}},
	{"bad number", `[{"a":01}]`, productKeys, []string{"SYNTAX line 1, column 8 (byte 7): invalid character '1' after object key:value pair"}},
	{"bad fraction", `[{"a":1.}]`, productKeys, []string{"SYNTAX line 1, column 9 (byte 8): invalid character '}' after decimal point in numeric literal"}},
	{"bad exponent", `[{"a":1e+}]`, productKeys, []string{"SYNTAX line 1, column 10 (byte 9): invalid character '}' in exponent of numeric literal"}},
	{"bad escape", `[{"a":"\x"}]`, productKeys, []string{"SYNTAX line 1, column 9 (byte 8): invalid character 'x' in string escape code"}},
	{"bad unicode escape", `[{"a":"\u12G4"}]`, productKeys, []string{`SYNTAX line 1, column 12 (byte 11): invalid character 'G' in \u hexadecimal character escape`}},
	{"control character in string", "[{\"a\":\"x\ty\"}]", productKeys, []string{`SYNTAX line 1, column 9 (byte 8): invalid character '\t' in string literal`}},
	{"invalid UTF-8 in string", "[{\"a\":\"x\xffy\"}]", productKeys, []string{"SYNTAX line 1, column 9 (byte 8): invalid UTF-8 byte 0xFF in string literal"}},
	{"surrogate in UTF-8", "[{\"a\":\"\xed\xa0\x80\"}]", productKeys, []string{"SYNTAX line 1, column 8 (byte 7): invalid UTF-8 byte 0xED in string literal"}},
	{"invalid UTF-8 in key", "{\"\xc3\":1}", productKeys, []string{"SYNTAX line 1, column 3 (byte 2): invalid UTF-8 byte 0xC3 in string literal"}},
	{"non-ASCII outside strings", "[é]", productKeys, []string{"SYNTAX line 1, column 2 (byte 1): invalid character 'é' looking for beginning of value"}},
	{"comment", "[{\"a\":1} // x\n]", productKeys, []string{`L1@1 {"a":1} a=1`, "SYNTAX line 1, column 10 (byte 9): invalid character '/' after array element"}},
	{"unicode", `[{"ключ":"значение","\u00e9\ud83d\ude00\n\"":"\u00e9","\ud800":"lone"}]`, productKeys, []string{
		"L1@1 {\"ключ\":\"значение\",\"\\u00e9\\ud83d\\ude00\\n\\\"\":\"\\u00e9\",\"\\ud800\":\"lone\"} ключ=\"значение\" é😀\n\"=\"\\u00e9\" \uFFFD=\"lone\"",
		"EOF"}},
	{"duplicate keys in order", `[{"a":1,"b":2,"a":3}]`, productKeys, []string{`L1@1 {"a":1,"b":2,"a":3} a=1 b=2 a=3`, "EOF"}},
	{"strings keep their bytes", `[{ "s" : " a\tb \" \\ \/ \u0041 ", "e" : "" }]`, productKeys, []string{
		`L1@1 {"s":" a\tb \" \\ \/ \u0041 ","e":""} s=" a\tb \" \\ \/ \u0041 " e=""`,
		"EOF"}},
	{"numbers", `[{"a":-0,"b":0.5,"c":1E+2,"d":-12.25e-3,"e":[0,1e5,-1]}]`, productKeys, []string{
		`L1@1 {"a":-0,"b":0.5,"c":1E+2,"d":-12.25e-3,"e":[0,1e5,-1]} a=-0 b=0.5 c=1E+2 d=-12.25e-3 e=[0,1e5,-1]`,
		"EOF"}},
	{"CRLF lines", "[\r\n{\"a\":1},\r\n{\"a\":2}\r\n]\r\n", productKeys, []string{
		`L2@3 {"a":1} a=1`,
		`L3@13 {"a":2} a=2`,
		"EOF"}},
	{"record too long", `[{"a":"123456789"},{"a":"12345678901234567890"}]`, ReaderOptions{MaxRecordBytes: 20}, []string{
		`L1@1 {"a":"123456789"} a="123456789"`,
		"SYNTAX line 1, column 20 (byte 19): record longer than 20 bytes (MaxRecordBytes): the rest of the document cannot be read"}},
	{"record of the largest size", `[{"a":"12345678901234"}, 1]`, ReaderOptions{MaxRecordBytes: 22}, []string{
		`L1@1 {"a":"12345678901234"} a="12345678901234"`,
		"E L1@25 record is a number, not an object",
		"EOF"}},
	{"wrapper prefix too long", `{"m":"12345678901234567890","r":[{}]}`, ReaderOptions{MaxRecordBytes: 20}, []string{
		"SYNTAX line 1, column 1 (byte 0): top-level object longer than 20 bytes (MaxRecordBytes) before any array of records: the rest of the document cannot be read"}},
	{"wrapper suffix too long", `{"r":[{}],"m":"12345678901234567890"}`, ReaderOptions{MaxRecordBytes: 20}, []string{
		"L1@6 {}",
		"SYNTAX line 1, column 10 (byte 9): member of the wrapper object longer than 20 bytes (MaxRecordBytes): the rest of the document cannot be read"}},
}

func TestJSONReader(t *testing.T) {
	t.Parallel()
	for _, tt := range jsonReaderCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkEvents(t, tt.input, tt.opts, false, tt.want)
		})
	}
}

func TestJSONReaderDepth(t *testing.T) {
	t.Parallel()
	if !strings.Contains(jsonscan.MsgTooDeep, fmt.Sprint(jsonscan.MaxDepth)) {
		t.Fatalf("%q does not name the limit %d", jsonscan.MsgTooDeep, jsonscan.MaxDepth)
	}
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tooDeep := "SYNTAX line 1, column 1001 (byte 1000): " + jsonscan.MsgTooDeep
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"1000 arrays", nest(1000), []string{"E L1@1 record is an array, not an object", "EOF"}},
		{"1001 arrays", nest(1001), []string{tooDeep}},
		{"100000 open arrays", strings.Repeat("[", 100000), []string{tooDeep}},
		{"deep in a record", "[" + strings.Repeat(`{"a":`, 999) + "1" + strings.Repeat("}", 999) + "]", []string{
			"L1@1 " + strings.Repeat(`{"a":`, 999) + "1" + strings.Repeat("}", 999) + " a=" + strings.Repeat(`{"a":`, 998) + "1" + strings.Repeat("}", 998),
			"EOF"}},
		{"too deep in a record", "[" + strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000) + "]",
			[]string{"SYNTAX line 1, column 4997 (byte 4996): " + jsonscan.MsgTooDeep}},
		{"deep in a wrapper", `{"r":[{"a":` + nest(997) + `}]}`, []string{"L1@6 {\"a\":" + nest(997) + "} a=" + nest(997), "EOF"}},
		{"too deep in a wrapper", `{"r":[{"a":` + nest(998) + `}]}`, []string{"SYNTAX line 1, column 1009 (byte 1008): " + jsonscan.MsgTooDeep}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := jsonEvents(t, NewJSONReader(strings.NewReader(tt.input), ReaderOptions{}))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%.300s\nwant\n%.300s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// ndjsonReaderCases are the unit cases of the NDJSON reader; they seed
// FuzzNDJSONReader too.
var ndjsonReaderCases = []jsonReaderCase{
	{"lines", "{\"sku\":\"a\"}\n{\"sku\":\"b\",\"n\":1}\n", productKeys, []string{
		`L1@0 {"sku":"a"} sku="a"`,
		`L2@12 {"sku":"b","n":1} sku="b" n=1`,
		"EOF"}},
	{"no final newline", "{\"a\":1}\n{\"a\":2}", productKeys, []string{`L1@0 {"a":1} a=1`, `L2@8 {"a":2} a=2`, "EOF"}},
	{"CRLF", "{\"a\":1}\r\n{\"a\":2}\r\n", productKeys, []string{`L1@0 {"a":1} a=1`, `L2@9 {"a":2} a=2`, "EOF"}},
	{"blank lines", "\n  \r\n{\"a\":1}\n\t\n\r\n \n{\"a\":2}\n\n", productKeys, []string{`L3@5 {"a":1} a=1`, `L7@19 {"a":2} a=2`, "EOF"}},
	{"empty", "", productKeys, []string{"EOF"}},
	{"white space", " \n\r\n", productKeys, []string{"EOF"}},
	{"BOM", "\xEF\xBB\xBF{\"a\":1}\n", productKeys, []string{`L1@3 {"a":1} a=1`, "EOF"}},
	{"white space around", " \t{ \"a\" : [ 1 , 2 ] }  \r\n", productKeys, []string{`L1@2 {"a":[1,2]} a=[1,2]`, "EOF"}},
	{"bad lines go on", "{\"a\":1}\n{\"a\":\n[1]\n\"x\"\n{\"a\" 2}\n{\"a\":2} {\"a\":3}\n{\"a\":tru}\r\n{\"b\":\"\xff\"}\n{\"b\":2}", productKeys, []string{
		`L1@0 {"a":1} a=1`,
		"E L2@8 invalid JSON at column 6: unexpected end of line in value",
		"E L3@14 record is an array, not an object",
		"E L4@18 record is a string, not an object",
		"E L5@22 invalid JSON at column 6: invalid character '2' after object key",
		"E L6@30 invalid JSON at column 9: invalid character '{' after object",
		"E L7@46 invalid JSON at column 9: invalid character '}' in literal true (expecting 'e')",
		"E L8@57 invalid JSON at column 7: invalid UTF-8 byte 0xFF in string literal",
		`L9@67 {"b":2} b=2`,
		"EOF"}},
	{"value then garbage", "1 2\n", productKeys, []string{"E L1@0 invalid JSON at column 3: invalid character '2' after top-level value", "EOF"}},
	{"unclosed string", "{\"a\":\"x\n{\"a\":1}\n", productKeys, []string{
		"E L1@0 invalid JSON at column 8: unexpected end of line in string literal",
		`L2@8 {"a":1} a=1`,
		"EOF"}},
	{"lone CR is white space", "{\"a\":1}\r{\"a\":2}\n", productKeys, []string{"E L1@0 invalid JSON at column 9: invalid character '{' after object", "EOF"}},
	{"line too long", "{\"a\":\"123456789\"}\n{\"a\":\"1234567890123456789012345\"}\n{\"b\":1}\n{\"a\":\"12345678901234567890123456789012345678901234567890\"}", ReaderOptions{MaxRecordBytes: 20}, []string{
		`L1@0 {"a":"123456789"} a="123456789"`,
		"E L2@18 line longer than 20 bytes (MaxRecordBytes)",
		`L3@52 {"b":1} b=1`,
		"E L4@60 line longer than 20 bytes (MaxRecordBytes)",
		"EOF"}},
	{"line of the largest size", "{\"a\":\"12345678901\"}\r\n1\n", ReaderOptions{MaxRecordBytes: 20}, []string{
		`L1@0 {"a":"12345678901"} a="12345678901"`,
		"E L2@21 record is a number, not an object",
		"EOF"}},
	{"deep line", strings.Repeat("[", 1001) + "\n{}", productKeys, []string{"E L1@0 invalid JSON at column 1001: " + jsonscan.MsgTooDeep, "L2@1002 {}", "EOF"}},
	{"unicode names", `{"\u0073ku":1,"\ud83d\ude00":2}`, productKeys, []string{`L1@0 {"\u0073ku":1,"\ud83d\ude00":2} sku=1 😀=2`, "EOF"}},
}

func TestNDJSONReader(t *testing.T) {
	t.Parallel()
	for _, tt := range ndjsonReaderCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkEvents(t, tt.input, tt.opts, true, tt.want)
		})
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestJSONReadersIOError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name   string
		data   string
		ndjson bool
		want   int // records before the error
	}{
		{"json in a record", `[{"a":1},{"a":`, false, 1},
		{"json between records", `[{"a":1},`, false, 1},
		{"json before anything", ``, false, 0},
		{"json after the end", `[{"a":1}]`, false, 1},
		{"json in a number", `123`, false, 0},
		{"ndjson in a line", "{\"a\":1}\n{\"a\"", true, 1},
		{"ndjson after the end", "{\"a\":1}\n", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r Reader
			if tt.ndjson {
				r = NewNDJSONReader(&failingReader{tt.data, boom}, ReaderOptions{})
			} else {
				r = NewJSONReader(&failingReader{tt.data, boom}, ReaderOptions{})
			}
			n := 0
			for {
				_, err := r.Next()
				if err == nil {
					n++
					continue
				}
				if !errors.Is(err, boom) {
					t.Fatalf("got %v, want the read error", err)
				}
				if _, err2 := r.Next(); err2 != err {
					t.Fatalf("error does not stick: %v then %v", err, err2)
				}
				break
			}
			if n != tt.want {
				t.Fatalf("got %d records before the error, want %d", n, tt.want)
			}
		})
	}
}

// TestJSONReaderLongRecords reads records that are larger than the initial
// buffer, so the buffer grows and records straddle refills.
func TestJSONReaderLongRecords(t *testing.T) {
	t.Parallel()
	var in, nd bytes.Buffer
	var want []string
	in.WriteString("[")
	for i := range 50 {
		desc := strings.Repeat(fmt.Sprintf("%d é ", i), i*40)
		rec := fmt.Sprintf(`{"sku":"s%d","description":%q}`, i, desc)
		if i > 0 {
			in.WriteString(",\n")
		}
		in.WriteString(rec)
		nd.WriteString(rec + "\n")
		want = append(want, rec)
	}
	in.WriteString("]")
	for name, r := range map[string]Reader{
		"json":   newJSONReader(iotest.HalfReader(&in), ReaderOptions{MaxRecordBytes: 16000}, 64),
		"ndjson": newNDJSONReader(iotest.HalfReader(&nd), ReaderOptions{MaxRecordBytes: 16000}, 64),
	} {
		for i := 0; ; i++ {
			rec, err := r.Next()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("%s: %d records, want %d", name, i, len(want))
				}
				break
			}
			if err != nil {
				t.Fatalf("%s: record %d: %v", name, i, err)
			}
			if string(rec.JSON) != want[i] || rec.Line != int64(i+1) {
				t.Fatalf("%s: record %d: line %d %.80s", name, i, rec.Line, rec.JSON)
			}
		}
	}
}

// jsonTestSuite returns the folder of JSONTestSuite's test_parsing files.
func jsonTestSuite(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// Look for ../shared/testdata/external from the module root upwards.
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "..", "shared", "testdata", "external", "JSONTestSuite", "test_parsing")
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("JSONTestSuite not found at %s: %v", p, err)
			}
			return p
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

func TestJSONTestSuite(t *testing.T) {
	t.Parallel()
	dir := jsonTestSuite(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 300 {
		t.Fatalf("only %d files in %s", len(files), dir)
	}
	for _, f := range files {
		name := filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, variant := range []string{"whole", "onebyte"} {
			var r Reader
			if variant == "whole" {
				r = NewJSONReader(bytes.NewReader(data), productKeys)
			} else {
				r = newJSONReader(iotest.OneByteReader(bytes.NewReader(data)), productKeys, 1)
			}
			var syntax *SyntaxError
			var recs, recErrs int
			for {
				rec, err := r.Next()
				var re *RecordError
				if err == nil {
					recs++
					if !json.Valid(rec.JSON) {
						t.Errorf("%s: record is not valid JSON: %q", name, rec.JSON)
					}
					continue
				}
				if errors.As(err, &re) {
					recErrs++
					continue
				}
				if err != io.EOF && !errors.As(err, &syntax) {
					t.Errorf("%s: %v", name, err)
				}
				break
			}
			switch name[0] {
			case 'y':
				if syntax != nil {
					t.Errorf("%s (%s): %v", name, variant, syntax)
				}
			case 'n':
				if syntax == nil {
					t.Errorf("%s (%s): no syntax error", name, variant)
				} else if syntax.Line < 1 || syntax.Column < 1 || syntax.Offset < 0 || syntax.Offset > int64(len(data)) ||
					!strings.Contains(syntax.Error(), fmt.Sprintf("line %d, column %d (byte %d)", syntax.Line, syntax.Column, syntax.Offset)) {
					t.Errorf("%s (%s): bad position in %v", name, variant, syntax)
				}
			}
			// The NDJSON reader reads every file to its end: a line it
			// cannot use is a *RecordError, never the end of the input.
			nd := NewNDJSONReader(bytes.NewReader(data), productKeys)
			if variant == "onebyte" {
				nd = newNDJSONReader(iotest.OneByteReader(bytes.NewReader(data)), productKeys, 1)
			}
			for {
				_, err := nd.Next()
				var re *RecordError
				if err == nil || errors.As(err, &re) {
					continue
				}
				if err != io.EOF {
					t.Errorf("%s (%s): NDJSON reader ended with %v", name, variant, err)
				}
				break
			}
			if testing.Verbose() && variant == "whole" && name[0] == 'i' {
				t.Logf("%s: %d records, %d record errors, syntax error: %v", name, recs, recErrs, syntax)
			}
		}
	}
}

// TestJSONReadersAllocs checks that reading a record allocates nothing once
// the reader's buffers have grown.
func TestJSONReadersAllocs(t *testing.T) {
	recs := jsonBenchProducts(3000)
	array := append(append([]byte("[\n"), bytes.Join(recs, []byte(",\n"))...), "\n]"...)
	ndjson := bytes.Join(recs, []byte("\n"))
	spaced := bytes.ReplaceAll(array, []byte(`":"`), []byte(`" : "`))
	escaped := bytes.ReplaceAll(array, []byte(`"sku"`), []byte(`"\u0073ku"`))
	for name, r := range map[string]Reader{
		"json":         NewJSONReader(bytes.NewReader(array), productKeys),
		"json spaced":  NewJSONReader(bytes.NewReader(spaced), productKeys),
		"json escaped": NewJSONReader(bytes.NewReader(escaped), productKeys),
		"ndjson":       NewNDJSONReader(bytes.NewReader(ndjson), productKeys),
	} {
		for range 100 {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(1000, func() {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %.2f allocations per record", name, n)
		}
	}
}
