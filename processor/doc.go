// Package processor loads the keyed topic into ClickHouse, exactly once in
// effect.
//
// Instances share the topic through one consumer group. Each polls records,
// gathers them into one pending batch across its partitions (bounded by rows,
// bytes and time), inserts the batch with one columnar INSERT, and only then
// commits the partitions' offsets. A crash between insert and commit replays
// the batch; the table is a ReplacingMergeTree versioned by offset, so the
// replayed rows collapse into the ones already there.
//
// Rebalances are gated with franz-go's BlockRebalanceOnPoll: a revoke waits
// until the current batch is in ClickHouse and committed, so an instance
// never commits offsets of a partition it no longer owns. When ClickHouse
// fails, the processor stops polling (backpressure) and retries with
// backoff for as long as it runs; it never commits past a batch that is not
// in. A record ClickHouse refuses is found by splitting the batch and set
// aside in ingest_errors, and the rest goes in.
package processor
