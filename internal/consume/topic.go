package consume

import (
	"context"
	"fmt"
	"log/slog"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/kafka"
	"skuflow/internal/retry"
)

// Topic is the topic a service reads, as it was when the service started on
// it.
type Topic struct {
	kafka.TopicState
	// Incarnation numbers the topic's ID among those ClickHouse has seen
	// (clickhouse.Incarnation); row versions are built on it.
	Incarnation uint32
}

// PrepareTopic makes sure the topic exists with the configured partitions
// and returns it with its incarnation, retrying while Kafka or ClickHouse
// cannot be reached. A topic with another partition count than the one
// configured, or recorded when data was first written, is refused.
func PrepareTopic(ctx context.Context, conn clickhouse.Conn, cfg config.Config, log *slog.Logger, b retry.Backoff) (Topic, error) {
	st, err := kafka.Prepare(ctx, cfg.Kafka, log, b)
	if err != nil {
		return Topic{}, err
	}
	t := Topic{TopicState: st}
	err = retry.Forever(ctx, b, log, "record the topic's incarnation", clickhouse.Retriable, func(ctx context.Context) error {
		var err error
		t.Incarnation, err = clickhouse.Incarnation(ctx, conn, cfg.ClickHouse.Database, cfg.Kafka.Topic, st.ID, st.Partitions)
		return err
	})
	if err != nil {
		return Topic{}, fmt.Errorf("topic %s: %w", cfg.Kafka.Topic, err)
	}
	return t, nil
}
