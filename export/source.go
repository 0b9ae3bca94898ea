package export

import (
	"fmt"
	"strings"

	"skuflow/internal/clickhouse"
	"skuflow/schemas"
)

// Source is what an export reads: a record type's current rows (its table
// with FINAL: one row per key, the last write) or an aggregate's view, in
// key order.
type Source struct {
	// Name is the type's or the aggregate's: it names the files.
	Name string
	// db and from are the database and the table or view read.
	db, from string
	// final reads from with FINAL.
	final bool
	// columns are those written, in order; nil writes every column of
	// from.
	columns []string
	// declared holds the declared type of a type's columns, for what the
	// ClickHouse type does not say (Bool, Timestamp).
	declared map[string]schemas.ColumnType
	orderBy  []string
	// versioned sources can be exported incrementally: their rows carry
	// _partition and _version.
	versioned bool
}

// TypeSource exports record type s's current rows: its declared columns,
// its extra column, its identity columns (identity: source), and
// _version, which tells the latest of a key's rows across incremental
// parts.
func TypeSource(db string, s *schemas.Schema) Source {
	src := Source{Name: s.Name, db: db, from: s.Name, final: true, declared: map[string]schemas.ColumnType{},
		orderBy: s.OrderBy(), versioned: true}
	for _, c := range s.Columns {
		src.columns = append(src.columns, c.Name)
		src.declared[c.Name] = c.Type
	}
	src.columns = append(src.columns, s.Extra)
	if s.Identity {
		for _, c := range schemas.IdentityColumns {
			src.columns = append(src.columns, c.Name)
		}
	}
	src.columns = append(src.columns, schemas.VersionColumn)
	return src
}

// AggregateSource exports aggregate a of s: its view, every group with its
// value, in group order.
func AggregateSource(db string, s *schemas.Schema, a *schemas.Aggregate) Source {
	src := Source{Name: a.Name, db: db, from: a.Name, declared: map[string]schemas.ColumnType{}, orderBy: a.By}
	for _, b := range a.By {
		if c, ok := s.Column(b); ok {
			src.declared[b] = c.Type
		}
	}
	return src
}

// Versioned reports whether the source can be exported incrementally.
func (s Source) Versioned() bool { return s.versioned }

// bounds limits an incremental export to versions from[p] <= v <= to[p]
// in partition p, for the partitions in to.
type bounds struct{ from, to map[int32]uint64 }

// query is the SELECT of the export. The filters apply to the current
// rows: a filter applied to a key's versions before FINAL picks the last
// would export a row that is no longer current (as PREWHERE with FINAL did
// in some ClickHouse releases). 18.16 gets it right as it is (checked:
// TestWhereAppliesToCurrentRows passes without the settings); FINAL is
// still taken in a subquery and the optimizer told not to move the filter
// into it, so that no release's optimizer can.
func (s Source) query(where string, b *bounds) string {
	cols := "*"
	if s.columns != nil {
		q := make([]string, len(s.columns))
		for i, c := range s.columns {
			q[i] = clickhouse.Ident(c)
		}
		cols = strings.Join(q, ", ")
	}
	inner := fmt.Sprintf("SELECT * FROM %s", clickhouse.Table(s.db, s.from))
	if s.final {
		inner += " FINAL"
	}
	var conds []string
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	if b != nil {
		conds = append(conds, b.condition())
	}
	q := fmt.Sprintf("SELECT %s FROM (%s)", cols, inner)
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	order := make([]string, len(s.orderBy))
	for i, c := range s.orderBy {
		order[i] = clickhouse.Ident(c)
	}
	if len(order) > 0 {
		q += " ORDER BY " + strings.Join(order, ", ")
	}
	// Blocks of 8,192 rows rather than 65,536: the loader holds one block
	// as read and one as scanned, and a smaller block keeps that to a few
	// MB of records (measured: the same rows/s).
	return q + " SETTINGS enable_optimize_predicate_expression = 0, optimize_move_to_prewhere = 0, max_block_size = 8192"
}

// condition is the WHERE of the bounds: each partition's versions within
// its range, and no partition outside them (one that got its first rows
// after the export started waits for the next).
func (b *bounds) condition() string {
	if len(b.to) == 0 {
		return "0"
	}
	var parts, froms, tos []string
	for _, p := range sortedPartitions(b.to) {
		parts = append(parts, fmt.Sprint(p))
		froms = append(froms, fmt.Sprint(b.from[p]))
		tos = append(tos, fmt.Sprint(b.to[p]))
	}
	ps := "CAST([" + strings.Join(parts, ", ") + "] AS Array(UInt32))"
	vs := func(v []string) string { return "CAST([" + strings.Join(v, ", ") + "] AS Array(UInt64))" }
	return fmt.Sprintf("has(%s, _partition) AND _version >= transform(_partition, %s, %s, toUInt64(0)) AND _version <= transform(_partition, %s, %s, toUInt64(0))",
		ps, ps, vs(froms), ps, vs(tos))
}
