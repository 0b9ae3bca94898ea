package schemas

import (
	"fmt"
	"strings"
)

// Provenance columns every table of records carries, so that each row can
// be traced to the job, input line and topic position it came from. The row
// version is _version: one key's records all live in one partition, so a
// later offset is a later write, and the topic's incarnation above the
// offset keeps that true when the topic is recreated and offsets start
// again from 0 (internal/kafka.Version).
var Provenance = []struct{ Name, Type string }{
	{"_job", "String"},
	{"_source", "String"},
	{"_line", "UInt64"},
	{"_partition", "UInt32"},
	{"_offset", "UInt64"},
	// ReplacingMergeTree's version must be unsigned on ClickHouse 18.16.
	{"_version", "UInt64"},
	{"_ingested_at", "DateTime"},
}

// VersionColumn is the column ReplacingMergeTree keeps the highest of.
const VersionColumn = "_version"

// TableColumn is a column of a type's table: its name and ClickHouse type.
type TableColumn struct{ Name, Type string }

// TableColumns returns the columns of the schema's table, in order: its
// columns, the extra column, the identity columns of an Identity schema,
// and the provenance columns.
func (s *Schema) TableColumns() []TableColumn {
	var out []TableColumn
	for _, c := range s.Columns {
		out = append(out, TableColumn{c.Name, c.ClickHouseType()})
	}
	out = append(out, TableColumn{s.Extra, "String"})
	if s.Identity {
		for _, c := range IdentityColumns {
			out = append(out, TableColumn{c.Name, c.ClickHouseType()})
		}
	}
	for _, p := range Provenance {
		out = append(out, TableColumn{p.Name, p.Type})
	}
	return out
}

// OrderBy returns the columns that identify a row: the key fields, or the
// identity columns.
func (s *Schema) OrderBy() []string {
	if !s.Identity {
		return s.Key
	}
	return []string{IdentityColumns[0].Name, IdentityColumns[1].Name}
}

// DDL returns the statements that create the schema's database and table.
// They are idempotent (IF NOT EXISTS) and use only SQL that ClickHouse 18.16
// and current releases both accept. The database is written as given (the
// caller quotes it); the schema's names, which Problems has checked are
// plain identifiers, are quoted as well, so that one that is also a
// keyword (not, interval, null) is still a name.
func (s *Schema) DDL(database string) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s\n(\n", database, quote(s.Name))
	cols := s.TableColumns()
	for i, c := range cols {
		sep := ","
		if i == len(cols)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    %s %s%s\n", quote(c.Name), c.Type, sep)
	}
	order := make([]string, len(s.OrderBy()))
	for i, k := range s.OrderBy() {
		order[i] = quote(k)
	}
	fmt.Fprintf(&b, ")\nENGINE = ReplacingMergeTree(%s)\nORDER BY (%s)", VersionColumn, strings.Join(order, ", "))
	return []string{
		fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s", database),
		b.String(),
	}
}

// Columns of an aggregate's table besides the partition and the group
// columns: the number of keys in the group, and for a sum the group's sum.
const (
	AggCount = "count"
	AggTotal = "total"
)

// AggregateColumns returns the columns of aggregate a's table, in order:
// partition, the By columns (typed as in the records table), count, total
// (sums only), version and updated_at. Each row is one group's absolute
// value in one partition, versioned like the records (internal/kafka.Version):
// products' product_counts is one of them.
func (s *Schema) AggregateColumns(a *Aggregate) []TableColumn {
	out := []TableColumn{{"partition", "UInt32"}}
	for _, b := range a.By {
		c, _ := s.Column(b)
		out = append(out, TableColumn{b, c.ClickHouseType()})
	}
	out = append(out, TableColumn{AggCount, "Int64"})
	if !a.Counts() {
		// A UInt64 column's sum is UInt64, as ClickHouse's sum of it is
		// (both wrap at 2^64); an Int64 column's is Int64.
		total := "Int64"
		if c, _ := s.Column(a.Sum); c.Type == UInt64 {
			total = "UInt64"
		}
		out = append(out, TableColumn{AggTotal, total})
	}
	return append(out, TableColumn{"version", "UInt64"}, TableColumn{"updated_at", "DateTime"})
}

// AppendKeyFromTexts appends the Kafka key of a row whose key columns hold
// the canonical texts given, in key order (as toString reads them back from
// ClickHouse): the key Validate builds from the record. For an Identity
// schema the texts are the identity columns'.
func (s *Schema) AppendKeyFromTexts(dst []byte, texts [][]byte) []byte {
	if s.Identity {
		dst = append(dst, texts[0]...)
		dst = append(dst, '/')
		return append(dst, texts[1]...)
	}
	if len(texts) == 1 {
		return append(dst, texts[0]...)
	}
	dst = append(dst, '[')
	for i, t := range texts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, t)
	}
	return append(dst, ']')
}

// quote writes an identifier in backticks, as clickhouse.Ident does for
// the names that reach SQL elsewhere.
func quote(name string) string {
	return "`" + strings.NewReplacer(`\`, `\\`, "`", "\\`").Replace(name) + "`"
}
