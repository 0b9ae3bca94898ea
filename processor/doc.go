// Package processor loads the keyed topic into ClickHouse, exactly once in
// effect.
//
// Instances share the topic through one consumer group. Each polls records
// into one pending batch across its partitions, decoding them as they
// arrive (internal/jsonscan splits a record, schemas.Block puts it into
// typed columns), inserts the batch with one columnar INSERT, and only then
// commits the partitions' offsets. A crash between insert and commit replays
// the batch; the table is a ReplacingMergeTree versioned by offset, so the
// replayed rows collapse into the ones already there.
//
// A batch goes in when it is full (rows or bytes), when its oldest record
// has waited FlushInterval, or as soon as the instance has read everything
// the broker holds and the batch has BatchRows/50 rows or more: the end of
// a push is loaded at once, a trickle still makes few inserts.
//
// While there is more to read, a full batch does not end its INSERT: it is
// sent as a block of an INSERT kept open (a stream, stream.go), and the
// next full batches follow it, until the INSERT holds InsertRows rows or
// InsertBytes bytes, its oldest record has waited FlushInterval, or the
// instance has caught up. ClickHouse makes one part of it, where one part
// per batch cost it twice the CPU in writing and merging; the processor
// still holds two batches. The stream's offsets are committed once it has
// ended. Up to two streams are ended at once, each on its own connection,
// so that ClickHouse writes their parts on two threads while the next
// stream fills; they commit in order, each after the one before it. A
// stream that fails leaves nothing of itself in a single server's table
// (on a cluster, the blocks the Distributed table has sent on stay), but
// the stream ended beside it may have gone in: those rows are the same,
// with the same versions, as when they are read again. The failed
// stream's records are no longer held, so every partition is read again
// from where the last INSERT that committed ended (kgo's SetOffsets, in
// the window where polls block rebalances), and they go in one batch per
// INSERT, retried and split as below, until the instance is past where the
// streams had got.
//
// Inserting overlaps polling: one batch is in flight, inserted and then
// committed (or sent to the stream) by its own goroutine, while the next
// one fills and decodes.
// Batches go in, and are committed, strictly in poll order, each commit
// after its own insert and every earlier one. When the next batch is full
// before the one in flight is in, polling stops (backpressure), so an
// instance holds at most two batches, whatever ClickHouse does.
//
// Rebalances are gated with franz-go's BlockRebalanceOnPoll: a revoke waits
// for the batch in flight, then inserts and commits the pending one, so an
// instance never commits offsets of a partition it no longer owns; lost
// partitions (an expired session) are dropped from what is held. When
// ClickHouse fails, the processor retries with backoff for as long as it
// runs; it never commits past a batch that is not in. A record ClickHouse
// refuses is found by splitting the batch and set aside in ingest_errors,
// and the rest goes in. On SIGTERM the batch in flight and the pending one
// go in, are committed, and the instance leaves the group.
//
// Its metrics (internal/metrics, per type) say what it read (records,
// bytes, lag per partition as of the last fetch), how late the data is
// (the Kafka timestamp of the oldest record read and not yet inserted,
// pending or in flight), what went in (rows, INSERT time and size), what
// was set aside by stage, and its retries. They are counted per fetch and
// per INSERT through counters bound to the type once: per record, the
// only cost is comparing its timestamp.
package processor
