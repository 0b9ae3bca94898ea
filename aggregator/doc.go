// Package aggregator keeps every aggregate a record type declares exact
// through updates, replays, restarts, compaction and a recreated topic:
// products' `name -> number of products`, and any count of keys or sum of
// an integer column by one or more columns (schemas.Aggregate). One
// Aggregator serves one type and all its aggregates at once; nothing in
// it is particular to a type.
//
// Each instance of the type's group owns some partitions of its keyed
// topic. For each it keeps every key's version (of the record that set
// it) and, per aggregate, the key's group (the canonical texts of its By
// values) and summed value; from them, per group, the number of keys and
// the sum of their values. A record for a new key adds it to its groups;
// a record that moves a key to another group, or changes its value, moves
// or changes what it adds; a record at or below its key's version changes
// nothing. A record that does not fit the schema, or is not where its key
// belongs, counts nowhere: the processor sets it aside. The results are
// written as absolute values per (partition, group), one INSERT per
// aggregate table, versioned above every version written before, into a
// ReplacingMergeTree: writing the same state twice is harmless, so a crash
// between writing and committing only costs a replay. Each aggregate's
// view sums the partitions and hides groups without keys.
//
// A partition's state is loaded, when the partition is assigned, from
// what ClickHouse holds (the records table, FINAL, with each row's
// version), and the topic is read from where those rows end: compaction,
// retention or a recreated topic cannot take a key's old group away.
// Stored results of the partition that differ from the loaded state are
// written again.
//
// The state holds no pointer per key (keys.go): at a million keys it
// takes about 56 bytes a key for products, 110 for plays (whose groups
// are many), as BenchmarkBytesPerKey measures.
//
// One limit remains, of two groups reading one compacted topic: when a
// record of a key is followed only by records the processor sets aside
// (another client wrote them, with that key), compaction may remove it
// before one of the groups has read it; then the table and the aggregates
// disagree on that key until the aggregator next loads the partition.
//
// Its metrics (internal/metrics, per type) are those of consume.Meter
// (records and bytes read, lag, the age of the oldest record taken and not
// yet written, retries) and the state's size in keys, the time to load
// assigned partitions, and the rows of partial results written.
package aggregator
