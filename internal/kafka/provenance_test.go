package kafka

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProvenance(t *testing.T) {
	for _, c := range []struct {
		name    string
		headers []kgo.RecordHeader
		job     string
		source  string
		line    uint64
	}{
		{"one header", []kgo.RecordHeader{{Key: HeaderProvenance, Value: AppendProvenance(nil, "20261121T134512Z-0c35f3f9a0c1", 1234, "/in/products.ndjson")}},
			"20261121T134512Z-0c35f3f9a0c1", "/in/products.ndjson", 1234},
		{"a source with spaces", []kgo.RecordHeader{{Key: HeaderProvenance, Value: AppendProvenance(nil, "j", 7, "POST /v1/records/products")}},
			"j", "POST /v1/records/products", 7},
		{"an empty source", []kgo.RecordHeader{{Key: HeaderProvenance, Value: AppendProvenance(nil, "j", 1, "")}}, "j", "", 1},
		{"the three headers of earlier loaders", []kgo.RecordHeader{
			{Key: HeaderJob, Value: []byte("j")}, {Key: HeaderSource, Value: []byte("a b.csv")}, {Key: HeaderLine, Value: []byte("99")}},
			"j", "a b.csv", 99},
		{"other headers around it", []kgo.RecordHeader{{Key: "trace", Value: []byte("x y z")},
			{Key: HeaderProvenance, Value: []byte("j 5 s")}, {Key: "other", Value: []byte("1")}}, "j", "s", 5},
		{"no header", nil, "", "", 0},
		{"a value not of the form is the job", []kgo.RecordHeader{{Key: HeaderProvenance, Value: []byte("just-a-job")}}, "just-a-job", "", 0},
		{"a line that is not a number", []kgo.RecordHeader{{Key: HeaderProvenance, Value: []byte("j x1 s")}}, "j", "s", 0},
		{"a line over 64 bits", []kgo.RecordHeader{{Key: HeaderProvenance, Value: []byte("j 99999999999999999999 s")}}, "j", "s", 0},
	} {
		job, source, line := Provenance(c.headers)
		if string(job) != c.job || string(source) != c.source || line != c.line {
			t.Errorf("%s: job %q source %q line %d, want %q %q %d", c.name, job, source, line, c.job, c.source, c.line)
		}
	}
}

// Reading a record's provenance allocates nothing: it runs for every
// record the processor inserts.
func TestProvenanceAllocatesNothing(t *testing.T) {
	h := []kgo.RecordHeader{{Key: HeaderProvenance, Value: AppendProvenance(nil, "20261121T134512Z-0c35f3f9a0c1", 1234, "/in/products.ndjson")}}
	if n := testing.AllocsPerRun(100, func() { Provenance(h) }); n != 0 {
		t.Errorf("%v allocations a record", n)
	}
}

// Whatever a header holds, reading it never panics, its parts are parts
// of the value, and a value the loader wrote reads back as written.
func FuzzProvenance(f *testing.F) {
	f.Add([]byte("20261121T134512Z-0c35f3f9a0c1 1234 /in/products.ndjson"), "job", int64(5), "src")
	f.Add([]byte(""), "", int64(0), "")
	f.Add([]byte("  "), "j", int64(-1), "a b")
	f.Add([]byte("j 18446744073709551615 s"), "j", int64(1<<62), " ")
	f.Fuzz(func(t *testing.T, value []byte, job string, line int64, source string) {
		j, s, _ := Provenance([]kgo.RecordHeader{{Key: HeaderProvenance, Value: value}})
		if !bytes.HasPrefix(value, j) || !bytes.HasSuffix(value, s) {
			t.Fatalf("%q: job %q source %q are not its parts", value, j, s)
		}
		if bytes.ContainsRune([]byte(job), ' ') || line < 0 {
			return // job ids hold no space; lines count from 1
		}
		j, s, l := Provenance([]kgo.RecordHeader{{Key: HeaderProvenance, Value: AppendProvenance(nil, job, line, source)}})
		if string(j) != job || string(s) != source || strconv.FormatUint(l, 10) != strconv.FormatInt(line, 10) {
			t.Fatalf("wrote %q %d %q, read %q %d %q", job, line, source, j, l, s)
		}
	})
}
