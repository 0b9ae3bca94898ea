// Package synth writes synthetic product files for demos, tests and
// benchmarks: realistic-looking records, with chosen rates of repeated skus
// and of renames, reproducible from a seed, in constant memory.
package synth

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
)

// Options say what to generate.
type Options struct {
	Rows   int64
	Format string // json, ndjson or csv
	// DupRate is the share of rows that repeat an earlier sku unchanged
	// (a replayed record).
	DupRate float64
	// RenameRate is the share of rows that repeat an earlier sku with a new
	// name (an update that moves the sku between names).
	RenameRate float64
	Seed       uint64
	// Names is how many distinct names products are drawn from; 0 means
	// one per ten rows, at least 100.
	Names int
}

// Stats say what was written.
type Stats struct {
	Rows    int64 `json:"rows"`
	Skus    int64 `json:"distinct_skus"`
	Dups    int64 `json:"repeated_rows"`
	Renames int64 `json:"renamed_rows"`
	Bytes   int64 `json:"bytes"`
}

// recent is how many recently written skus repeats and renames pick from.
// Picking only recent skus keeps memory constant however many rows are
// written, and each sku in it holds its current name, so a repeat is exact.
const recent = 4096

// recentRing holds the last `recent` values added, for repeats to pick
// from.
type recentRing[T any] struct {
	vals []T
	next int
}

func (r *recentRing[T]) len() int { return len(r.vals) }

// pick returns one of the values, at random, to read or change in place.
func (r *recentRing[T]) pick(rng *rand.Rand) *T { return &r.vals[rng.IntN(len(r.vals))] }

// add keeps v, in place of the oldest value once the ring is full.
func (r *recentRing[T]) add(v T) {
	if len(r.vals) < recent {
		r.vals = append(r.vals, v)
		return
	}
	r.vals[r.next] = v
	r.next = (r.next + 1) % recent
}

type entry struct {
	idx  int64 // the sku's number
	name int   // index of its current name
	desc uint64
}

// Write writes a products file to w.
func Write(w io.Writer, o Options) (Stats, error) {
	switch o.Format {
	case "json", "ndjson", "csv":
	default:
		return Stats{}, fmt.Errorf("unknown format %q: want json, ndjson or csv", o.Format)
	}
	if o.Rows < 0 || o.DupRate < 0 || o.RenameRate < 0 || o.DupRate+o.RenameRate > 1 {
		return Stats{}, fmt.Errorf("rows must be >= 0 and dup-rate + rename-rate between 0 and 1")
	}
	names := o.Names
	if names <= 0 {
		names = int(max(o.Rows/10, 100))
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5bd1e995))
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	var (
		st    Stats
		ring  recentRing[entry]
		buf   []byte
		first = true
	)
	switch o.Format {
	case "json":
		bw.WriteString("[\n")
	case "csv":
		bw.WriteString("sku,name,description\n")
	}
	for range o.Rows {
		var e entry
		roll := rng.Float64()
		switch {
		case ring.len() > 0 && roll < o.DupRate:
			e = *ring.pick(rng)
			st.Dups++
		case ring.len() > 0 && roll < o.DupRate+o.RenameRate:
			r := ring.pick(rng)
			r.name = (r.name + 1 + rng.IntN(names-1)) % names
			r.desc = rng.Uint64()
			e = *r
			st.Renames++
		default:
			e = entry{idx: st.Skus, name: rng.IntN(names), desc: rng.Uint64()}
			st.Skus++
			ring.add(e)
		}
		st.Rows++
		buf = appendRecord(buf[:0], o.Format, e, first)
		first = false
		if _, err := bw.Write(buf); err != nil {
			return st, err
		}
	}
	if o.Format == "json" {
		bw.WriteString("\n]\n")
	}
	err := bw.Flush()
	st.Bytes = cw.n
	return st, err
}

func appendRecord(b []byte, format string, e entry, first bool) []byte {
	switch format {
	case "csv":
		b = appendSku(b, e.idx)
		b = append(b, ',')
		b = appendName(b, e.name)
		b = append(b, ',', '"')
		b = appendDesc(b, e.desc, "\n")
		return append(b, '"', '\n')
	default:
		if format == "json" && !first {
			b = append(b, ",\n"...)
		}
		b = append(b, `{"sku":"`...)
		b = appendSku(b, e.idx)
		b = append(b, `","name":"`...)
		b = appendName(b, e.name)
		b = append(b, `","description":"`...)
		b = appendDesc(b, e.desc, `\n`)
		b = append(b, `"}`...)
		if format == "ndjson" {
			b = append(b, '\n')
		}
		return b
	}
}

// appendSku writes a unique, word-like sku: two words and the sku's number
// in base 36, e.g. "river-cold-2f".
func appendSku(b []byte, idx int64) []byte {
	h := uint64(idx)*0x9e3779b97f4a7c15 + 1
	b = append(b, words[h%uint64(len(words))]...)
	b = append(b, '-')
	b = append(b, words[(h>>20)%uint64(len(words))]...)
	b = append(b, '-')
	return strconv.AppendInt(b, idx, 36)
}

// appendName writes the name with index i: a first and a last name, then a
// number once the pairs run out.
func appendName(b []byte, i int) []byte {
	pairs := len(firstNames) * len(lastNames)
	b = append(b, firstNames[i%len(firstNames)]...)
	b = append(b, ' ')
	b = append(b, lastNames[(i/len(firstNames))%len(lastNames)]...)
	if i >= pairs {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(i/pairs), 10)
	}
	return b
}

// appendDesc writes two short sentences drawn from seed; one description in
// four has a line break between them, as real exports do.
func appendDesc(b []byte, seed uint64, lineBreak string) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	for s := range 2 {
		if s == 1 {
			if seed%4 == 0 {
				b = append(b, lineBreak...)
			} else {
				b = append(b, ' ')
			}
		}
		n := 6 + r.IntN(8)
		for i := range n {
			w := words[r.IntN(len(words))]
			if i == 0 {
				b = append(b, w[0]-'a'+'A')
				b = append(b, w[1:]...)
			} else {
				b = append(b, ' ')
				b = append(b, w...)
			}
		}
		b = append(b, '.')
	}
	return b
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var firstNames = []string{
	"James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
	"David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
	"Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Margaret", "Donald", "Sandra",
	"Steven", "Ashley", "Paul", "Kimberly", "Andrew", "Emily", "Joshua", "Donna", "Kenneth", "Michelle",
}

var lastNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
	"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
	"Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
	"Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
}

var words = []string{
	"art", "community", "floor", "adult", "single", "type", "back", "former", "stock", "thing",
	"produce", "hot", "tree", "past", "action", "young", "song", "tax", "eye", "little",
	"state", "vote", "country", "down", "list", "speech", "economy", "leave", "choice", "lead",
	"budget", "task", "author", "best", "mention", "often", "stuff", "today", "allow", "door",
	"model", "seat", "fear", "evidence", "sing", "season", "show", "river", "cold", "market",
	"value", "north", "paper", "middle", "loss", "table", "relation", "deal", "western", "protect",
	"fine", "plant", "part", "night", "process", "collection", "light", "stone", "green", "field",
}
