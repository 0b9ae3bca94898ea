package aggregator

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"testing"

	"skuflow/internal/kafka"
	"skuflow/schemas"
)

// productsPlan is the plan of the built-in products: count by name.
var productsPlan = mustPlan(schemas.Products)

func mustPlan(s *schemas.Schema) *plan {
	pl, err := newPlan(s)
	if err != nil {
		panic(err)
	}
	return pl
}

// applyName applies a record of products: sku has name as of ver.
func (p *partition) applyName(sku, name []byte, ver uint64) {
	p.apply(sku, [][]byte{name}, nil, ver)
}

// changed returns the rows of the first aggregate that changes reports.
func (p *partition) changed(partition int32) []change {
	dst := make([][]change, len(p.aggs))
	p.changes(partition, dst)
	return dst[0]
}

// total returns the first aggregate's count per group, zeros included.
func (p *partition) total() map[string]int64 {
	s := &p.aggs[0]
	out := make(map[string]int64, len(s.count))
	for id, c := range s.count {
		out[string(s.groups.bytes(uint32(id)))] = c
	}
	return out
}

// storedCounts is what reconcile takes for stored counts of the first
// aggregate.
func storedCounts(counts map[string]int64) []map[string]stored {
	out := map[string]stored{}
	for g, n := range counts {
		out[g] = stored{count: n}
	}
	return []map[string]stored{out}
}

func TestApply(t *testing.T) {
	p := productsPlan.newPartition()
	p.applyName([]byte("a"), []byte("X"), 1) // new sku
	p.applyName([]byte("b"), []byte("X"), 2) // new sku
	p.applyName([]byte("a"), []byte("X"), 3) // repeat: nothing
	p.applyName([]byte("b"), []byte("Y"), 4) // rename: X -> Y
	p.applyName([]byte("c"), []byte(""), 5)  // a sku without a name counts under ""
	p.applyName([]byte("b"), []byte("Z"), 4) // redelivery of an old version: ignored
	got := fmt.Sprint(p.total())
	if want := fmt.Sprint(map[string]int64{"X": 1, "Y": 1, "": 1}); got != want {
		t.Fatalf("counts %s, want %s", got, want)
	}
	ch := p.changed(7)
	if len(ch) != 3 {
		t.Fatalf("changes %+v", ch)
	}
	for _, c := range ch {
		if c.Partition != 7 || c.Version != 5 {
			t.Fatalf("change %+v: want partition 7, version 5 (the last applied)", c)
		}
	}
	if len(p.changed(7)) != 0 {
		t.Fatal("changes are reported once")
	}
}

// A state loaded from ClickHouse ignores the records it was loaded past,
// and reconcile writes the stored counts that differ from it.
func TestLoadedStateSkipsOlderRecords(t *testing.T) {
	p := productsPlan.newPartition()
	p.applyName([]byte("a"), []byte("Y"), 10) // loaded rows
	p.applyName([]byte("b"), []byte("Y"), 12)
	p.reconcile(storedCounts(map[string]int64{"X": 1, "Y": 2}), 20) // X is stale: a's old name, written at 20
	p.applyName([]byte("a"), []byte("X"), 9)                        // older than the loaded row: nothing
	ch := p.changed(0)
	// Above the stored counts' version: never a tie with a row before.
	if len(ch) != 1 || string(ch[0].Group) != "X" || ch[0].Count != 0 || ch[0].Version != 21 {
		t.Fatalf("changes %+v, want X 0 at version 21", ch)
	}
	p.applyName([]byte("b"), []byte("X"), 21)
	ch = p.changed(0)
	if len(ch) != 2 || fmt.Sprint(p.total()) != fmt.Sprint(map[string]int64{"X": 1, "Y": 1}) {
		t.Fatalf("changes %+v, total %v", ch, p.total())
	}
}

// record is one record of the simulated topic.
type record struct{ sku, name string }

type rowKey struct {
	partition int32
	name      string
}

// table models product_counts: a ReplacingMergeTree keeps, per key, the
// row with the highest version. Among rows of one version it keeps the
// first here, the opposite of what ClickHouse does in practice: the
// aggregator must never write two rows of one version for a name.
type table map[rowKey]change

func (tb table) insert(c change) {
	k := rowKey{c.Partition, string(c.Group)}
	old, ok := tb[k]
	if ok && c.Version == old.Version && c.Count != old.Count {
		panic(fmt.Sprintf("two counts of %q in partition %d at version %d: %d and %d", c.Group, c.Partition, c.Version, old.Count, c.Count))
	}
	if !ok || c.Version > old.Version {
		tb[k] = c
	}
}

// agg models products_agg: sums over partitions, zeros hidden.
func (tb table) agg() map[string]int64 {
	out := map[string]int64{}
	for _, c := range tb {
		out[string(c.Group)] += c.Count
	}
	for n, c := range out {
		if c == 0 {
			delete(out, n)
		}
	}
	return out
}

// TestPropertyCountsEqualLastNames drives the aggregator's state through
// random creates, renames and repeats on a few partitions, beside a model
// of the processor (the records table, FINAL) that runs ahead or behind,
// with crashes at any point (state lost, a write after the last commit
// possibly half done), compaction of the topic, and the topic recreated
// (offsets from 0 under a new incarnation). A crashed state is loaded as
// Assigned loads it: the records table's rows, read on from where they end,
// the stored counts reconciled. At the end the modelled products_agg equals
// the counts of the last name per sku in topic order.
func TestPropertyCountsEqualLastNames(t *testing.T) {
	type entry struct {
		record
		off  int64
		gone bool // removed by compaction
	}
	type row struct {
		name string
		ver  uint64
	}
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		nParts := 1 + rng.IntN(4)
		nNames := 1 + rng.IntN(6)
		inc := uint32(1)
		logs := make([][]entry, nParts)
		var skus []string
		truth := map[string]string{}               // sku -> last name, in topic order
		products := make([]map[string]row, nParts) // the records table, FINAL
		procNext := make([]int, nParts)            // index in logs of the processor's next record
		aggNext := make([]int64, nParts)           // offset the aggregator reads next
		tb := table{}
		states := make([]*partition, nParts)
		for p := range nParts {
			products[p] = map[string]row{}
		}
		load := func(p int) {
			st := productsPlan.newPartition()
			var top uint64
			for sku, r := range products[p] {
				st.applyName([]byte(sku), []byte(r.name), r.ver)
				top = max(top, r.ver)
			}
			aggNext[p] = 0
			if i, off := kafka.SplitVersion(top); i == inc && top > 0 {
				aggNext[p] = off + 1
			}
			stored, tops := map[string]int64{}, uint64(0)
			for k, c := range tb {
				if k.partition == int32(p) {
					stored[k.name] = c.Count
					tops = max(tops, c.Version)
				}
			}
			st.reconcile(storedCounts(stored), tops)
			states[p] = st
		}
		flush := func(p int, partial bool) {
			ch := states[p].changed(int32(p))
			if partial && len(ch) > 0 {
				ch = ch[:rng.IntN(len(ch))] // a crash mid-write
			}
			for _, c := range ch {
				tb.insert(c)
			}
		}
		for p := range nParts {
			load(p)
		}
		for range 100 + rng.IntN(400) {
			p := rng.IntN(nParts)
			switch op := rng.Float64(); {
			case op < 0.4: // produce a record
				var r record
				switch k := rng.Float64(); {
				case len(skus) == 0 || k < 0.4:
					r = record{fmt.Sprintf("sku-%d", len(skus)), fmt.Sprintf("name-%d", rng.IntN(nNames))}
					skus = append(skus, r.sku)
				default: // a rename or a repeat
					r = record{skus[rng.IntN(len(skus))], fmt.Sprintf("name-%d", rng.IntN(nNames))}
				}
				q := partitionOf(r.sku, nParts)
				logs[q] = append(logs[q], entry{record: r, off: int64(len(logs[q]))})
				truth[r.sku] = r.name
			case op < 0.55: // the processor loads some records
				for k := rng.IntN(6); k >= 0 && procNext[p] < len(logs[p]); k-- {
					e := logs[p][procNext[p]]
					procNext[p]++
					if !e.gone {
						products[p][e.sku] = row{e.name, kafka.Version(inc, e.off)}
					}
				}
			case op < 0.75: // the aggregator applies some records
				for _, e := range logs[p] {
					if e.off >= aggNext[p] && !e.gone && rng.IntN(4) > 0 {
						states[p].applyName([]byte(e.sku), []byte(e.name), kafka.Version(inc, e.off))
						aggNext[p] = e.off + 1
					} else if e.off >= aggNext[p] {
						break
					}
				}
			case op < 0.85: // flush (and commit)
				flush(p, false)
			case op < 0.92: // crash, perhaps mid-flush: the state is loaded again
				if rng.IntN(2) == 0 {
					flush(p, true)
				}
				load(p)
			case op < 0.97: // compaction: a key's older records go
				last := map[string]int64{}
				for _, e := range logs[p] {
					if !e.gone {
						last[e.sku] = e.off
					}
				}
				for i := range logs[p] {
					if e := &logs[p][i]; last[e.sku] != e.off {
						e.gone = true
					}
				}
			default: // the topic is recreated: every partition starts again
				// after the services drained what they held.
				for q := range nParts {
					for ; procNext[q] < len(logs[q]); procNext[q]++ {
						if e := logs[q][procNext[q]]; !e.gone {
							products[q][e.sku] = row{e.name, kafka.Version(inc, e.off)}
						}
					}
				}
				inc++
				for q := range nParts {
					logs[q], procNext[q] = nil, 0
				}
				for q := range nParts {
					load(q)
				}
			}
		}
		// Everything caught up.
		for p := range nParts {
			for _, e := range logs[p] {
				if e.off >= aggNext[p] && !e.gone {
					states[p].applyName([]byte(e.sku), []byte(e.name), kafka.Version(inc, e.off))
				}
			}
			flush(p, false)
		}
		want := map[string]int64{}
		for _, name := range truth {
			want[name]++
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
