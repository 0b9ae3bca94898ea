package aggregator

import "github.com/twmb/franz-go/pkg/kgo"

// names interns the aggregate's values (product names): many skus share a
// name, so each sku holds a small id instead of its own copy of the text.
type names struct {
	ids  map[string]uint32
	text []string
}

func newNames() *names { return &names{ids: map[string]uint32{}} }

// id returns the id of name s, which may be a reused buffer: it is copied
// only the first time it is seen.
func (n *names) id(s []byte) uint32 {
	if id, ok := n.ids[string(s)]; ok {
		return id
	}
	id := uint32(len(n.text))
	str := string(s)
	n.ids[str] = id
	n.text = append(n.text, str)
	return id
}

func (n *names) name(id uint32) string { return n.text[id] }

// partition is the state of one partition: every sku's current name and the
// number of skus per name.
type partition struct {
	names  *names
	skus   *keys            // sku -> name id
	counts map[uint32]int64 // name id -> skus with that name
	// dirty lists the names whose count changed since the last flush;
	// isDirty has their bits set.
	dirty   []uint32
	isDirty []uint64
	// replayUntil is the group's committed offset when the partition was
	// assigned: records before it only rebuild the state, the counts
	// written for them are already in ClickHouse.
	replayUntil int64
	// last is the offset of the last record applied, -1 before any.
	last int64
	// next is the offset to commit once the changes are written, when
	// committable: records past replayUntil were applied since.
	next        kgo.EpochOffset
	committable bool
}

func newPartition(n *names, replayUntil int64) *partition {
	return &partition{
		names: n, skus: newKeys(), counts: map[uint32]int64{},
		replayUntil: replayUntil, last: -1,
	}
}

// apply takes one record: sku now has name, as of offset. Records must come
// in offset order; a record at or below the last applied offset (a
// redelivery) changes nothing. sku and name may be reused buffers: they are
// copied when kept.
func (p *partition) apply(sku, name []byte, offset int64) {
	if offset <= p.last {
		return
	}
	p.last = offset
	id := p.names.id(name)
	old, seen := p.skus.swap(sku, id)
	switch {
	case !seen:
		p.counts[id]++
		p.touch(id, offset)
	case old != id:
		p.counts[old]--
		p.counts[id]++
		p.touch(old, offset)
		p.touch(id, offset)
	}
}

// touch marks a changed count for the next flush, unless the record is
// being replayed to rebuild the state.
func (p *partition) touch(id uint32, offset int64) {
	if offset < p.replayUntil {
		return
	}
	w, bit := int(id/64), uint64(1)<<(id%64)
	if w >= len(p.isDirty) {
		p.isDirty = append(p.isDirty, make([]uint64, w+1-len(p.isDirty))...)
	}
	if p.isDirty[w]&bit == 0 {
		p.isDirty[w] |= bit
		p.dirty = append(p.dirty, id)
	}
}

// replaying reports whether the partition has not yet reached the offset
// where it was assigned.
func (p *partition) replaying() bool { return p.last+1 < p.replayUntil }

// Count is one row of product_counts: the number of skus with Name in
// Partition, true as of Version (an offset of that partition).
type Count struct {
	Partition int32
	Name      string
	Count     int64
	Version   int64
}

// changes returns the counts changed since the last call, versioned by the
// last applied offset, and forgets them.
func (p *partition) changes(partition int32, dst []Count) []Count {
	for _, id := range p.dirty {
		dst = append(dst, Count{Partition: partition, Name: p.names.name(id), Count: p.counts[id], Version: p.last})
	}
	p.dirty = p.dirty[:0]
	clear(p.isDirty)
	return dst
}

// total returns the counts of every name, zeros included.
func (p *partition) total() map[string]int64 {
	out := make(map[string]int64, len(p.counts))
	for id, c := range p.counts {
		out[p.names.name(id)] = c
	}
	return out
}
