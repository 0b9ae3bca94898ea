package producer

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"skuflow/schemas"
)

// jsonBenchRecords is the number of records of the benchmark inputs.
const jsonBenchRecords = 100_000

// jsonBenchProducts returns n product records, one compact JSON object each,
// shaped like the products files the loader reads.
func jsonBenchProducts(n int) [][]byte {
	words := strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua")
	recs := make([][]byte, n)
	for i := range recs {
		var desc strings.Builder
		for k := i; desc.Len() < 100; k = (k*7 + 3) % len(words) {
			desc.WriteString(words[k%len(words)])
			desc.WriteByte(' ')
		}
		recs[i] = fmt.Appendf(nil, `{"sku":"sku-%07d","name":"%s %s","description":"%s"}`,
			i, words[i%len(words)], words[(i/7)%len(words)], strings.TrimSpace(desc.String()))
	}
	return recs
}

func benchJSONReader(b *testing.B, input []byte, newReader func(io.Reader) Reader) {
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		r := newReader(bytes.NewReader(input))
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != jsonBenchRecords {
			b.Fatalf("%d records, want %d", n, jsonBenchRecords)
		}
	}
}

func BenchmarkJSONReader(b *testing.B) {
	recs := jsonBenchProducts(jsonBenchRecords)
	opts := ReaderOptions{KeyFields: []string{"sku"}}
	newJSON := func(r io.Reader) Reader { return NewJSONReader(r, opts) }
	b.Run("array", func(b *testing.B) {
		benchJSONReader(b, append(append([]byte("["), bytes.Join(recs, []byte(","))...), ']'), newJSON)
	})
	b.Run("array-lines", func(b *testing.B) {
		benchJSONReader(b, append(append([]byte("[\n"), bytes.Join(recs, []byte(",\n"))...), "\n]\n"...), newJSON)
	})
	b.Run("wrapper", func(b *testing.B) {
		in := append([]byte(`{"count":100000,"records":[`), bytes.Join(recs, []byte(","))...)
		benchJSONReader(b, append(in, "]}"...), newJSON)
	})
	b.Run("array-indented", func(b *testing.B) {
		var in bytes.Buffer
		in.WriteString("[\n")
		for i, r := range recs {
			if i > 0 {
				in.WriteString(",\n")
			}
			in.WriteString("  ")
			in.Write(bytes.ReplaceAll(bytes.ReplaceAll(r, []byte(`","`), []byte("\",\n    \"")), []byte(`":"`), []byte(`": "`)))
		}
		in.WriteString("\n]\n")
		benchJSONReader(b, in.Bytes(), newJSON)
	})
}

func BenchmarkNDJSONReader(b *testing.B) {
	recs := jsonBenchProducts(jsonBenchRecords)
	opts := ReaderOptions{KeyFields: []string{"sku"}}
	in := append(bytes.Join(recs, []byte("\n")), '\n')
	benchJSONReader(b, in, func(r io.Reader) Reader { return NewNDJSONReader(r, opts) })
}

// BenchmarkLoaderJSONPath is the loader's work per record before the Kafka
// client takes over, on one core: read the JSON array, validate, key, copy
// into the produced record with its headers.
func BenchmarkLoaderJSONPath(b *testing.B) {
	recs := jsonBenchProducts(jsonBenchRecords)
	input := append(append([]byte("["), bytes.Join(recs, []byte(","))...), ']')
	p := NewPusher(nil, Options{Schema: schemas.Products, Topic: "products"})
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		r := NewJSONReader(bytes.NewReader(input), ReaderOptions{KeyFields: schemas.Products.Key})
		rb := p.newRecordBuilder("20261121T134512Z-0c35f3f9a0c1", "products.json")
		n := 0
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if kr, reason := rb.build(rec, rec.Line, rec.Offset); kr == nil {
				b.Fatal(reason)
			}
			n++
		}
		if n != jsonBenchRecords {
			b.Fatalf("%d records, want %d", n, jsonBenchRecords)
		}
	}
}
