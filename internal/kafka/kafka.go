// Package kafka builds the franz-go clients the services share and keeps the
// topic's shape right: it creates the keyed topic compacted with the
// configured partitions, and refuses a topic whose partition count differs.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/retry"
)

// ErrPartitionCount is returned when the topic exists with a partition count
// other than the configured one. Keys map to partitions by count, so a
// changed count would split one key's records over two partitions and break
// last-write-wins.
var ErrPartitionCount = errors.New("topic partition count differs from configuration")

// Record headers the loader sets on every record, so that any consumer can
// trace a row back to its job and input line. Records written by other
// clients may lack them.
const (
	HeaderJob    = "skuflow-job"
	HeaderSource = "skuflow-source"
	HeaderLine   = "skuflow-line"
)

// Compression maps a configured codec name to franz-go's codec.
func Compression(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	default:
		return kgo.NoCompression()
	}
}

// EnsureTopic creates the topic, compacted, with the configured partition
// count if it does not exist, and checks the count if it does.
func EnsureTopic(ctx context.Context, cl *kgo.Client, c config.Kafka) error {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(c.Partitions), -1, map[string]*string{
		// Compaction keeps the last record per key, so replaying the topic
		// (the aggregator's rebuild) costs about one record per key.
		"cleanup.policy": kadm.StringPtr("compact"),
	}, c.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", c.Topic, err)
	}
	return CheckPartitions(ctx, cl, c)
}

// CheckPartitions returns ErrPartitionCount if the topic's partition count is
// not the configured one.
func CheckPartitions(ctx context.Context, cl *kgo.Client, c config.Kafka) error {
	n, err := Partitions(ctx, cl, c.Topic)
	if err != nil {
		return err
	}
	if n != c.Partitions {
		return fmt.Errorf("%w: topic %s has %d partitions, kafka.partitions is %d", ErrPartitionCount, c.Topic, n, c.Partitions)
	}
	return nil
}

// Partitions returns the topic's partition count, waiting briefly for a
// topic that was just created to show up in metadata.
func Partitions(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	adm := kadm.NewClient(cl)
	var last error
	for attempt := 0; attempt < 50; attempt++ {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("metadata of topic %s: %w", topic, err)
		}
		td, ok := md.Topics[topic]
		switch {
		case !ok:
			last = fmt.Errorf("topic %s not in metadata", topic)
		case td.Err != nil:
			last = fmt.Errorf("topic %s: %w", topic, td.Err)
		default:
			return len(td.Partitions), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, last
}

// Prepare makes sure the topic exists with the configured partitions,
// retrying while Kafka cannot be reached, and returns its ID and count; a
// topic with another partition count is refused at once (ErrPartitionCount).
func Prepare(ctx context.Context, c config.Kafka, log *slog.Logger, b retry.Backoff) (TopicState, error) {
	cl, err := NewClient(c, log)
	if err != nil {
		return TopicState{}, err
	}
	defer cl.Close()
	var st TopicState
	// A refused credential or certificate stops the caller with the
	// reason; a broker that is down is waited for.
	err = retry.Forever(ctx, b, log, "check topic", func(err error) bool { return !errors.Is(err, ErrPartitionCount) && !IsAuthError(err) },
		func(ctx context.Context) error {
			if err := EnsureTopic(ctx, cl, c); err != nil {
				return err
			}
			st, err = Describe(ctx, cl, c.Topic)
			if err == nil && st.Partitions != c.Partitions {
				err = fmt.Errorf("%w: topic %s has %d partitions, kafka.partitions is %d", ErrPartitionCount, c.Topic, st.Partitions, c.Partitions)
			}
			return err
		})
	return st, err
}
