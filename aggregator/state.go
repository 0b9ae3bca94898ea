package aggregator

// names interns the aggregate's values (product names): many skus share a
// name, so each sku holds a small id instead of its own copy of the text.
type names struct {
	ids  map[string]uint32
	text []string
}

func newNames() *names { return &names{ids: map[string]uint32{}} }

func (n *names) id(s string) uint32 {
	if id, ok := n.ids[s]; ok {
		return id
	}
	id := uint32(len(n.text))
	n.ids[s] = id
	n.text = append(n.text, s)
	return id
}

func (n *names) name(id uint32) string { return n.text[id] }

// partition is the state of one partition: every sku's current name and the
// number of skus per name.
type partition struct {
	names  *names
	skus   map[string]uint32 // sku -> name id
	counts map[uint32]int64  // name id -> skus with that name
	dirty  map[uint32]bool   // names whose count changed since the last flush
	// replayUntil is the group's committed offset when the partition was
	// assigned: records before it only rebuild the state, the counts
	// written for them are already in ClickHouse.
	replayUntil int64
	// last is the offset of the last record applied, -1 before any.
	last int64
}

func newPartition(n *names, replayUntil int64) *partition {
	return &partition{
		names: n, skus: map[string]uint32{}, counts: map[uint32]int64{}, dirty: map[uint32]bool{},
		replayUntil: replayUntil, last: -1,
	}
}

// apply takes one record: sku now has name, as of offset. Records must come
// in offset order; a record at or below the last applied offset (a
// redelivery) changes nothing. sku is kept: it must not alias a buffer that
// is reused.
func (p *partition) apply(sku, name string, offset int64) {
	if offset <= p.last {
		return
	}
	p.last = offset
	id := p.names.id(name)
	old, seen := p.skus[sku]
	switch {
	case !seen:
		p.skus[sku] = id
		p.counts[id]++
		p.touch(id, offset)
	case old != id:
		p.skus[sku] = id
		p.counts[old]--
		p.counts[id]++
		p.touch(old, offset)
		p.touch(id, offset)
	}
}

// touch marks a changed count for the next flush, unless the record is
// being replayed to rebuild the state.
func (p *partition) touch(id uint32, offset int64) {
	if offset >= p.replayUntil {
		p.dirty[id] = true
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
	for id := range p.dirty {
		dst = append(dst, Count{Partition: partition, Name: p.names.name(id), Count: p.counts[id], Version: p.last})
	}
	clear(p.dirty)
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
