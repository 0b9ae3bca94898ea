package producer

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"skuflow/internal/clickhouse"
	"skuflow/jobs"
)

func TestCSVRowOf(t *testing.T) {
	names := []string{"sku", "name"}
	for _, c := range []struct{ value, want, err string }{
		{`{"sku":"a","name":"Anna"}`, `"a","Anna"`, ""},
		{`{"sku":"a, b","name":"say \"hi\"\r\nthere"}`, "\"a, b\",\"say \"\"hi\"\"\r\nthere\"", ""},
		{`{"sku":"","name":""}`, `"",""`, ""},
		{`{"name":"x","sku":"a"}`, "", `member 1 is "name"`},
		{`{"sku":"a"}`, "", "fewer members"},
		{`{"sku":"a","name":"b","extra":"c"}`, "", `member 3 is "extra"`},
		{`{"sku":1,"name":"b"}`, "", "not a string"},
		{`[1]`, "", "not a JSON object"},
		{`{"sku":"a","name":"b"} x`, "", "after the object"},
	} {
		got, err := CSVRowOf(nil, names, []byte(c.value))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %q, %v; want error %q", c.value, got, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %q, %v; want %q", c.value, got, err, c.want)
		}
	}
}

// FuzzCSVRowOf: a row CSVRowOf writes reads back through CSVReader as the
// record it was made of, member for member.
func FuzzCSVRowOf(f *testing.F) {
	f.Add("a", "b", "c")
	f.Add("a,\"b\"", "line\nbreak\r\n", "")
	f.Add("", "", "\r")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		names := []string{"x", "y", "z"}
		value, _ := json.Marshal(map[string]string{"x": a, "y": b, "z": c}) // keys sorted: x, y, z
		row, err := CSVRowOf(nil, names, value)
		if err != nil {
			t.Fatalf("%s: %v", value, err)
		}
		r, err := NewCSVReader(strings.NewReader("x,y,z\n"+string(row)+"\n"), ReaderOptions{MaxRecordBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.Next()
		if err != nil {
			t.Fatalf("row %q of %s: %v", row, value, err)
		}
		var got, want map[string]string
		_ = json.Unmarshal(rec.JSON, &got)
		_ = json.Unmarshal(value, &want)
		if len(got) != 3 || got["x"] != want["x"] || got["y"] != want["y"] || got["z"] != want["z"] {
			t.Fatalf("row %q reads as %s, was %s", row, rec.JSON, value)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("row %q: more than one record: %v", row, err)
		}
	})
}

// RawWriter writes each kind of row as its job's format has it, names
// what it cannot write, writes a repeated row once, and maps the lines it
// wrote back to the records' places.
func TestRawWriter(t *testing.T) {
	row := func(line, offset int64, stage, topic, raw string, size int64) clickhouse.ErrorRow {
		return clickhouse.ErrorRow{Source: "in", Line: line, Offset: offset, Stage: stage, Topic: topic, Raw: []byte(raw), Size: size}
	}
	big := strings.Repeat("y", clickhouse.MaxRawBytes)
	t.Run("csv", func(t *testing.T) {
		var out bytes.Buffer
		rw, err := NewRawWriter(&out, &jobs.Job{ID: "j", Format: "csv", CSVHeader: "sku,name"}, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []clickhouse.ErrorRow{
			row(2, 9, "decode", "", "a,b,c", 5),
			row(3, 15, "validate", "", "\"\",\"x\ny\"", 8),             // a row as read
			row(5, 30, "validate", "", `{"sku":"","name":"old"}`, 0),   // an earlier release's JSON
			row(6, 7, "insert", "items", `{"sku":"p","name":"q"}`, 22), // the processor's
			row(6, 7, "insert", "items", `{"sku":"p","name":"q"}`, 22), // the same, set aside twice
			row(7, 40, "decode", "", big[:4096], 50000),                // cut by the reader
			row(8, 50, "insert", "items", `{"other":"x"}`, 13),         // not of the header
			row(9, 60, "validate", "", "c,d\r", 4),                     // ends in a CR that is data
		} {
			if err := rw.Write(e); err != nil {
				t.Fatal(err)
			}
		}
		rw.Flush()
		want := "sku,name\na,b,c\n\"\",\"x\ny\"\n\"\",\"old\"\n\"p\",\"q\"\nc,d\r\r\n"
		if out.String() != want || rw.Written != 5 || len(rw.Unfit) != 2 {
			t.Fatalf("wrote %q (%d), unfit %v; want %q", out.String(), rw.Written, rw.Unfit, want)
		}
		if u := rw.Unfit[0].String(); !strings.Contains(u, "in:7 (decode): only the first 4096 of its 50000 bytes") {
			t.Errorf("unfit: %s", u)
		}
		if u := rw.Unfit[1].String(); !strings.Contains(u, `member 1 is "other"`) {
			t.Errorf("unfit: %s", u)
		}
		// Lines 2, 3 (two lines), 5, 6, 7 of the output.
		for _, c := range [][4]int64{{2, 0, 2, 9}, {3, 0, 3, 15}, {5, 0, 5, 30}, {6, 123, 6, 123}, {7, 0, 9, 60}, {4, 99, 4, 99}} {
			if l, o := rw.Place(c[0], c[1]); l != c[2] || o != c[3] {
				t.Errorf("Place(%d, %d) = %d, %d; want %d, %d", c[0], c[1], l, o, c[2], c[3])
			}
		}
		// Read back, the output is the records it holds.
		r, err := NewCSVReader(strings.NewReader(out.String()), ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			n++
		}
		if n != 5 {
			t.Errorf("read back %d records, want 5", n)
		}
	})
	t.Run("ndjson", func(t *testing.T) {
		var out bytes.Buffer
		rw, _ := NewRawWriter(&out, &jobs.Job{ID: "j", Format: "json"}, true)
		for _, e := range []clickhouse.ErrorRow{
			row(1, 0, "validate", "", "{\n  \"sku\": \"\"\n}", 0),
			row(2, 5, "decode", "", `{"sku":`, 0),
			row(3, 9, "decode", "", "{\"sku\":\n", 0),
			row(4, 0, "key", "p", `{"sku":"a"}`, 0), // identified by place: the processor's cannot
			row(5, 0, "validate", "", big, 0),       // an earlier release's, at the limit
		} {
			rw.Write(e)
		}
		rw.Flush()
		if want := "{\"sku\":\"\"}\n{\"sku\":\n"; out.String() != want || len(rw.Unfit) != 3 {
			t.Fatalf("wrote %q, unfit %v; want %q", out.String(), rw.Unfit, want)
		}
	})
	if _, err := NewRawWriter(io.Discard, &jobs.Job{ID: "old", Format: "csv"}, false); err == nil || !strings.Contains(err.Error(), "header line was not kept") {
		t.Errorf("a CSV job without its header: %v", err)
	}
}

// RawTruncated tells a cut raw by its size, and guesses for rows of
// earlier releases, which have none.
func TestRawTruncated(t *testing.T) {
	for _, c := range []struct {
		e    clickhouse.ErrorRow
		want bool
	}{
		{clickhouse.ErrorRow{Raw: []byte("abc"), Size: 3}, false},
		{clickhouse.ErrorRow{Raw: []byte("abc"), Size: 4}, true},
		{clickhouse.ErrorRow{Raw: []byte("abc")}, false},
		{clickhouse.ErrorRow{Raw: make([]byte, clickhouse.MaxRawBytes)}, true},
		{clickhouse.ErrorRow{Raw: []byte("abc"), Stage: "decode", Reason: "row is longer than 10 bytes (MaxRecordBytes): skipped to its end"}, true},
	} {
		if got := clickhouse.RawTruncated(c.e); got != c.want {
			t.Errorf("%+.40v: %v, want %v", c.e, got, c.want)
		}
	}
}

// CSVReader keeps what a re-drive writes back: the header line as read,
// each row's bytes, and an oversized row's full size.
func TestCSVReaderKeepsRows(t *testing.T) {
	long := "2," + strings.Repeat("z", 5000)
	r, err := NewCSVReader(strings.NewReader("\xEF\xBB\xBFa,b\r\n1,\"x\ny\"\r\n"+long+"\n3,4"), ReaderOptions{MaxRecordBytes: 50})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.HeaderLine()) != "a,b" {
		t.Errorf("header line %q", r.HeaderLine())
	}
	rec, err := r.Next()
	if err != nil || string(rec.Raw) != "1,\"x\ny\"" {
		t.Fatalf("row: %v %q", err, rec.Raw)
	}
	_, err = r.Next()
	re, ok := err.(*RecordError)
	if !ok || re.Size != int64(len(long)) || len(re.Raw) != csvMaxRaw {
		t.Fatalf("oversized row: %v (size %d, %d bytes kept)", err, re.Size, len(re.Raw))
	}
	if rec, err := r.Next(); err != nil || string(rec.Raw) != "3,4" {
		t.Fatalf("last row: %v", err)
	}
}
