// Package kafka builds the franz-go clients the services share and keeps the
// topic's shape right: it creates the keyed topic compacted with the
// configured partitions, and refuses a topic whose partition count differs.
package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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

// HeaderProvenance is the record header the loader sets on every record,
// so that any consumer can trace a row back to its job and input line:
// "JOB LINE SOURCE", e.g. "20261121T134512Z-0c35f3f9a0c1 1234
// /in/products.ndjson" (a job id holds no space; the source, last, may).
// Records written by other clients may lack it.
//
// One header, not three: a consumer's client makes a header slice and a
// string per header key for every record it decodes (franz-go does), and
// the producer encodes and compresses every key. Three headers of 11-14
// byte keys were a third of a product record's bytes; with one, the
// processor and the aggregator each allocate a third as often per record.
const HeaderProvenance = "skuflow"

// The three headers earlier loaders wrote instead of HeaderProvenance.
// Records they left on a topic carry them, and are still read.
const (
	HeaderJob    = "skuflow-job"
	HeaderSource = "skuflow-source"
	HeaderLine   = "skuflow-line"
)

// AppendProvenance appends HeaderProvenance's value for a record of job
// found at line of source.
func AppendProvenance(dst []byte, job string, line int64, source string) []byte {
	dst = append(dst, job...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, line, 10)
	dst = append(dst, ' ')
	return append(dst, source...)
}

// Provenance reads a record's provenance, from HeaderProvenance or from
// the three headers of older releases; what a record lacks is empty, and
// its line 0. The job and source point into the record's header values.
func Provenance(headers []kgo.RecordHeader) (job, source []byte, line uint64) {
	for i := range headers {
		switch h := &headers[i]; h.Key {
		case HeaderProvenance:
			return parseProvenance(h.Value)
		case HeaderJob:
			job = h.Value
		case HeaderSource:
			source = h.Value
		case HeaderLine:
			line = parseLine(h.Value)
		}
	}
	return job, source, line
}

// parseProvenance splits HeaderProvenance's value; a value not of its form
// is taken whole as the job, so that it shows rather than vanishes.
func parseProvenance(v []byte) (job, source []byte, line uint64) {
	sp := bytes.IndexByte(v, ' ')
	if sp < 0 {
		return v, nil, 0
	}
	rest := v[sp+1:]
	end := bytes.IndexByte(rest, ' ')
	if end < 0 {
		return v, nil, 0
	}
	return v[:sp], rest[end+1:], parseLine(rest[:end])
}

// parseLine reads a line number: decimal digits, or 0 when it is not one.
// By hand, not strconv.ParseUint: that would allocate a string per record.
func parseLine(v []byte) uint64 {
	if len(v) == 0 || len(v) > 19 {
		return 0
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

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
		return fmt.Errorf("%w: topic %s has %d partitions, %d are configured (kafka.partitions, or the type's partitions)", ErrPartitionCount, c.Topic, n, c.Partitions)
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
				err = fmt.Errorf("%w: topic %s has %d partitions, %d are configured (kafka.partitions, or the type's partitions)", ErrPartitionCount, c.Topic, st.Partitions, c.Partitions)
			}
			return err
		})
	return st, err
}

// Behind returns how many records of topic group has still to commit,
// against the end offsets ends: per partition, the end less the committed
// offset, or all of it where the group has committed nothing. A group that
// does not exist yet (some brokers answer GROUP_ID_NOT_FOUND) has
// committed nothing.
func Behind(ctx context.Context, adm *kadm.Client, topic, group string, ends kadm.ListedOffsets) (int64, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return 0, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic != topic {
			return
		}
		c, ok := committed.Lookup(topic, o.Partition)
		switch {
		case !ok || c.Err != nil:
			n += o.Offset
		case c.At < o.Offset:
			n += o.Offset - c.At
		}
	})
	return n, nil
}
