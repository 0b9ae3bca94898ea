// Package schemas describes record types: which fields form the key, which
// fields become typed columns, which are required, and which field the
// aggregate counts by. A schema is data, so a second record type (events keyed
// by (id, ts), say) is a new Schema value, not a new code path.
//
// The loader validates records against a schema and keys them with it; the
// processor maps records to columns with it; the DDL of the ClickHouse tables
// is generated from it.
package schemas
