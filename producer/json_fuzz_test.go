package producer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"skuflow/internal/jsonscan"
)

// jsonFuzzSeeds adds the JSONTestSuite files and the unit cases to f.
func jsonFuzzSeeds(f *testing.F, cases []jsonReaderCase) {
	files, err := filepath.Glob(filepath.Join(jsonTestSuite(f), "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) <= 4096 {
			f.Add(data)
		}
	}
	for _, c := range cases {
		f.Add([]byte(c.input))
	}
}

// jsonFuzzRecord is what a reader returned for one record.
type jsonFuzzRecord struct {
	json   []byte
	fields [][2]string
}

// jsonFuzzRun reads r to its end and returns its records, how many record
// errors it gave, and how it ended.
func jsonFuzzRun(t *testing.T, r Reader) (recs []jsonFuzzRecord, recErrs int, end error) {
	t.Helper()
	for range 1 << 20 {
		rec, err := r.Next()
		if err == nil {
			fr := jsonFuzzRecord{json: bytes.Clone(rec.JSON)}
			for _, f := range rec.Fields {
				fr.fields = append(fr.fields, [2]string{string(f.Name), string(f.Value)})
			}
			recs = append(recs, fr)
			continue
		}
		var re *RecordError
		if errors.As(err, &re) {
			recErrs++
			continue
		}
		return recs, recErrs, err
	}
	t.Fatal("reader does not end")
	return
}

// jsonRefMembers decodes the object obj with encoding/json into its members:
// name and raw value, in order.
func jsonRefMembers(t *testing.T, obj []byte) (names []string, values []json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %q", obj)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		values = append(values, raw)
	}
	return names, values
}

// jsonRefRecords applies NewJSONReader's rules to the valid JSON document
// data with encoding/json: it returns the records, the number of values that
// are not objects, and whether a wrapper holds a second array of records.
func jsonRefRecords(t *testing.T, data []byte, keys []string) (recs []json.RawMessage, nonObjects int, second bool) {
	t.Helper()
	elements := func(raw []byte) []json.RawMessage {
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			t.Fatal(err)
		}
		return elems
	}
	split := func(elems []json.RawMessage) {
		for _, e := range elems {
			if e[0] == '{' {
				recs = append(recs, e)
			} else {
				nonObjects++
			}
		}
	}
	data = bytes.TrimSpace(data)
	switch data[0] {
	case '[':
		split(elements(data))
	case '{':
		names, values := jsonRefMembers(t, data)
		for _, name := range names {
			if slices.Contains(keys, name) {
				// A key field at the top level, wherever: one record.
				return append(recs, data), 0, false
			}
		}
		wrapper := false
		for _, v := range values {
			if v[0] == '[' {
				if elems := elements(v); len(elems) > 0 && elems[0][0] == '{' {
					if wrapper {
						return recs, nonObjects, true
					}
					wrapper = true
					split(elems)
				}
			}
		}
		if !wrapper {
			recs = append(recs, data)
		}
	default:
		nonObjects++
	}
	return recs, nonObjects, false
}

// checkRefRecord checks a record against encoding/json's reading of the
// element it came from.
func checkRefRecord(t *testing.T, got jsonFuzzRecord, elem []byte) {
	t.Helper()
	var want bytes.Buffer
	if err := json.Compact(&want, elem); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.json, want.Bytes()) {
		t.Fatalf("record JSON %q, want %q", got.json, want.Bytes())
	}
	names, values := jsonRefMembers(t, elem)
	if len(names) != len(got.fields) {
		t.Fatalf("record %q: %d fields, want %d", got.json, len(got.fields), len(names))
	}
	for i, f := range got.fields {
		var v bytes.Buffer
		if err := json.Compact(&v, values[i]); err != nil {
			t.Fatal(err)
		}
		if f[0] != names[i] || f[1] != v.String() {
			t.Fatalf("record %q: field %d is %q=%q, want %q=%q", got.json, i, f[0], f[1], names[i], v.String())
		}
	}
}

// FuzzJSONReader checks that the JSON reader never panics, reads the same
// whatever the sizes of reads, and agrees with encoding/json.
//
// The agreement holds for valid UTF-8 only: encoding/json accepts invalid
// UTF-8 in strings, the reader does not. It leaves out input nested deeper
// than jsonscan.MaxDepth (encoding/json allows 10000 levels) and a wrapper with a
// second array of records (valid JSON that the reader refuses on purpose;
// the reference model then expects that error). A leading byte order mark
// is skipped by the reader and refused by encoding/json, so it is cut off
// for the comparison.
func FuzzJSONReader(f *testing.F) {
	jsonFuzzSeeds(f, jsonReaderCases)
	// Objects with a key field before, between and after arrays of objects.
	f.Add([]byte(`{"bundle":[{"sku":"p1"},{"sku":"p2"}],"sku":"B1","name":"Bundle"}`))
	f.Add([]byte(`{"a":[{}],"b":[{"c":[{}]}],"\u0073ku":"k"}`))
	f.Add([]byte(`{"meta":{"sku":"m"},"r":[{"sku":"1"}],"x":[{"sku":"2"}],"sku":1}`))
	keys := []string{"sku"}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := ReaderOptions{KeyFields: keys}
		whole := jsonEvents(t, NewJSONReader(bytes.NewReader(data), opts))
		small := jsonEvents(t, newJSONReader(iotest.OneByteReader(bytes.NewReader(data)), opts, 1))
		if !slices.Equal(whole, small) {
			t.Fatalf("whole and one byte at a time differ:\n%q\n%q", whole, small)
		}

		recs, nonObjects, end := jsonFuzzRun(t, NewJSONReader(bytes.NewReader(data), opts))
		for _, r := range recs {
			if !json.Valid(r.json) || r.json[0] != '{' {
				t.Fatalf("record is not a JSON object: %q", r.json)
			}
		}
		var syntax *SyntaxError
		if end != io.EOF && !errors.As(end, &syntax) {
			t.Fatalf("reader ended with %v", end)
		}
		if !utf8.Valid(data) || (syntax != nil && syntax.Msg == jsonscan.MsgTooDeep) {
			return
		}
		doc := bytes.TrimPrefix(data, []byte(jsonBOM))
		valid := json.Valid(doc)
		if !valid {
			if syntax == nil {
				t.Fatalf("encoding/json rejects the input, the reader does not")
			}
			return
		}
		want, wantNonObjects, second := jsonRefRecords(t, doc, keys)
		switch {
		case second:
			if syntax == nil || !strings.Contains(syntax.Msg, "second array of records") {
				t.Fatalf("want the second records array refused, got %v", end)
			}
			recs = recs[:min(len(recs), len(want))]
		case syntax != nil:
			t.Fatalf("encoding/json accepts the input, the reader says %v", syntax)
		case nonObjects != wantNonObjects:
			t.Fatalf("%d record errors, want %d", nonObjects, wantNonObjects)
		}
		if len(recs) != len(want) {
			t.Fatalf("%d records, want %d", len(recs), len(want))
		}
		for i, r := range recs {
			checkRefRecord(t, r, want[i])
		}
	})
}

// FuzzNDJSONReader checks that the NDJSON reader never panics, reads the
// same whatever the sizes of reads, reads each line as if it were alone, and
// agrees with encoding/json on each line.
func FuzzNDJSONReader(f *testing.F) {
	jsonFuzzSeeds(f, ndjsonReaderCases)
	f.Add([]byte("{\"a\":1}\n{\"b\":[1,2,{\"c\":null}]}\r\n\n  \n[1]\nnull\n{\"sku\":\"0123456789012345678901234567890123456789\"}\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A small limit, so that long lines are common.
		opts := ReaderOptions{MaxRecordBytes: 40}
		whole := jsonEvents(t, NewNDJSONReader(bytes.NewReader(data), opts))
		small := jsonEvents(t, newNDJSONReader(iotest.OneByteReader(bytes.NewReader(data)), opts, 1))
		if !slices.Equal(whole, small) {
			t.Fatalf("whole and one byte at a time differ:\n%q\n%q", whole, small)
		}
		if whole[len(whole)-1] != "EOF" {
			t.Fatalf("reader ended with %s", whole[len(whole)-1])
		}

		// Each line alone, with its events moved to its place.
		var want []string
		body := bytes.TrimPrefix(data, []byte(jsonBOM))
		off := len(data) - len(body)
		for n := 1; len(body) > 0; n++ {
			line := body
			if k := bytes.IndexByte(body, '\n'); k >= 0 {
				line = body[:k+1]
			}
			body = body[len(line):]
			alone := newNDJSONReader(bytes.NewReader(line), opts, jsonBufSize)
			// A byte order mark is skipped at the start of the input only:
			// the first line, read alone after its mark was trimmed, must
			// not skip a second one.
			alone.started = n > 1 || off > 0
			for _, e := range jsonEvents(t, alone) {
				if e == "EOF" {
					continue
				}
				isErr := strings.HasPrefix(e, "E ")
				e = strings.TrimPrefix(e, "E ")
				pos, rest, _ := strings.Cut(e, " ")
				var l, o int
				if _, err := fmt.Sscanf(pos, "L%d@%d", &l, &o); err != nil || l != 1 {
					t.Fatalf("line %d alone gave %q", n, e)
				}
				e = fmt.Sprintf("L%d@%d %s", n, off+o, rest)
				if isErr {
					e = "E " + e
				}
				want = append(want, e)
			}
			off += len(line)
			checkNDJSONLine(t, bytes.TrimSuffix(line, []byte{'\n'}), opts)
		}
		want = append(want, "EOF")
		if !slices.Equal(whole, want) {
			t.Fatalf("reading all lines and each line alone differ:\n%q\n%q", whole, want)
		}
	})
}

// checkNDJSONLine checks the reading of one line against encoding/json.
func checkNDJSONLine(t *testing.T, line []byte, opts ReaderOptions) {
	t.Helper()
	if len(line) > opts.MaxRecordBytes || !utf8.Valid(line) {
		return
	}
	nr := newNDJSONReader(bytes.NewReader(line), opts, jsonBufSize)
	nr.started = true
	recs, recErrs, end := jsonFuzzRun(t, nr)
	if end != io.EOF {
		t.Fatalf("line %q: reader ended with %v", line, end)
	}
	v := bytes.Trim(line, " \t\r\n")
	switch {
	case len(v) == 0:
		if len(recs)+recErrs != 0 {
			t.Fatalf("blank line %q gave a record or an error", line)
		}
	case json.Valid(line) && v[0] == '{':
		if len(recs) == 1 {
			checkRefRecord(t, recs[0], v)
		} else if recErrs != 1 || strings.Count(string(v), "{")+strings.Count(string(v), "[") <= jsonscan.MaxDepth {
			t.Fatalf("line %q: no record", line)
		}
	default:
		if len(recs) != 0 || recErrs != 1 {
			t.Fatalf("line %q: %d records, %d errors; want one error", line, len(recs), recErrs)
		}
	}
}
