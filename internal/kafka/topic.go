package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrTopicRecreated is returned when the topic's ID is not the one a client
// started with: it was deleted and created again (or the brokers are another
// cluster), and its offsets started again from 0.
var ErrTopicRecreated = errors.New("topic was recreated")

// TopicState is what identifies a topic's incarnation and shape.
type TopicState struct {
	// ID is the topic's Kafka ID (KIP-516), in hex; a recreated topic has a
	// new one.
	ID         string
	Partitions int
}

// Describe returns the topic's ID and partition count, as a broker says
// now: the request goes around the client's metadata cache (kadm's
// Metadata answers from it for up to MetadataMinAge, 5 s), so that a
// change is seen at the next check.
func Describe(ctx context.Context, cl *kgo.Client, topic string) (TopicState, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return TopicState{}, fmt.Errorf("metadata of topic %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return TopicState{}, fmt.Errorf("topic %s: %w", topic, err)
		}
		return TopicState{ID: kadm.TopicID(t.TopicID).String(), Partitions: len(t.Partitions)}, nil
	}
	return TopicState{}, fmt.Errorf("topic %s not in metadata", topic)
}

// Changed compares what is seen now with what a client started with, and
// says what changed, or nil.
func Changed(topic string, was, now TopicState) error {
	switch {
	case now.ID != was.ID:
		return fmt.Errorf("%w: topic %s has ID %s, it had %s when this client started; its offsets start again from 0",
			ErrTopicRecreated, topic, now.ID, was.ID)
	case now.Partitions != was.Partitions:
		return fmt.Errorf("%w: topic %s has %d partitions now, it had %d; keys would move to other partitions",
			ErrPartitionCount, topic, now.Partitions, was.Partitions)
	}
	return nil
}

// Watch reads the topic's metadata every interval until ctx ends, and
// returns (an ErrTopicRecreated or ErrPartitionCount error) as soon as the
// topic is not the one described by was (see Check).
func Watch(ctx context.Context, cl *kgo.Client, topic string, was TopicState, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := Check(ctx, cl, topic, was, interval, log); err != nil {
			return err
		}
	}
}

// Check reads the topic's metadata once, waiting at most timeout, and
// returns an ErrTopicRecreated or ErrPartitionCount error when the topic is
// not the one described by was. Metadata that cannot be read is logged and
// is no error: an unreachable broker is not a changed topic.
func Check(ctx context.Context, cl *kgo.Client, topic string, was TopicState, timeout time.Duration, log *slog.Logger) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	now, err := Describe(rctx, cl, topic)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			log.Debug("topic check: metadata not read", "topic", topic, "err", err)
		}
		return nil
	}
	return Changed(topic, was, now)
}

// keyPartitioner is Kafka's key partitioning (murmur2 of the key, as every
// Kafka client does it) over a fixed partition count.
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// PartitionOf returns the partition a key belongs to when the topic has n
// partitions: the one Kafka's default partitioner picks for it.
func PartitionOf(key []byte, n int) int32 {
	// A record from a pool: the processor checks every record's key, and
	// a new one each time was an eighth of what it allocated.
	r := keyRecords.Get().(*kgo.Record)
	r.Key = key
	p := keyPartitioner.Partition(r, n)
	r.Key = nil
	keyRecords.Put(r)
	return int32(p)
}

var keyRecords = sync.Pool{New: func() any { return new(kgo.Record) }}

// FixedPartitioner partitions keyed records by the configured count,
// whatever the count franz-go sees in metadata: a topic that grew partitions
// while a producer runs never gets a key on a second partition. It notes a
// count other than the configured one in Mismatch, so that the producer can
// stop with a reason.
type FixedPartitioner struct {
	N int
	// Mismatch holds the last count seen that was not N, or 0.
	Mismatch atomic.Int64
}

// ForTopic implements kgo.Partitioner.
func (p *FixedPartitioner) ForTopic(string) kgo.TopicPartitioner { return p }

// RequiresConsistency implements kgo.TopicPartitioner: a key always goes to
// its own partition, even when that partition's leader is unavailable.
func (p *FixedPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

// Partition implements kgo.TopicPartitioner.
func (p *FixedPartitioner) Partition(r *kgo.Record, n int) int {
	if n != p.N {
		p.Mismatch.Store(int64(n))
		if p.N > n {
			// Fewer partitions than configured: the topic is not ours any
			// more (recreated); the producer stops on Mismatch. Send the
			// record where it cannot be lost track of.
			return int(PartitionOf(r.Key, n))
		}
	}
	return int(PartitionOf(r.Key, p.N))
}

// CheckMismatch returns ErrPartitionCount when the partitioner has seen a
// count other than the configured one.
func (p *FixedPartitioner) CheckMismatch(topic string) error {
	if n := p.Mismatch.Load(); n != 0 {
		return fmt.Errorf("%w: topic %s has %d partitions now, %d are configured (kafka.partitions, or the type's partitions); the push stopped so that no key lands on a second partition",
			ErrPartitionCount, topic, n, p.N)
	}
	return nil
}

// incarnationBits is how many low bits of a row version hold the offset;
// the bits above hold the topic's incarnation. 2^40 offsets is a trillion
// records per partition per incarnation; 2^24 incarnations is more
// recreations than any topic sees.
const incarnationBits = 40

// Version orders a record across the topic's incarnations: the incarnation
// (how many times the topic has been seen with a new ID, see
// internal/clickhouse.Incarnation) above its offset. A record of a
// recreated topic always has a higher version than any of the topic before.
func Version(incarnation uint32, offset int64) uint64 {
	return uint64(incarnation)<<incarnationBits | uint64(offset)&(1<<incarnationBits-1)
}

// SplitVersion undoes Version.
func SplitVersion(v uint64) (incarnation uint32, offset int64) {
	return uint32(v >> incarnationBits), int64(v & (1<<incarnationBits - 1))
}

// ErrKeyMismatch is returned by CheckKey for a record that another producer
// wrote with a key other than its schema key, or to another partition than
// its key's.
var ErrKeyMismatch = errors.New("record is not where its key belongs")

// CheckKey reports whether record r, whose schema key is key, was written
// as skuflow writes it: with key as its Kafka key, on the partition the key
// belongs to among partitions. Anything else (a record written by another
// client with no key or another one) would compete with the key's real
// versions on another partition, so the processor and the aggregator both
// set it aside.
func CheckKey(r *kgo.Record, key []byte, partitions int) error {
	if !bytes.Equal(r.Key, key) {
		if r.Key == nil {
			return fmt.Errorf("%w: the record has no Kafka key; its key is %q", ErrKeyMismatch, key)
		}
		return fmt.Errorf("%w: Kafka key %q is not the record's key %q", ErrKeyMismatch, r.Key, key)
	}
	if want := PartitionOf(key, partitions); r.Partition != want {
		return fmt.Errorf("%w: the record is on partition %d, but key %q belongs on partition %d of %d",
			ErrKeyMismatch, r.Partition, key, want, partitions)
	}
	return nil
}
