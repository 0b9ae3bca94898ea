package aggregator

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/schemas"
)

// plan is what the aggregator needs of a schema, worked out once: where a
// key and each aggregate's group and summed value come from, in a record
// and in the rows loaded from ClickHouse. Every record type goes through
// it; there is no per-type code.
type plan struct {
	schema *schemas.Schema
	// load lists the columns a partition's rows are loaded with, each read
	// as toString: the columns that identify a row (Schema.OrderBy), then
	// every By and summed column not among them. nKey is how many of the
	// first identify it.
	load []schemas.Column
	nKey int
	aggs []aggPlan
}

// aggPlan is one aggregate's part of the plan.
type aggPlan struct {
	*schemas.Aggregate
	by []schemas.Column
	// missing holds, per By column, the canonical text of the value a
	// record without one is stored with (the type's default: By columns
	// are never nullable).
	missing [][]byte
	// byAt and sumAt are the places of the By and summed columns in load;
	// sumAt is -1 for a count.
	byAt  []int
	sum   schemas.Column
	sumAt int
}

func (a *aggPlan) sums() bool { return a.sumAt >= 0 }

func newPlan(s *schemas.Schema) (*plan, error) {
	p := &plan{schema: s}
	at := func(c schemas.Column) int {
		for i, l := range p.load {
			if l.Name == c.Name {
				return i
			}
		}
		p.load = append(p.load, c)
		return len(p.load) - 1
	}
	column := func(name string) (schemas.Column, error) {
		c, ok := s.Column(name)
		if !ok {
			return c, fmt.Errorf("type %s: %q is not a column", s.Name, name)
		}
		return c, nil
	}
	if s.Identity {
		for _, c := range schemas.IdentityColumns {
			at(c)
		}
	} else {
		for _, k := range s.Key {
			c, err := column(k)
			if err != nil {
				return nil, err
			}
			at(c)
		}
	}
	p.nKey = len(p.load)
	for i := range s.Aggregates {
		a := aggPlan{Aggregate: &s.Aggregates[i], sumAt: -1}
		for _, b := range a.By {
			c, err := column(b)
			if err != nil {
				return nil, err
			}
			a.by = append(a.by, c)
			a.missing = append(a.missing, missingText(c.Type))
			a.byAt = append(a.byAt, at(c))
		}
		if a.Sum != "" {
			c, err := column(a.Sum)
			if err != nil {
				return nil, err
			}
			if !c.Type.Integer() {
				return nil, fmt.Errorf("type %s: aggregate %s sums %s, which is %s, not an integer", s.Name, a.Name, c.Name, c.Type)
			}
			a.sum, a.sumAt = c, at(c)
		}
		p.aggs = append(p.aggs, a)
	}
	return p, nil
}

// missingText is the canonical text of what a non-nullable column of type
// t holds for a record without a value: what the processor inserts
// (schemas.Vector) and toString reads back.
func missingText(t schemas.ColumnType) []byte {
	switch t {
	case schemas.String:
		return []byte{}
	case schemas.Date:
		return []byte("1970-01-01")
	case schemas.DateTime:
		return []byte("1970-01-01 00:00:00")
	case schemas.Timestamp:
		return []byte("1970-01-01 00:00:00.000")
	}
	return []byte("0")
}

// parseSum reads the canonical text of a summed value. A UInt64 above
// the largest Int64 keeps its bits: sums are exact modulo 2^64, as
// ClickHouse's sums of the column are.
func parseSum(t schemas.ColumnType, text []byte) (int64, error) {
	if t == schemas.UInt64 {
		n, err := strconv.ParseUint(string(text), 10, 64)
		return int64(n), err
	}
	return strconv.ParseInt(string(text), 10, 64)
}

// A group is the By values' canonical texts, encoded so that two
// different lists of texts never give the same bytes: each text but the
// last is preceded by its length (uvarint); the last is as it is, so that
// a group of one column (products' name) is just its text.

// appendGroupText appends the i-th of n texts of a group.
func appendGroupText(dst []byte, i, n int, text []byte) []byte {
	if i < n-1 {
		dst = binary.AppendUvarint(dst, uint64(len(text)))
	}
	return append(dst, text...)
}

// splitGroup appends the n texts of group g to texts (slices of g).
func splitGroup(g []byte, n int, texts [][]byte) [][]byte {
	for range n - 1 {
		l, k := binary.Uvarint(g)
		g = g[k:]
		texts = append(texts, g[:l])
		g = g[l:]
	}
	return append(texts, g)
}

// identityKey appends the key the state holds for a record of an Identity
// schema: the number of its file (the partition numbers the files it has
// seen) and its offset in it, both as uvarints. A few bytes rather than
// the 64 hex digits of the Kafka key (<sha256>/<offset>), to which it
// corresponds one to one.
func (p *partition) identityKey(dst, file []byte, offset uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(p.files.intern(file)))
	return binary.AppendUvarint(dst, offset)
}

// partition is the state of one partition: every key's version (of the
// record that set it) and, per aggregate, its group and summed value, and
// per group the number of keys in it and their sum.
type partition struct {
	plan *plan
	// keys numbers the keys; ver and each aggregate's slices are by that
	// number.
	keys index
	ver  []uint64
	// files numbers the files of an Identity schema's keys.
	files index
	aggs  []aggState
	// last is the highest version the state holds, loaded or applied.
	last uint64
	// written is the highest version a partial result of the partition
	// was written at, by this member or (as loaded) before it. Each write
	// takes a version above it and at least last, so that a row of a
	// group never ties with one written before it: which of two rows of
	// one version FINAL keeps is not something to rest on.
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
	// oldest is the Kafka timestamp (Unix nanoseconds) of the oldest
	// record taken since the last write, 0 for none: the data age.
	oldest int64
}

// aggState is one aggregate's state in a partition.
type aggState struct {
	sums bool
	// group and value are by key number: the key's group, and (sums
	// only) its summed value.
	group []uint32
	value []int64
	// groups numbers the groups; count and total are by group number: the
	// keys in it, and (sums only) the sum of their values.
	groups index
	count  []int64
	total  []int64
	// dirty lists the groups changed since the last flush; isDirty has
	// their bits set.
	dirty   []uint32
	isDirty []uint64
}

func (pl *plan) newPartition() *partition {
	p := &partition{plan: pl, keys: newIndex(), aggs: make([]aggState, len(pl.aggs))}
	if pl.schema.Identity {
		p.files = newIndex()
	}
	for i := range pl.aggs {
		p.aggs[i] = aggState{sums: pl.aggs[i].sums(), groups: newIndex()}
	}
	return p
}

// apply takes one record: key has, as of version ver, per aggregate the
// group groups[i] and (for a sum) the value sums[i]. A version at or below
// the one the key has (a redelivery, or a record that the state was loaded
// past) changes nothing. key and groups may be reused buffers: they are
// copied when kept.
func (p *partition) apply(key []byte, groups [][]byte, sums []int64, ver uint64) {
	i, h, seen := p.keys.find(key)
	if seen {
		if ver <= p.ver[i] {
			return
		}
		p.ver[i] = ver
	} else {
		i = p.keys.add(key, h)
		p.ver = append(p.ver, ver)
	}
	p.last = max(p.last, ver)
	for a := range p.aggs {
		s := &p.aggs[a]
		g := s.intern(groups[a])
		var v int64
		if s.sums {
			v = sums[a]
		}
		if !seen {
			s.group = append(s.group, g)
			s.count[g]++
			if s.sums {
				s.value = append(s.value, v)
				s.total[g] += v
			}
			s.touch(g)
			continue
		}
		old := s.group[i]
		if s.sums {
			was := s.value[i]
			if old == g && was == v {
				continue
			}
			s.value[i] = v
			s.total[old] -= was
			s.total[g] += v
		} else if old == g {
			continue
		}
		s.group[i] = g
		s.count[old]--
		s.count[g]++
		s.touch(old)
		s.touch(g)
	}
}

// intern returns group g's number, adding it with nothing in it.
func (s *aggState) intern(g []byte) uint32 {
	id, h, ok := s.groups.find(g)
	if ok {
		return id
	}
	id = s.groups.add(g, h)
	s.count = append(s.count, 0)
	if s.sums {
		s.total = append(s.total, 0)
	}
	return id
}

// touch marks a changed group for the next flush.
func (s *aggState) touch(id uint32) {
	w, bit := int(id/64), uint64(1)<<(id%64)
	if w >= len(s.isDirty) {
		s.isDirty = append(s.isDirty, make([]uint64, w+1-len(s.isDirty))...)
	}
	if s.isDirty[w]&bit == 0 {
		s.isDirty[w] |= bit
		s.dirty = append(s.dirty, id)
	}
}

func (s *aggState) clean() {
	s.dirty = s.dirty[:0]
	clear(s.isDirty)
}

// stored is a group's row in an aggregate's table, as FINAL reads it.
type stored struct{ count, total int64 }

// reconcile marks for the next flush every group whose row in ClickHouse
// (stored, per aggregate by group; version the highest among the
// partition's rows) differs from the state's, after the state was
// loaded: a crash may have left the stored rows behind or ahead of the
// records they are computed from.
func (p *partition) reconcile(rows []map[string]stored, version uint64) {
	p.written = max(p.written, version)
	for a := range p.aggs {
		s := &p.aggs[a]
		s.clean() // what loading marked
		for g, r := range rows[a] {
			id, _, ok := s.groups.find([]byte(g))
			if !ok {
				if r == (stored{}) {
					continue
				}
				id = s.intern([]byte(g))
			}
			if s.count[id] != r.count || s.sums && s.total[id] != r.total {
				s.touch(id)
			}
		}
		for id, n := range s.count {
			if _, ok := rows[a][string(s.groups.bytes(uint32(id)))]; !ok && n != 0 {
				s.touch(uint32(id))
			}
		}
	}
}

// change is one row of an aggregate's table: the number of keys in Group
// (and the sum of their values) in Partition, true as of Version (a row
// version: internal/kafka.Version).
type change struct {
	Partition int32
	Group     []byte
	Count     int64
	Total     int64
	Version   uint64
}

// changes appends, per aggregate, the groups changed since the last call,
// all at one version, above every version written before and at least
// the highest the state holds, and forgets them.
func (p *partition) changes(partition int32, dst [][]change) {
	dirty := false
	for a := range p.aggs {
		dirty = dirty || len(p.aggs[a].dirty) > 0
	}
	if !dirty {
		return
	}
	v := max(p.last, p.written+1)
	p.written = v
	for a := range p.aggs {
		s := &p.aggs[a]
		for _, id := range s.dirty {
			c := change{Partition: partition, Group: s.groups.bytes(id), Count: s.count[id], Version: v}
			if s.sums {
				c.Total = s.total[id]
			}
			dst[a] = append(dst[a], c)
		}
		s.clean()
	}
}

// rowLoader applies rows of the records table, as the load query reads
// them (toString of the plan's load columns, in order, and the row's
// version), to a partition's state. It keeps its buffers across rows.
type rowLoader struct {
	plan   *plan
	key    []byte
	buf    []byte
	groups [][]byte
	sums   []int64
}

func (l *rowLoader) apply(p *partition, texts [][]byte, ver uint64) error {
	pl := l.plan
	if pl.schema.Identity {
		off, err := strconv.ParseUint(string(texts[1]), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %s %q is not an offset", pl.schema.Name, pl.load[1].Name, texts[1])
		}
		l.key = p.identityKey(l.key[:0], texts[0], off)
	} else {
		l.key = pl.schema.AppendKeyFromTexts(l.key[:0], texts[:pl.nKey])
	}
	l.buf, l.groups, l.sums = l.buf[:0], l.groups[:0], l.sums[:0]
	var ends [8]int
	end := ends[:0]
	for a := range pl.aggs {
		ap := &pl.aggs[a]
		for i, at := range ap.byAt {
			l.buf = appendGroupText(l.buf, i, len(ap.byAt), texts[at])
		}
		end = append(end, len(l.buf))
		var v int64
		if ap.sums() {
			var err error
			if v, err = parseSum(ap.sum.Type, texts[ap.sumAt]); err != nil {
				return fmt.Errorf("%s: %s %q is not a %s", pl.schema.Name, ap.sum.Name, texts[ap.sumAt], ap.sum.Type)
			}
		}
		l.sums = append(l.sums, v)
	}
	start := 0
	for _, e := range end {
		l.groups = append(l.groups, l.buf[start:e])
		start = e
	}
	p.apply(l.key, l.groups, l.sums, ver)
	return nil
}
