package clickhouse

import (
	"fmt"
	"strings"

	"skuflow/schemas"
)

// AggregateDiff returns the query that compares aggregate a of type s with
// its definition: the view users query against the same count or sum over
// the type's rows FINAL (invariant 3). It yields one row per group where
// they differ: the group's columns as text (String), the view's value and FINAL's
// (Int64, 0 where one has no such group), in group order, at most limit rows
// (none: every row). Values are compared as Int64 (a UInt64 sum wraps the
// same way on both sides).
func AggregateDiff(db string, s *schemas.Schema, a *schemas.Aggregate, limit int) string {
	keys := make([]string, len(a.By))
	view := make([]string, len(a.By))
	final := make([]string, len(a.By))
	group := make([]string, len(a.By))
	for i, b := range a.By {
		// Aliases other than the columns' names: 18.16 takes
		// toString(x) AS x for a cyclic alias.
		keys[i] = fmt.Sprintf("k%d", i)
		// A NULL group shows as \N, as in ClickHouse's TSV.
		view[i] = fmt.Sprintf("ifNull(toString(%s), '\\\\N') AS k%d", Ident(b), i)
		final[i] = view[i]
		group[i] = Ident(b)
	}
	of := "count()"
	if !a.Counts() {
		of = fmt.Sprintf("sum(%s)", Ident(a.Sum))
	}
	k := strings.Join(keys, ", ")
	q := fmt.Sprintf("SELECT %[1]s, sum(v), sum(f) FROM ("+
		"SELECT %[2]s, toInt64(%[3]s) AS v, toInt64(0) AS f FROM %[4]s "+
		"UNION ALL "+
		"SELECT %[5]s, toInt64(0) AS v, toInt64(%[6]s) AS f FROM %[7]s FINAL GROUP BY %[8]s"+
		") GROUP BY %[1]s HAVING sum(v) != sum(f) ORDER BY %[1]s",
		k, strings.Join(view, ", "), Ident(a.As), Table(db, a.Name),
		strings.Join(final, ", "), of, Table(db, s.Name), strings.Join(group, ", "))
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	return q
}
