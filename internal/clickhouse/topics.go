package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// Incarnation returns the number of the topic's incarnation whose Kafka
// topic ID is id, registering it in TopicsTable when it is seen for the
// first time. Incarnations are numbered from 1 in the order they are first
// seen, so a topic that was deleted and created again, or moved to another
// cluster, gets a higher number than any before it: row versions built on it
// (internal/kafka.Version) keep ordering writes although offsets start
// again from 0 (invariant 2).
//
// Two services that see a new ID at the same moment both register it with
// the same number; the smallest number recorded for an ID is its number.
func Incarnation(ctx context.Context, conn Conn, db, topic, id string, partitions int) (uint32, error) {
	if id == "" {
		return 0, fmt.Errorf("incarnation of topic %s: no topic ID (the broker must support Kafka 2.8's topic IDs)", topic)
	}
	n, top, err := readIncarnation(ctx, conn, db, topic, id)
	if err != nil || n > 0 {
		return n, err
	}
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (topic, partitions, recorded_at, topic_id, incarnation)", Table(db, TopicsTable)))
	if err == nil {
		err = b.Append(topic, uint32(partitions), time.Now(), id, top+1)
		if err != nil {
			_ = b.Abort()
		}
	}
	if err == nil {
		err = b.Send()
	}
	if err != nil {
		return 0, fmt.Errorf("record incarnation %d of topic %s (ID %s): %w", top+1, topic, id, err)
	}
	n, _, err = readIncarnation(ctx, conn, db, topic, id)
	if err == nil && n == 0 {
		err = fmt.Errorf("incarnation of topic %s (ID %s) not found after it was recorded", topic, id)
	}
	return n, err
}

// readIncarnation returns id's number (0 if it has none yet) and the highest
// number the topic has.
func readIncarnation(ctx context.Context, conn Conn, db, topic, id string) (n, top uint32, err error) {
	q := fmt.Sprintf("SELECT minIf(incarnation, topic_id = %s), countIf(topic_id = %s), max(incarnation) FROM %s WHERE topic = %s",
		Quote(id), Quote(id), Table(db, TopicsTable), Quote(topic))
	var seen uint64
	if err := conn.QueryRow(ctx, q).Scan(&n, &seen, &top); err != nil {
		return 0, 0, fmt.Errorf("read incarnations of topic %s: %w", topic, err)
	}
	if seen == 0 {
		n = 0
	}
	return n, top, nil
}
