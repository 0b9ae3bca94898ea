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
// A partition's state is not stored anywhere but the topic: when a
// partition is assigned, its records before the group's committed offset
// are replayed to rebuild the state (the topic is compacted, so that costs
// about one record per sku), and only records from the committed offset on
// change the counts.
package aggregator
