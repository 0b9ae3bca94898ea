package aggregator

import (
	"fmt"
	"strings"
	"testing"
)

// keys against a plain map, with the real hash and with hashes that collide
// all the time, so that the overflow path is as exercised as the common one.
func TestKeys(t *testing.T) {
	for name, hash := range map[string]func([]byte) uint64{
		"maphash":          nil,
		"16 hashes":        func(b []byte) uint64 { return uint64(len(b)+int(b[len(b)-1])) % 16 },
		"one hash for all": func([]byte) uint64 { return 7 },
	} {
		t.Run(name, func(t *testing.T) {
			k := newKeys()
			if hash != nil {
				k.hash = hash
			}
			want := map[string]uint32{}
			for i := range 20000 {
				sku := fmt.Sprintf("sku-%d", (i*7919)%5000)
				if i%1000 == 999 {
					sku = strings.Repeat("long-", arenaChunk/4) + sku // longer than a chunk
				}
				name := uint32(i % 13)
				old, seen, newer := k.swap([]byte(sku), name, uint64(i+1))
				wantOld, wantSeen := want[sku]
				if seen != wantSeen || seen && old != wantOld || !newer {
					t.Fatalf("swap %d (%s): (%d, %v, %v), want (%d, %v, true)", i, sku[len(sku)-8:], old, seen, newer, wantOld, wantSeen)
				}
				// The same or an older version again changes nothing.
				if old, _, newer := k.swap([]byte(sku), name+1, uint64(i+1)); newer || old != name {
					t.Fatalf("swap %d (%s) again: (%d, %v), want (%d, false)", i, sku[len(sku)-8:], old, newer, name)
				}
				want[sku] = name
			}
			if k.len() != len(want) {
				t.Fatalf("len %d, want %d", k.len(), len(want))
			}
			for sku, name := range want {
				if got, ok := k.get([]byte(sku)); !ok || got.name != name {
					t.Fatalf("get %s: (%d, %v), want %d", sku[len(sku)-8:], got.name, ok, name)
				}
			}
			if _, ok := k.get([]byte("never-added")); ok {
				t.Fatal("a sku never added was found")
			}
		})
	}
}

// The state holds no pointer per sku: new skus add no allocation
// beyond the map's and the arena's growth.
func TestKeysAllocs(t *testing.T) {
	k := newKeys()
	skus := make([][]byte, 100000)
	for i := range skus {
		skus[i] = fmt.Appendf(nil, "word-word-%x", i)
	}
	i := 0
	allocs := testing.AllocsPerRun(len(skus)-1, func() {
		k.swap(skus[i], uint32(i%100), uint64(i))
		i++
	})
	if allocs > 0.05 {
		t.Errorf("%.3f allocations per new sku", allocs)
	}
}
