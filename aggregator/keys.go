package aggregator

import (
	"bytes"
	"hash/maphash"
)

// index numbers distinct byte strings densely, 0, 1, 2, ... in the order
// they are first added, without a pointer per string: the garbage
// collector never scans it, however many millions it holds, and it grows
// without copying them. A partition's keys are one (their versions and
// groups are slices beside it, by number), each aggregate's groups another.
//
// Each string's bytes are kept once, in an arena of large chunks, and at
// says where. The numbers are found by an open-addressing table of 8
// bytes a slot, rather than a Go map, whose slots and load cost over twice
// as much per key at millions of keys. Exactness does not rest on the
// hash: two strings with the same hash are told apart by their bytes.
type index struct {
	seed maphash.Seed
	// hash, when set, replaces maphash (tests make hashes collide).
	hash func([]byte) uint64
	// slots is the table, probed linearly from the slot the tag gives:
	// each is 0 (empty) or a string's tag (the low 32 bits of its hash)
	// above its number + 1.
	slots []uint64
	// at holds, per number, where the bytes are: chunk, offset and length
	// packed by span.
	at    []uint64
	arena [][]byte
	// open is the chunk being filled, or -1.
	open int
}

// Chunks of bytes grow from firstChunk to arenaChunk: an index of a few
// groups stays small, one of millions of keys takes 1 MiB at a time. A
// string as long as spanLong gets a chunk of its own.
const (
	firstChunk = 4 << 10
	arenaChunk = 1 << 20
)

// A span packs a chunk (24 bits), an offset in it (20 bits) and a length
// (20 bits) into 8 bytes. A length of spanLong means the whole chunk.
const (
	spanBits = 20
	spanMask = 1<<spanBits - 1
	spanLong = spanMask
)

func span(chunk, off, n int) uint64 {
	return uint64(chunk)<<(2*spanBits) | uint64(off)<<spanBits | uint64(n)
}

func newIndex() index { return index{seed: maphash.MakeSeed(), open: -1} }

func (x *index) len() int { return len(x.at) }

// bytes returns the string numbered id, in the arena: never changed
// after, so it may be kept.
func (x *index) bytes(id uint32) []byte {
	s := x.at[id]
	c := x.arena[s>>(2*spanBits)]
	off, n := s>>spanBits&spanMask, s&spanMask
	if n == spanLong {
		return c
	}
	return c[off : off+n : off+n]
}

// find returns b's number, or b's hash and false when b has none (for add).
func (x *index) find(b []byte) (id uint32, h uint64, ok bool) {
	if x.hash != nil {
		h = x.hash(b)
	} else {
		h = maphash.Bytes(x.seed, b)
	}
	if len(x.slots) == 0 {
		return 0, h, false
	}
	tag, mask := uint32(h), len(x.slots)-1
	for i := int(tag) & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return 0, h, false
		}
		if uint32(s>>32) == tag && bytes.Equal(x.bytes(uint32(s)-1), b) {
			return uint32(s) - 1, h, true
		}
	}
}

// add numbers b, which find did not find and whose hash is h. b may be a
// reused buffer: it is copied.
func (x *index) add(b []byte, h uint64) uint32 {
	id := uint32(len(x.at))
	x.at = append(x.at, x.store(b))
	// At most three slots in four taken: a probe for a string not there
	// ends after a few slots, in one or two cache lines.
	if 4*len(x.at) > 3*len(x.slots) {
		x.grow()
	}
	x.place(uint64(uint32(h))<<32 | uint64(id+1))
	return id
}

// place puts slot s into the first empty slot from the one its tag gives.
func (x *index) place(s uint64) {
	mask := len(x.slots) - 1
	i := int(uint32(s>>32)) & mask
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = s
}

// grow doubles the table. The tags place the strings again: no hash is
// computed again.
func (x *index) grow() {
	old := x.slots
	x.slots = make([]uint64, max(2*len(old), 16))
	for _, s := range old {
		if s != 0 {
			x.place(s)
		}
	}
}

// intern returns b's number, adding it if it has none.
func (x *index) intern(b []byte) uint32 {
	id, h, ok := x.find(b)
	if !ok {
		id = x.add(b, h)
	}
	return id
}

// store copies b into the arena and returns its span.
func (x *index) store(b []byte) uint64 {
	if len(b) >= spanLong {
		x.arena = append(x.arena, bytes.Clone(b))
		return span(len(x.arena)-1, 0, spanLong)
	}
	// A full chunk takes no more, not even an empty string: its offset
	// would be the chunk's size, one past what a span holds.
	if x.open < 0 || len(x.arena[x.open])+len(b) > cap(x.arena[x.open]) || len(x.arena[x.open]) == cap(x.arena[x.open]) {
		size := firstChunk
		if x.open >= 0 {
			size = min(2*cap(x.arena[x.open]), arenaChunk)
		}
		x.arena = append(x.arena, make([]byte, 0, max(size, len(b))))
		x.open = len(x.arena) - 1
	}
	c := x.arena[x.open]
	s := span(x.open, len(c), len(b))
	x.arena[x.open] = append(c, b...)
	return s
}
