// Package aggregator keeps `name -> number of products` exact through
// renames, replays and restarts.
//
// Each instance of the group skuflow-aggregator owns some partitions of the
// keyed topic. For each it keeps the state sku -> name, and from it the
// number of skus per name in that partition. A record for a new sku adds
// one to its name; a record that changes a sku's name moves one from the
// old name to the new; a record that repeats the name changes nothing. The
// counts are written as absolute values per (partition, name), versioned by
// the offset they are true at, into a ReplacingMergeTree: writing the same
// state twice is harmless, so a crash between writing and committing only
// costs a replay. The view products_agg sums the partitions and hides zeros.
//
// A partition's state is loaded, when the partition is assigned, from
// what ClickHouse holds (the records table, FINAL, with each row's
// version), and the topic is read from where those rows end: compaction,
// retention or a recreated topic cannot take a sku's old name away. A
// record at or below the version its sku has changes nothing, so
// replaying what the table holds is harmless; counts stored for the
// partition that differ from the loaded state are written again.
package aggregator
