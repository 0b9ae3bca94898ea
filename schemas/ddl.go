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

// DDL returns the statements that create the schema's database and table.
// They are idempotent (IF NOT EXISTS) and use only SQL that ClickHouse 18.16
// and current releases both accept.
func (s *Schema) DDL(database string) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s\n(\n", database, s.Name)
	for _, c := range s.Columns {
		fmt.Fprintf(&b, "    %s %s,\n", c.Name, c.Type)
	}
	fmt.Fprintf(&b, "    %s String,\n", s.Extra)
	for i, p := range Provenance {
		sep := ","
		if i == len(Provenance)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    %s %s%s\n", p.Name, p.Type, sep)
	}
	fmt.Fprintf(&b, ")\nENGINE = ReplacingMergeTree(%s)\nORDER BY (%s)", VersionColumn, strings.Join(s.Key, ", "))
	return []string{
		fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s", database),
		b.String(),
	}
}
