package aggregator

import (
	"bytes"
	"hash/maphash"
)

// keys maps a partition's skus to their name ids and versions (the
// version of the record that set the name) without a pointer per
// sku: the garbage collector never scans it, however many millions of skus
// it holds, and it grows without copying the skus. Each sku's bytes are kept
// once, in an arena of large chunks; a map from the sku's 64-bit hash holds
// where they are and the name id. Two skus with the same hash (about one
// chance in a million among five million skus) are still told apart: the
// second goes to a small overflow map keyed by the sku itself.
type keys struct {
	hash     func([]byte) uint64
	byHash   map[uint64]slot
	overflow map[string]entry
	arena    [][]byte // chunks; only the last one has room
	n        int
}

// slot is where a sku's bytes are (chunk index and offset, length) and its
// entry.
type slot struct {
	chunk, off, len uint32
	entry
}

// entry is a sku's name id and the version of the record that set it.
type entry struct {
	name uint32
	ver  uint64
}

// arenaChunk is the size of one chunk of sku bytes. A sku longer than a
// chunk gets a chunk of its own.
const arenaChunk = 1 << 20

func newKeys() *keys {
	seed := maphash.MakeSeed()
	return &keys{
		hash:     func(b []byte) uint64 { return maphash.Bytes(seed, b) },
		byHash:   map[uint64]slot{},
		overflow: map[string]entry{},
	}
}

func (k *keys) len() int { return k.n }

func (k *keys) bytes(s slot) []byte { return k.arena[s.chunk][s.off : s.off+s.len] }

// get returns sku's entry.
func (k *keys) get(sku []byte) (entry, bool) {
	s, ok := k.byHash[k.hash(sku)]
	if !ok {
		return entry{}, false
	}
	if bytes.Equal(k.bytes(s), sku) {
		return s.entry, true
	}
	e, ok := k.overflow[string(sku)]
	return e, ok
}

// swap makes name sku's name id as of version ver, adding sku if it is new,
// and returns the id it had. A version at or below the one sku has changes
// nothing: newer is false then (a record replayed, or one older than the
// state it was loaded with).
func (k *keys) swap(sku []byte, name uint32, ver uint64) (old uint32, seen, newer bool) {
	h := k.hash(sku)
	s, ok := k.byHash[h]
	switch {
	case !ok:
		s = k.store(sku)
		s.entry = entry{name: name, ver: ver}
		k.byHash[h] = s
		k.n++
		return 0, false, true
	case bytes.Equal(k.bytes(s), sku):
		if ver <= s.ver {
			return s.name, true, false
		}
		old = s.name
		s.entry = entry{name: name, ver: ver}
		k.byHash[h] = s
		return old, true, true
	default: // another sku with the same hash
		e, seen := k.overflow[string(sku)]
		if seen && ver <= e.ver {
			return e.name, true, false
		}
		if !seen {
			k.n++
		}
		k.overflow[string(sku)] = entry{name: name, ver: ver}
		return e.name, seen, true
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
