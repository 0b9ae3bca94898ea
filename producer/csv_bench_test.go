package producer

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var csvWords = []string{
	"art", "community", "floor", "adult", "your", "single", "type", "back",
	"former", "stock", "thing", "produce", "successful", "hot", "tree", "past",
	"action", "young", "song", "himself", "then", "tax", "eye", "little", "last",
	"state", "vote", "country", "down", "list", "speech", "economy", "leave",
	"choice", "should", "lead", "budget", "task", "author", "best", "mention",
}

var csvNames = []string{
	"Bryce Jones", "John Robinson", "Theresa Taylor", "Ana María Núñez",
	"Zoë O'Brien", "Li Wei", "Søren Kierkegaard", "Maria Garcia",
}

// genProductsCSV makes a products file like the real one: header
// name,sku,description, CRLF record ends, and about 60% of descriptions
// quoted because they hold line breaks (bare LF), some quotes and commas.
func genProductsCSV(rows int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("name,sku,description\r\n")
	sentence := func(d *[]byte) {
		n := 4 + rng.IntN(8)
		for i := range n {
			w := csvWords[rng.IntN(len(csvWords))]
			if i == 0 {
				*d = append(*d, w[0]-'a'+'A')
				w = w[1:]
			} else {
				*d = append(*d, ' ')
			}
			*d = append(*d, w...)
		}
		*d = append(*d, '.')
	}
	var d []byte
	for i := range rows {
		b.WriteString(csvNames[rng.IntN(len(csvNames))])
		b.WriteByte(',')
		fmt.Fprintf(&b, "%s-%s-%d,", csvWords[rng.IntN(len(csvWords))], csvWords[rng.IntN(len(csvWords))], i)
		d = d[:0]
		quoted := rng.IntN(10) < 6
		for j := range 2 + rng.IntN(4) {
			if j > 0 {
				if quoted && rng.IntN(2) == 0 {
					d = append(d, '\n')
				} else {
					d = append(d, ' ')
				}
			}
			sentence(&d)
		}
		if quoted {
			if rng.IntN(4) == 0 {
				d = append(d, ` A ""quoted"", part.`...)
			}
			b.WriteByte('"')
			b.Write(d)
			b.WriteByte('"')
		} else {
			b.Write(d)
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

var benchCSV = sync.OnceValue(func() []byte { return genProductsCSV(100_000) })

func benchmarkCSVReader(b *testing.B, data []byte, wantRows int) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		cr, err := NewCSVReader(bytes.NewReader(data), ReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rows = 0
		for {
			_, err := cr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows++
		}
	}
	if rows != wantRows {
		b.Fatalf("%d rows, want %d", rows, wantRows)
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkCSVReader reads 100,000 generated product rows (about 19 MB).
func BenchmarkCSVReader(b *testing.B) {
	benchmarkCSVReader(b, benchCSV(), 100_000)
}

// BenchmarkCSVReaderProducts2000 reads the real products file.
func BenchmarkCSVReaderProducts2000(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(externalDir(b), "products-2000.csv"))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkCSVReader(b, data, 2000)
}

// BenchmarkCSVStdlib is encoding/csv on the same rows, for scale: it splits
// fields but builds no JSON.
func BenchmarkCSVStdlib(b *testing.B) {
	data := benchCSV()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := csv.NewReader(bytes.NewReader(data))
		r.ReuseRecord = true
		for {
			_, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
