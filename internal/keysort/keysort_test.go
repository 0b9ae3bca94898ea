package keysort_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"skuflow/internal/keysort"
	"skuflow/internal/testenv"
)

// column lays vals end to end as Order takes them.
func column(vals []string) (buf []byte, ends []int) {
	for _, v := range vals {
		buf = append(buf, v...)
		ends = append(ends, len(buf))
	}
	return buf, ends
}

// want is the order by slices.SortStableFunc and bytes.Compare.
func want(vals []string) []int32 {
	perm := make([]int32, len(vals))
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortStableFunc(perm, func(x, y int32) int { return strings.Compare(vals[x], vals[y]) })
	return perm
}

func check(t *testing.T, s *keysort.Sorter, vals []string) {
	t.Helper()
	buf, ends := column(vals)
	got := s.Order(nil, buf, ends)
	if w := want(vals); !slices.Equal(got, w) {
		t.Fatalf("%d values: order differs from a stable sort\n got %v\nwant %v", len(vals), head(got), head(w))
	}
}

func head(p []int32) []int32 { return p[:min(len(p), 40)] }

func TestOrder(t *testing.T) {
	var s keysort.Sorter
	r := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, max int) string {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	cases := map[string][]string{
		"none":  nil,
		"one":   {"x"},
		"empty": {"", "", "a", "", "\x00", "\x00\x00", "\xff", ""},
		// Prefixes of each other, past the radix depth.
		"prefixes": func() (v []string) {
			for i := 200; i >= 0; i-- {
				v = append(v, strings.Repeat("a", i))
			}
			return v
		}(),
		"same": slices.Repeat([]string{"same"}, 500),
		// Zero bytes where a shorter value's word is padded with zeros,
		// across the 8-byte words the counting reads.
		"zeros": func() (v []string) {
			for _, p := range []string{"a", "abcdefg", "abcdefgh", "abcdefghijklmno"} {
				for k := 20; k >= 0; k-- {
					v = append(v, p+strings.Repeat("\x00", k), p+strings.Repeat("\x00", k)+"b")
				}
			}
			return slices.Repeat(v, 3)
		}(),
	}
	for _, n := range []int{2, 31, 32, 33, 100, 5000} {
		var few, many, long []string
		for range n {
			few = append(few, word("ab", 6))
			many = append(many, word("\x00\x01az\xfe\xff", 12))
			long = append(long, strings.Repeat("p", 70)+word("xy", 4))
		}
		cases[fmt.Sprint("few-", n)] = few
		cases[fmt.Sprint("many-", n)] = many
		cases[fmt.Sprint("long-", n)] = long
	}
	for name, vals := range cases {
		t.Run(name, func(t *testing.T) { check(t, &s, vals) })
	}
}

// The skus of a real products file.
func TestOrderSkus(t *testing.T) {
	rows := testenv.ReadCSV(t, testenv.ExternalTestdata(t, "products-2000.csv"))
	var vals []string
	for _, row := range rows[1:] {
		vals = append(vals, row[1]) // name,sku,description
	}
	if len(vals) < 1000 {
		t.Fatalf("%d skus", len(vals))
	}
	check(t, new(keysort.Sorter), vals)
}

func FuzzOrder(f *testing.F) {
	f.Add([]byte("b\na\n\nab\na"))
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, new(keysort.Sorter), strings.Split(string(data), "\n"))
	})
}

func skus(n int) []string {
	r := rand.New(rand.NewPCG(3, 4))
	words := []string{"action", "community", "economy", "often", "fine", "type", "model", "art", "state", "back", "light"}
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf("%s-%s-%d", words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(2_000_000))
	}
	return vals
}

func BenchmarkOrder(b *testing.B) {
	buf, ends := column(skus(50_000))
	var s keysort.Sorter
	var perm []int32
	for b.Loop() {
		perm = s.Order(perm, buf, ends)
	}
}

func BenchmarkSortFunc(b *testing.B) {
	vals := skus(50_000)
	buf, ends := column(vals)
	value := func(i int32) []byte {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		return buf[start:ends[i]]
	}
	perm := make([]int32, len(vals))
	for b.Loop() {
		for i := range perm {
			perm[i] = int32(i)
		}
		slices.SortFunc(perm, func(x, y int32) int { return bytes.Compare(value(x), value(y)) })
	}
}
