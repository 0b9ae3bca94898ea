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

// partition is the state of one partition: every sku's current name (with
// the version of the record that set it) and the number of skus per name.
type partition struct {
	names  *names
	skus   *keys            // sku -> name id, version
	counts map[uint32]int64 // name id -> skus with that name
	// dirty lists the names whose count changed since the last flush;
	// isDirty has their bits set.
	dirty   []uint32
	isDirty []uint64
	// last is the highest version the state holds, loaded or applied.
	last uint64
	// written is the highest version a count of the partition was
	// written at, by this member or (as loaded) before it. Each write
	// takes a version above it and at least last, so that a count row
	// never ties with one written before it: which of two rows of one
	// version FINAL keeps is not something to rest on.
	written uint64
	// committed is the group's committed offset when the partition was
	// assigned: the member reads from where ClickHouse's rows end, which
	// may be before it, and commits nothing below it (that would move the
	// group backwards).
	committed int64
	// next is the offset to commit once the changes are written, when
	// committable.
	next        kgo.EpochOffset
	committable bool
}

func newPartition(n *names) *partition {
	return &partition{names: n, skus: newKeys(), counts: map[uint32]int64{}}
}

// apply takes one record: sku has name as of version ver. A version at or
// below the one the sku has (a redelivery, or a record that the state was
// loaded past) changes nothing. sku and name may be reused buffers: they
// are copied when kept.
func (p *partition) apply(sku, name []byte, ver uint64) {
	id := p.names.id(name)
	old, seen, newer := p.skus.swap(sku, id, ver)
	if !newer {
		return
	}
	p.last = max(p.last, ver)
	switch {
	case !seen:
		p.counts[id]++
		p.touch(id)
	case old != id:
		p.counts[old]--
		p.counts[id]++
		p.touch(old)
		p.touch(id)
	}
}

// touch marks a changed count for the next flush.
func (p *partition) touch(id uint32) {
	w, bit := int(id/64), uint64(1)<<(id%64)
	if w >= len(p.isDirty) {
		p.isDirty = append(p.isDirty, make([]uint64, w+1-len(p.isDirty))...)
	}
	if p.isDirty[w]&bit == 0 {
		p.isDirty[w] |= bit
		p.dirty = append(p.dirty, id)
	}
}

// reconcile marks for the next flush every name whose count in ClickHouse
// (stored, with the highest version among them) differs from the state's,
// after the state was loaded: a crash may have left the stored counts
// behind or ahead of the rows they are counted from.
func (p *partition) reconcile(stored map[string]int64, version uint64) {
	p.written = max(p.written, version)
	p.dirty = p.dirty[:0] // what loading marked
	clear(p.isDirty)
	for name, n := range stored {
		id := p.names.id([]byte(name))
		if p.counts[id] != n {
			p.touch(id)
		}
	}
	for id, n := range p.counts {
		if _, ok := stored[p.names.name(id)]; !ok && n != 0 {
			p.touch(id)
		}
	}
}

// Count is one row of product_counts: the number of skus with Name in
// Partition, true as of Version (a row version: internal/kafka.Version).
type Count struct {
	Partition int32
	Name      string
	Count     int64
	Version   uint64
}

// changes returns the counts changed since the last call, all at one
// version, above every version written before and at least the highest the
// state holds, and forgets them.
func (p *partition) changes(partition int32, dst []Count) []Count {
	if len(p.dirty) == 0 {
		return dst
	}
	v := max(p.last, p.written+1)
	p.written = v
	for _, id := range p.dirty {
		dst = append(dst, Count{Partition: partition, Name: p.names.name(id), Count: p.counts[id], Version: v})
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
