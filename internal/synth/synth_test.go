package synth

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
)

type product struct {
	Sku, Name, Description string
}

// decode reads back what Write wrote, with the standard library's decoders.
func decode(t *testing.T, format string, data []byte) []product {
	t.Helper()
	var out []product
	switch format {
	case "json":
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("json: %v", err)
		}
	case "ndjson":
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var p product
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatalf("ndjson line %q: %v", sc.Text(), err)
			}
			out = append(out, p)
		}
	case "csv":
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatalf("csv: %v", err)
		}
		if strings.Join(rows[0], ",") != "sku,name,description" {
			t.Fatalf("csv header %v", rows[0])
		}
		for _, r := range rows[1:] {
			out = append(out, product{r[0], r[1], r[2]})
		}
	}
	return out
}

func TestWriteFormatsAgree(t *testing.T) {
	var first []product
	for _, format := range []string{"json", "ndjson", "csv"} {
		var buf bytes.Buffer
		st, err := Write(&buf, Options{Rows: 2000, Format: format, DupRate: 0.1, RenameRate: 0.1, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		got := decode(t, format, buf.Bytes())
		if int64(len(got)) != st.Rows || st.Rows != 2000 || st.Bytes != int64(buf.Len()) {
			t.Fatalf("%s: decoded %d rows, stats %+v, %d bytes", format, len(got), st, buf.Len())
		}
		if first == nil {
			first = got
		} else {
			for i := range got {
				if got[i] != first[i] {
					t.Fatalf("%s row %d = %+v, json gave %+v", format, i, got[i], first[i])
				}
			}
		}
	}
}

func TestWriteRates(t *testing.T) {
	var buf bytes.Buffer
	st, err := Write(&buf, Options{Rows: 20000, Format: "ndjson", DupRate: 0.2, RenameRate: 0.1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rows := decode(t, "ndjson", buf.Bytes())
	last := map[string]product{}
	var dups, renames int64
	for _, p := range rows {
		prev, seen := last[p.Sku]
		switch {
		case !seen:
		case prev.Name == p.Name:
			dups++
		default:
			renames++
		}
		last[p.Sku] = p
	}
	if int64(len(last)) != st.Skus || dups != st.Dups || renames != st.Renames {
		t.Fatalf("recomputed skus=%d dups=%d renames=%d, stats say %+v", len(last), dups, renames, st)
	}
	for name, rate := range map[string]float64{"dup": float64(dups) / 20000, "rename": float64(renames) / 20000} {
		want := map[string]float64{"dup": 0.2, "rename": 0.1}[name]
		if rate < want-0.02 || rate > want+0.02 {
			t.Errorf("%s rate %.3f, want about %.2f", name, rate, want)
		}
	}
}

func TestWriteIsReproducible(t *testing.T) {
	var a, b, c bytes.Buffer
	Write(&a, Options{Rows: 500, Format: "csv", Seed: 3, DupRate: 0.3})
	Write(&b, Options{Rows: 500, Format: "csv", Seed: 3, DupRate: 0.3})
	Write(&c, Options{Rows: 500, Format: "csv", Seed: 4, DupRate: 0.3})
	if !bytes.Equal(a.Bytes(), b.Bytes()) || bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("same seed must give the same file, another seed another")
	}
}

func TestWriteRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{Format: "xml"}, {Format: "csv", DupRate: 0.7, RenameRate: 0.5}, {Format: "csv", Rows: -1}} {
		if _, err := Write(&bytes.Buffer{}, o); err == nil {
			t.Errorf("Write(%+v) gave no error", o)
		}
	}
}
