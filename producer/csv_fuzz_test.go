package producer

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// csvFuzzSeeds are the csv-spectrum files and a few edge cases.
func csvFuzzSeeds(f *testing.F) [][]byte {
	files, err := filepath.Glob(filepath.Join(externalDir(f), "csv-spectrum", "csvs", "*.csv"))
	if err != nil || len(files) == 0 {
		f.Fatalf("csv-spectrum seeds: %v", err)
	}
	var seeds [][]byte
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b, bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
	}
	for _, s := range []string{
		"\xEF\xBB\xBFa,b\r\n1,\"x\r\ny\"\r\n\r\n3,4",
		"a,b\n\"abc\"x,2\n1,x\"y\n",
		"a,b\n1,\"unterminated\n",
		"a\n\n\"\"\n,\n\r",
		"a,b\n1,\xff\n\"\xc3\",2\n",
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzCSVReader reads any bytes: no panic; every record is valid compact
// JSON whose members are the header; lines and offsets never go back; and
// reading a byte at a time gives the same as reading at once. When
// encoding/csv reads the input without error and the input has no CR (where
// the two differ on purpose), both must see the same rows.
func FuzzCSVReader(f *testing.F) {
	for _, s := range csvFuzzSeeds(f) {
		f.Add(s, uint16(0))
		f.Add(s, uint16(8))
	}
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		opts := ReaderOptions{MaxRecordBytes: int(max)}
		header, rows, err := readCSV(t, bytes.NewReader(data), opts)
		header1, rows1, err1 := readCSV(t, iotest.OneByteReader(bytes.NewReader(data)), opts)
		if fmt.Sprint(err) != fmt.Sprint(err1) || !reflect.DeepEqual(header, header1) || !reflect.DeepEqual(rows, rows1) {
			t.Fatalf("whole vs one byte at a time:\n%q %v\n%s\n%q %v\n%s", header, err, rowsString(rows), header1, err1, rowsString(rows1))
		}
		if header == nil {
			return
		}
		var se *SyntaxError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("error %T %v, want a *SyntaxError", err, err)
		}
		limit := int(max)
		if limit == 0 {
			limit = DefaultMaxRecordBytes
		}
		for _, r := range rows {
			if r.Err != "" && len(r.Raw) > limit && len(r.Raw) > csvMaxRaw {
				t.Fatalf("Raw of %d bytes: %v", len(r.Raw), r)
			}
		}
		if max == 0 && !bytes.ContainsRune(data, '\r') && !bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
			compareStdCSV(t, data, header, rows, err)
		}
	})
}

// compareStdCSV reads data with encoding/csv and, when it reads all of it,
// wants the same rows as ours.
func compareStdCSV(t *testing.T, data []byte, header []string, rows []csvRow, err error) {
	std := csv.NewReader(bytes.NewReader(data))
	std.FieldsPerRecord = -1
	all, stdErr := std.ReadAll()
	if stdErr != nil {
		return
	}
	if err != nil {
		t.Fatalf("encoding/csv reads it all, we stop at %v", err)
	}
	if !reflect.DeepEqual(all[0], header) {
		t.Fatalf("header %q, encoding/csv %q", header, all[0])
	}
	all = all[1:]
	if len(all) != len(rows) {
		t.Fatalf("%d rows, encoding/csv %d:\n%s\n%q", len(rows), len(all), rowsString(rows), all)
	}
	for i, want := range all {
		got := rows[i]
		valid := true
		for _, v := range want {
			valid = valid && utf8.ValidString(v)
		}
		switch {
		case len(want) != len(header):
			if !strings.HasPrefix(got.Err, fmt.Sprintf("row has %d field", len(want))) {
				t.Fatalf("row %d: %v, encoding/csv has %d fields", i, got, len(want))
			}
		case !valid:
			if !strings.HasSuffix(got.Err, "is not valid UTF-8") {
				t.Fatalf("row %d: %v, encoding/csv %q is not UTF-8", i, got, want)
			}
		case !reflect.DeepEqual(got.Values, want):
			t.Fatalf("row %d: %v, encoding/csv %q", i, got, want)
		}
	}
}

// FuzzCSVRoundTrip writes rows with encoding/csv's Writer and reads them
// back: every value must come back as written (with UseCRLF, as the Writer
// changes it: CR dropped, LF written as CRLF), at the line and offset where
// it was written. Rows holding invalid UTF-8 must be rejected, and a row
// that the Writer writes as a blank line (one empty field) is skipped.
func FuzzCSVRoundTrip(f *testing.F) {
	for _, s := range csvFuzzSeeds(f) {
		f.Add(s, uint8(3), false)
		f.Add(s, uint8(1), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, ncols uint8, crlf bool) {
		cols := 1 + int(ncols%6)
		// Fields are split on 0x1F (unit separator), rows on 0x1E.
		var table [][]string
		for line := range bytes.SplitSeq(data, []byte{0x1E}) {
			vals := strings.Split(string(line), "\x1F")
			for len(vals) > 0 {
				row := make([]string, cols)
				n := copy(row, vals)
				vals = vals[n:]
				table = append(table, row)
			}
		}
		header := make([]string, cols)
		for i := range header {
			header[i] = fmt.Sprintf("col%d", i)
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.UseCRLF = crlf
		type want struct {
			line, off int64
			vals      []string
			valid     bool
		}
		var wants []want
		write := func(row []string) {
			if err := w.Write(row); err != nil {
				t.Fatal(err)
			}
			w.Flush()
		}
		write(header)
		for _, row := range table {
			if len(row) == 1 && row[0] == "" {
				write(row) // a blank line: skipped
				continue
			}
			wt := want{line: int64(bytes.Count(buf.Bytes(), []byte("\n")) + 1), off: int64(buf.Len()), valid: true}
			for _, v := range row {
				if crlf {
					v = strings.ReplaceAll(strings.ReplaceAll(v, "\r", ""), "\n", "\r\n")
				}
				wt.vals = append(wt.vals, v)
				wt.valid = wt.valid && utf8.ValidString(v)
			}
			wants = append(wants, wt)
			write(row)
		}
		for _, rd := range csvReads[:2] {
			gotHeader, rows, err := readCSV(t, rd.wrap(bytes.NewReader(buf.Bytes())), ReaderOptions{})
			if err != nil {
				t.Fatalf("%s: %v\ninput %q", rd.name, err, buf.Bytes())
			}
			if !reflect.DeepEqual(gotHeader, header) {
				t.Fatalf("%s: header %q", rd.name, gotHeader)
			}
			if len(rows) != len(wants) {
				t.Fatalf("%s: %d rows, wrote %d\ninput %q\n%s", rd.name, len(rows), len(wants), buf.Bytes(), rowsString(rows))
			}
			for i, w := range wants {
				got := rows[i]
				if got.Line != w.line || got.Offset != w.off {
					t.Fatalf("%s: row %d at line %d offset %d, written at line %d offset %d", rd.name, i, got.Line, got.Offset, w.line, w.off)
				}
				if !w.valid {
					if !strings.HasSuffix(got.Err, "is not valid UTF-8") {
						t.Fatalf("%s: row %d: %v, want invalid UTF-8", rd.name, i, got)
					}
					continue
				}
				if !reflect.DeepEqual(got.Values, w.vals) {
					t.Fatalf("%s: row %d: %v, wrote %q\ninput %q", rd.name, i, got, w.vals, buf.Bytes())
				}
			}
		}
	})
}

// TestCSVStdSeeds runs the encoding/csv comparison of FuzzCSVReader on the
// real files, their CRs removed.
func TestCSVStdSeeds(t *testing.T) {
	ext := externalDir(t)
	files, err := filepath.Glob(filepath.Join(ext, "csv-spectrum", "csvs", "*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range append(files, filepath.Join(ext, "products-2000.csv")) {
		in, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		in = bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		header, rows, err := readCSV(t, bytes.NewReader(in), ReaderOptions{})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		compareStdCSV(t, in, header, rows, err)
	}
}
