package aggregator

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// index against a plain map, with the real hash and with hashes that
// collide all the time, so that the overflow path is as exercised as the
// common one.
func TestIndex(t *testing.T) {
	for name, hash := range map[string]func([]byte) uint64{
		"maphash":          nil,
		"16 hashes":        func(b []byte) uint64 { return uint64(len(b)+int(b[len(b)-1])) % 16 },
		"one hash for all": func([]byte) uint64 { return 7 },
	} {
		t.Run(name, func(t *testing.T) {
			x := newIndex()
			if hash != nil {
				x.hash = hash
			}
			want := map[string]uint32{}
			for i := range 20000 {
				key := fmt.Sprintf("sku-%d", (i*7919)%5000)
				switch i % 1000 {
				case 999:
					key = strings.Repeat("long-", arenaChunk/4) + key // longer than a chunk
				case 998:
					key = strings.Repeat("x", spanLong-len(key)) + key // just as long as a span can say
				}
				id, seen := want[key]
				got, _, ok := x.find([]byte(key))
				if ok != seen || seen && got != id {
					t.Fatalf("find %d (%s): (%d, %v), want (%d, %v)", i, key[len(key)-8:], got, ok, id, seen)
				}
				if !seen {
					id = uint32(len(want))
					want[key] = id
				}
				if got := x.intern([]byte(key)); got != id {
					t.Fatalf("intern %d (%s): %d, want %d", i, key[len(key)-8:], got, id)
				}
			}
			if x.len() != len(want) {
				t.Fatalf("len %d, want %d", x.len(), len(want))
			}
			for key, id := range want {
				if got, _, ok := x.find([]byte(key)); !ok || got != id {
					t.Fatalf("find %s: (%d, %v), want %d", key[len(key)-8:], got, ok, id)
				}
				if string(x.bytes(id)) != key {
					t.Fatalf("bytes %d: %.20q, want %s", id, x.bytes(id), key[len(key)-8:])
				}
			}
			if _, _, ok := x.find([]byte("never-added")); ok {
				t.Fatal("a key never added was found")
			}
		})
	}
}

// The index holds no pointer per key: new keys add no allocation beyond
// the map's, the slice's and the arena's growth.
func TestIndexAllocs(t *testing.T) {
	x := newIndex()
	keys := make([][]byte, 100000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "word-word-%x", i)
	}
	i := 0
	allocs := testing.AllocsPerRun(len(keys)-1, func() {
		x.intern(keys[i])
		i++
	})
	if allocs > 0.05 {
		t.Errorf("%.3f allocations per new key", allocs)
	}
}

// Strings that fill every chunk to the byte, then the empty string: it
// must not take the offset one past a full 1 MiB chunk (which a span
// cannot hold, and which once made the next lookup of it panic), and
// every string must read back as itself.
func TestIndexFullChunks(t *testing.T) {
	x := newIndex()
	var all [][]byte
	for size := firstChunk; ; size = min(2*size, arenaChunk) {
		for range size / 1024 {
			b := fmt.Appendf(nil, "%08d", len(all))
			all = append(all, append(b, bytes.Repeat([]byte{'x'}, 1024-len(b))...))
			x.intern(all[len(all)-1])
		}
		if size == arenaChunk {
			break
		}
	}
	all = append(all, []byte{})
	x.intern(all[len(all)-1])
	check := func() {
		t.Helper()
		for i, b := range all {
			id, _, ok := x.find(b)
			if !ok || !bytes.Equal(x.bytes(id), b) {
				t.Fatalf("string %d (%d bytes): found %v, reads %q", i, len(b), ok, x.bytes(id))
			}
		}
	}
	check()
	all = append(all, []byte("after"))
	x.intern(all[len(all)-1])
	check()
}
