package aggregator

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"testing"
)

func TestApply(t *testing.T) {
	p := newPartition(newNames(), 0)
	p.apply([]byte("a"), []byte("X"), 0) // new sku
	p.apply([]byte("b"), []byte("X"), 1) // new sku
	p.apply([]byte("a"), []byte("X"), 2) // repeat: nothing
	p.apply([]byte("b"), []byte("Y"), 3) // rename: X -> Y
	p.apply([]byte("c"), []byte(""), 4)  // a sku without a name counts under ""
	p.apply([]byte("b"), []byte("Z"), 3) // redelivery of an old offset: ignored
	got := fmt.Sprint(p.total())
	if want := fmt.Sprint(map[string]int64{"X": 1, "Y": 1, "": 1}); got != want {
		t.Fatalf("counts %s, want %s", got, want)
	}
	ch := p.changes(7, nil)
	if len(ch) != 3 {
		t.Fatalf("changes %+v", ch)
	}
	for _, c := range ch {
		if c.Partition != 7 || c.Version != 4 {
			t.Fatalf("change %+v: want partition 7, version 4 (the last offset)", c)
		}
	}
	if len(p.changes(7, nil)) != 0 {
		t.Fatal("changes are reported once")
	}
}

func TestReplayRebuildsWithoutChanges(t *testing.T) {
	p := newPartition(newNames(), 3)
	p.apply([]byte("a"), []byte("X"), 0)
	p.apply([]byte("a"), []byte("Y"), 1)
	p.apply([]byte("b"), []byte("Y"), 2)
	if !p.replaying() == true && p.last+1 < 3 {
		t.Fatal("replaying")
	}
	if c := p.changes(0, nil); len(c) != 0 {
		t.Fatalf("a replay must not write counts: %+v", c)
	}
	if p.replaying() {
		t.Fatal("still replaying after offset 2 with replayUntil 3")
	}
	p.apply([]byte("b"), []byte("X"), 3)
	c := p.changes(0, nil)
	if len(c) != 2 || fmt.Sprint(p.total()) != fmt.Sprint(map[string]int64{"X": 1, "Y": 1}) {
		t.Fatalf("changes %+v, total %v", c, p.total())
	}
}

// record is one record of the simulated topic.
type record struct{ sku, name string }

type rowKey struct {
	partition int32
	name      string
}

// table models product_counts: a ReplacingMergeTree keeps, per key, the
// row with the highest version (the last inserted among equal ones).
type table map[rowKey]Count

func (tb table) insert(c Count) {
	if old, ok := tb[rowKey{c.Partition, c.Name}]; !ok || c.Version >= old.Version {
		tb[rowKey{c.Partition, c.Name}] = c
	}
}

// agg models products_agg: sums over partitions, zeros hidden.
func (tb table) agg() map[string]int64 {
	out := map[string]int64{}
	for _, c := range tb {
		out[c.Name] += c.Count
	}
	for n, c := range out {
		if c == 0 {
			delete(out, n)
		}
	}
	return out
}

// TestPropertyCountsEqualLastNames drives the state through random
// creates, renames and repeats on a few partitions, with crashes at any
// point (state lost, writes after the last commit possibly half done) and
// rebuilds by replay from the committed offset, and checks that the
// modelled products_agg equals the counts recomputed from the last name per
// sku.
func TestPropertyCountsEqualLastNames(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		nParts := 1 + rng.IntN(4)
		logs := make([][]record, nParts)
		var skus []string
		nNames := 1 + rng.IntN(6)
		for range 50 + rng.IntN(300) {
			var r record
			switch op := rng.Float64(); {
			case len(skus) == 0 || op < 0.4: // create
				r = record{fmt.Sprintf("sku-%d", len(skus)), fmt.Sprintf("name-%d", rng.IntN(nNames))}
				skus = append(skus, r.sku)
			case op < 0.7: // rename (or repeat, when the name drawn is the same)
				r = record{skus[rng.IntN(len(skus))], fmt.Sprintf("name-%d", rng.IntN(nNames))}
			default: // repeat the sku's last record
				sku := skus[rng.IntN(len(skus))]
				p := partitionOf(sku, nParts)
				for i := len(logs[p]) - 1; i >= 0; i-- {
					if logs[p][i].sku == sku {
						r = logs[p][i]
						break
					}
				}
			}
			p := partitionOf(r.sku, nParts)
			logs[p] = append(logs[p], r)
		}

		tb := table{}
		n := newNames()
		committed := make([]int64, nParts)
		states := make([]*partition, nParts)
		next := make([]int64, nParts) // next offset to read
		for p := range nParts {
			states[p] = newPartition(n, 0)
		}
		flush := func(p int, partial bool) {
			ch := states[p].changes(int32(p), nil)
			if partial && len(ch) > 0 {
				ch = ch[:rng.IntN(len(ch))] // a crash mid-write
			}
			for _, c := range ch {
				tb.insert(c)
			}
		}
		for {
			live := []int{}
			for p := range nParts {
				if next[p] < int64(len(logs[p])) {
					live = append(live, p)
				}
			}
			if len(live) == 0 {
				break
			}
			p := live[rng.IntN(len(live))]
			for k := rng.IntN(5); k >= 0 && next[p] < int64(len(logs[p])); k-- {
				r := logs[p][next[p]]
				states[p].apply([]byte(r.sku), []byte(r.name), next[p])
				next[p]++
			}
			switch op := rng.Float64(); {
			case op < 0.3: // flush and commit
				flush(p, false)
				committed[p] = next[p]
			case op < 0.4: // flush, crash before the commit
				flush(p, rng.IntN(2) == 0)
				fallthrough
			case op < 0.45: // crash: the state is rebuilt by replaying
				// the partition up to the committed offset.
				states[p] = newPartition(n, committed[p])
				for next[p] = 0; next[p] < committed[p]; next[p]++ {
					r := logs[p][next[p]]
					states[p].apply([]byte(r.sku), []byte(r.name), next[p])
				}
				if c := states[p].changes(int32(p), nil); len(c) != 0 {
					t.Fatalf("seed %d: a rebuild wrote counts %+v", seed, c)
				}
			}
		}
		for p := range nParts {
			flush(p, false)
		}

		want := map[string]int64{}
		for _, log := range logs {
			last := map[string]string{}
			for _, r := range log {
				last[r.sku] = r.name
			}
			for _, name := range last {
				want[name]++
			}
		}
		if got := tb.agg(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d: products_agg %v, recomputed from the last name per sku %v", seed, got, want)
		}
	}
}

func partitionOf(sku string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(sku))
	return int(h.Sum32() % uint32(n))
}
