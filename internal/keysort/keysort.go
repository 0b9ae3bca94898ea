// Package keysort orders the values of a text column, kept end to end in
// one buffer, by their bytes: the order ClickHouse keeps a table whose
// ORDER BY is one String column.
//
// Why by hand: the processor orders every batch it inserts (see
// processor.batch.seal), 50,000 keys at a time. slices.SortFunc with
// bytes.Compare takes 10.2 ms for 50,000 skus like the bench's, this radix
// sort 2.4 ms (BenchmarkSortFunc, BenchmarkOrder), and the standard library
// has none. Reading each key's next 8 bytes once into an entry beside it,
// rather than a byte of the key from the buffer in every counting pass,
// took it from 3.7 ms to 2.4.
package keysort

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// Sorter orders text columns, keeping its scratch space from one call to
// the next. The zero Sorter is ready to use.
type Sorter struct {
	ent, tmp []entry
	buf      []byte
	ends     []int
}

// entry is a value being ordered, with a copy of 8 of its bytes: the
// counting passes read those, one after the other, instead of the value's
// bytes wherever they are in the buffer. A range of entries agrees on its
// values' bytes before the depth it is ordered at; word holds the bytes
// from that depth rounded down to a multiple of 8 (base), and is read
// again from the buffer as the depth reaches the next multiple.
type entry struct {
	word uint64 // bytes base to base+8, big-endian, zero past the value's end
	rem  int32  // the value's length from base on
	i    int32  // the value
}

// small is the size under which a range is ordered by insertion, and deep
// the depth past which the rest of a range is ordered by comparison: the
// radix recursion goes one level deeper per byte of a common prefix that
// splits, and keys such as "a", "aa", "aaa", ... would otherwise make it as
// deep as they are long.
const (
	small = 32
	deep  = 64
)

// Order returns in perm (its memory reused) the order of the values of a
// text column: value i is buf[ends[i-1]:ends[i]] (the first from 0), and
// perm[k] is the value that comes k-th by its bytes, shorter first on a
// common prefix (as bytes.Compare), equal values in their own order.
func (s *Sorter) Order(perm []int32, buf []byte, ends []int) []int32 {
	s.ent = slices.Grow(s.ent[:0], len(ends))[:len(ends)]
	for i := range s.ent {
		s.ent[i].i = int32(i)
	}
	s.tmp = slices.Grow(s.tmp[:0], len(ends))[:len(ends)]
	s.buf, s.ends = buf, ends
	s.radix(s.ent, s.tmp, 0)
	s.buf, s.ends = nil, nil
	perm = perm[:0]
	for _, e := range s.ent {
		perm = append(perm, e.i)
	}
	return perm
}

func (s *Sorter) value(i int32) []byte {
	start := 0
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.buf[start:s.ends[i]]
}

// load sets each entry's word and rem for base.
func (s *Sorter) load(ent []entry, base int) {
	for k := range ent {
		v := s.value(ent[k].i)
		var w uint64
		if base < len(v) {
			v = v[base:]
			if len(v) >= 8 {
				w = binary.BigEndian.Uint64(v)
			} else {
				for j, c := range v {
					w |= uint64(c) << (56 - 8*j)
				}
			}
		} else {
			v = nil
		}
		ent[k].word, ent[k].rem = w, int32(len(v))
	}
}

// digit is the entry's byte at depth (within its word) plus one, or 0 past
// its value's end.
func digit(e *entry, depth int) int {
	j := depth & 7
	if int(e.rem) > j {
		return int(byte(e.word>>(56-8*j))) + 1
	}
	return 0
}

// radix orders ent, whose values agree on their first depth bytes, by a
// stable counting sort on byte depth, then each bucket on the next byte.
func (s *Sorter) radix(ent, tmp []entry, depth int) {
	for {
		if len(ent) <= small || depth >= deep {
			s.compare(ent, depth)
			return
		}
		if depth&7 == 0 {
			s.load(ent, depth)
		}
		var count [257]int
		for k := range ent {
			count[digit(&ent[k], depth)]++
		}
		if d := digit(&ent[0], depth); count[d] == len(ent) {
			if d == 0 {
				return // every value ends here: equal, and in order
			}
			depth++ // one byte in common: no need to move anything
			continue
		}
		var next [257]int
		for d, sum := 0, 0; d < len(count); d++ {
			next[d] = sum
			sum += count[d]
		}
		for k := range ent {
			d := digit(&ent[k], depth)
			tmp[next[d]] = ent[k]
			next[d]++
		}
		copy(ent, tmp)
		// Bucket 0 holds values that end here: equal, and in order.
		for d, lo := 1, count[0]; d < len(count); d++ {
			hi := lo + count[d]
			if count[d] > 1 {
				s.radix(ent[lo:hi], tmp[lo:hi], depth+1)
			}
			lo = hi
		}
		return
	}
}

// compare orders ent by the values' bytes from depth on, stably.
func (s *Sorter) compare(ent []entry, depth int) {
	if len(ent) <= small && depth < deep {
		// Words loaded for base agree before depth: they compare the
		// bytes from depth to base+8, and the value's bytes the rest.
		base := depth &^ 7
		if depth&7 == 0 {
			s.load(ent, base)
		}
		order := func(a, b *entry) int {
			if c := cmp.Compare(a.word, b.word); c != 0 {
				return c
			}
			if a.rem <= 8 || b.rem <= 8 {
				// Equal words, and one value ends in them: it is a
				// prefix of the other (their zeros are the padding's).
				return cmp.Compare(a.rem, b.rem)
			}
			return bytes.Compare(s.value(a.i)[base+8:], s.value(b.i)[base+8:])
		}
		for k := 1; k < len(ent); k++ {
			x := ent[k]
			j := k
			for ; j > 0 && order(&ent[j-1], &x) > 0; j-- {
				ent[j] = ent[j-1]
			}
			ent[j] = x
		}
		return
	}
	slices.SortStableFunc(ent, func(x, y entry) int { return bytes.Compare(s.value(x.i)[depth:], s.value(y.i)[depth:]) })
}
