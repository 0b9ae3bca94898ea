package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"skuflow/schemas"
)

// render writes what Object returned as one line: the compact object and
// its members, or the error.
func render(js []byte, fields []schemas.Field, err error) string {
	if err != nil {
		return "ERR " + err.Error()
	}
	var b strings.Builder
	b.Write(js)
	for _, f := range fields {
		fmt.Fprintf(&b, " %s=%s", f.Name, f.Value)
	}
	return b.String()
}

func TestObject(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"compact", `{"sku":"a","n":1}`, `{"sku":"a","n":1} sku="a" n=1`},
		{"white space around and inside", " \t{ \"sku\" : \"a b\" ,\n\"x\": [1, {\"y\": null}] }\r\n",
			`{"sku":"a b","x":[1,{"y":null}]} sku="a b" x=[1,{"y":null}]`},
		{"empty object", `{}`, `{}`},
		{"escaped name", `{"\u0073ku":"a","a\"b":true}`, `{"\u0073ku":"a","a\"b":true} sku="a" a"b=true`},
		{"escaped value kept as text", `{"d":"line\nnext \u00e9"}`, `{"d":"line\nnext \u00e9"} d="line\nnext \u00e9"`},
		{"duplicate member twice", `{"a":1,"a":2}`, `{"a":1,"a":2} a=1 a=2`},
		{"nested values", `{"o":{"k":[true,false,null,-1.5e3]}}`, `{"o":{"k":[true,false,null,-1.5e3]}} o={"k":[true,false,null,-1.5e3]}`},
		{"not JSON", `this is not json`, `ERR invalid character 'h' in literal true (expecting 'r') (at byte 1)`},
		{"empty", ``, `ERR unexpected end of input in value (at byte 0)`},
		{"blank", "  \n", `ERR unexpected end of input in value (at byte 3)`},
		{"null", `null`, `ERR value is null, not a JSON object`},
		{"array", ` [{"a":1}]`, `ERR value is an array, not a JSON object`},
		{"string", `"x"`, `ERR value is a string, not a JSON object`},
		{"number", `12`, `ERR value is a number, not a JSON object`},
		{"two objects", `{"a":1} {"b":2}`, `ERR invalid character '{' after object (at byte 8)`},
		{"trailing comma", `{"a":1,}`, `ERR invalid character '}' looking for beginning of object key string (at byte 7)`},
		{"cut", `{"a":"x`, `ERR unexpected end of input in string literal (at byte 7)`},
		{"bad number", `{"a":01}`, `ERR invalid character '1' after object key:value pair (at byte 6)`},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", `ERR invalid UTF-8 byte 0xFF in string literal (at byte 6)`},
		{"control character", "{\"a\":\"\x01\"}", `ERR invalid character '\x01' in string literal (at byte 6)`},
		{"bad escape", `{"a":"\x"}`, `ERR invalid character 'x' in string escape code (at byte 7)`},
		{"too deep", `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`,
			fmt.Sprintf("ERR %s (at byte %d)", MsgTooDeep, 5+MaxDepth-1)},
	}
	var s Scanner
	var fields []schemas.Field
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, f, err := s.Object([]byte(tt.in), fields)
			if got := render(js, f, err); got != tt.want {
				t.Errorf("Object(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			fields = f
		})
	}
}

func TestObjectErrorTypes(t *testing.T) {
	var s Scanner
	_, _, err := s.Object([]byte(`[1] x`), nil)
	var syntax *SyntaxError
	if !errors.As(err, &syntax) || syntax.Offset != 4 {
		t.Errorf("trailing data after a non-object: %#v", err)
	}
	_, _, err = s.Object([]byte("  true"), nil)
	var notObj *NotObjectError
	if !errors.As(err, &notObj) || notObj.Kind != "a boolean" || notObj.Offset != 2 {
		t.Errorf("a boolean: %#v", err)
	}
}

// Object allocates nothing once its buffers have grown, whatever the input
// holds: white space to compact, escaped names, nesting.
func TestObjectAllocs(t *testing.T) {
	in := []byte(`{ "\u0073ku": "a",  "name" : "b\n", "x": {"y": [1, 2, 3]} }`)
	var s Scanner
	fields := make([]schemas.Field, 0, 16)
	allocs := testing.AllocsPerRun(100, func() {
		if _, f, err := s.Object(in, fields); err != nil || len(f) != 3 {
			t.Fatal(err, f)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per object", allocs)
	}
}

// FuzzObject holds Object to encoding/json: the same inputs are valid, an
// object's members are the same names and values, in order, and the compact
// text is what json.Compact gives.
func FuzzObject(f *testing.F) {
	for _, s := range []string{
		`{"sku":"a","name":"b","description":"c"}`, ` { "a" : [1, 2.5e-3, {"b": null}] , "c":true } `,
		`{"\u0073ku":"\ud83d\ude00","x":"\ud800"}`, `{"a":1,"a":2}`, `[1]`, `"x"`, `nul`, `{"a":-0.0e+1}`,
		`{"a":01}`, "{\"a\":\"\t\"}", `{}`, ``, `{"a":{}}  x`,
	} {
		f.Add([]byte(s))
	}
	var s Scanner
	f.Fuzz(func(t *testing.T, data []byte) {
		js, fields, err := s.Object(data, nil)
		valid := json.Valid(data) && utf8.Valid(data)
		if nesting(data) > MaxDepth {
			return // encoding/json allows deeper nesting
		}
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		isObj := valid && len(trimmed) > 0 && trimmed[0] == '{'
		switch {
		case err == nil && !isObj:
			t.Fatalf("Object accepted %q, which encoding/json refuses or is not an object", data)
		case err != nil && isObj:
			t.Fatalf("Object refused the object %q: %v", data, err)
		case err != nil:
			var notObj *NotObjectError
			if errors.As(err, &notObj) != valid {
				t.Fatalf("%q: error %v, valid JSON %v", data, err, valid)
			}
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, data); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(js, want.Bytes()) {
			t.Fatalf("compact %q, want %q", js, want.Bytes())
		}
		// The members, in order, from encoding/json's tokenizer.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.Token() // {
		n := 0
		for ; dec.More(); n++ {
			tok, _ := dec.Token()
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			if n >= len(fields) {
				t.Fatalf("%q: only %d fields", data, len(fields))
			}
			var v bytes.Buffer
			json.Compact(&v, raw)
			if string(fields[n].Name) != tok.(string) || !bytes.Equal(fields[n].Value, v.Bytes()) {
				t.Fatalf("%q: field %d is %q=%q, want %q=%q", data, n, fields[n].Name, fields[n].Value, tok, v.Bytes())
			}
		}
		if n != len(fields) {
			t.Fatalf("%q: %d fields, encoding/json finds %d members", data, len(fields), n)
		}
	})
}

// nesting returns the deepest nesting of arrays and objects in data,
// counting brackets outside strings.
func nesting(data []byte) int {
	depth, deepest, inStr := 0, 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
