package aggregator

import (
	"bytes"
	"hash/maphash"
)

// keys maps a partition's skus to their name ids without a pointer per
// sku: the garbage collector never scans it, however many millions of skus
// it holds, and it grows without copying the skus. Each sku's bytes are kept
// once, in an arena of large chunks; a map from the sku's 64-bit hash holds
// where they are and the name id. Two skus with the same hash (about one
// chance in a million among five million skus) are still told apart: the
// second goes to a small overflow map keyed by the sku itself.
type keys struct {
	hash     func([]byte) uint64
	byHash   map[uint64]slot
	overflow map[string]uint32
	arena    [][]byte // chunks; only the last one has room
	n        int
}

// slot is where a sku's bytes are (chunk index and offset, length) and its
// name id.
type slot struct {
	chunk, off, len uint32
	name            uint32
}

// arenaChunk is the size of one chunk of sku bytes. A sku longer than a
// chunk gets a chunk of its own.
const arenaChunk = 1 << 20

func newKeys() *keys {
	seed := maphash.MakeSeed()
	return &keys{
		hash:     func(b []byte) uint64 { return maphash.Bytes(seed, b) },
		byHash:   map[uint64]slot{},
		overflow: map[string]uint32{},
	}
}

func (k *keys) len() int { return k.n }

func (k *keys) bytes(s slot) []byte { return k.arena[s.chunk][s.off : s.off+s.len] }

// get returns sku's name id.
func (k *keys) get(sku []byte) (uint32, bool) {
	s, ok := k.byHash[k.hash(sku)]
	if !ok {
		return 0, false
	}
	if bytes.Equal(k.bytes(s), sku) {
		return s.name, true
	}
	id, ok := k.overflow[string(sku)]
	return id, ok
}

// swap makes name sku's name id, adding sku if it is new, and returns the
// id it had.
func (k *keys) swap(sku []byte, name uint32) (old uint32, seen bool) {
	h := k.hash(sku)
	s, ok := k.byHash[h]
	switch {
	case !ok:
		s = k.store(sku)
		s.name = name
		k.byHash[h] = s
		k.n++
		return 0, false
	case bytes.Equal(k.bytes(s), sku):
		if s.name != name {
			old, s.name = s.name, name
			k.byHash[h] = s
			return old, true
		}
		return name, true
	default: // another sku with the same hash
		old, seen = k.overflow[string(sku)]
		if !seen {
			k.n++
		}
		if !seen || old != name {
			k.overflow[string(sku)] = name
		}
		return old, seen
	}
}

// store copies sku into the arena.
func (k *keys) store(sku []byte) slot {
	last := len(k.arena) - 1
	if last < 0 || len(k.arena[last])+len(sku) > cap(k.arena[last]) {
		k.arena = append(k.arena, make([]byte, 0, max(arenaChunk, len(sku))))
		last++
	}
	c := k.arena[last]
	s := slot{chunk: uint32(last), off: uint32(len(c)), len: uint32(len(sku))}
	k.arena[last] = append(c, sku...)
	return s
}
