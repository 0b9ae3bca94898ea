package producer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/kafka"
	"skuflow/jobs"
	"skuflow/schemas"
)

// Connection is what a push of records of one type writes to: the type's
// topic through a producer client (with its partitioner, and the topic's
// ID when the client started), and ClickHouse's job tables.
type Connection struct {
	Kafka       *kgo.Client
	Partitioner *kafka.FixedPartitioner
	TopicID     string
	Jobs        *jobs.Store
	cfg         config.Config
	schema      *schemas.Schema
	conn        clickhouse.Conn
}

// Connect reaches what a push of records of type s writes to: the type's
// topic (created if missing) and ClickHouse (the job tables and the
// type's, migrated if missing). cfg is the type's (config.Config.For).
// Close releases both.
func Connect(ctx context.Context, cfg config.Config, s *schemas.Schema, log *slog.Logger) (*Connection, error) {
	cl, part, err := newProducerClient(cfg, log)
	if err != nil {
		return nil, err
	}
	setup, cancel := context.WithTimeout(ctx, cfg.Kafka.DialTimeout+10*time.Second)
	defer cancel()
	err = kafka.EnsureTopic(setup, cl, cfg.Kafka)
	var st kafka.TopicState
	if err == nil {
		st, err = kafka.Describe(setup, cl, cfg.Kafka.Topic)
	}
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("Kafka at %v: %w%s", cfg.Kafka.Brokers, err, upHint(kafka.IsAuthError(err)))
	}
	conn, err := clickhouse.Open(cfg.ClickHouse)
	if err == nil {
		err = clickhouse.MigrateOn(setup, conn, cfg.ClickHouse.Database, cfg.ClickHouse.Cluster, s)
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("ClickHouse at %s, which keeps the jobs: %w%s", cfg.ClickHouse.Addr, err, upHint(clickhouse.IsAuthError(err)))
	}
	return &Connection{Kafka: cl, Partitioner: part, TopicID: st.ID, Jobs: jobs.NewStore(conn, cfg.ClickHouse.Database),
		cfg: cfg, schema: s, conn: conn}, nil
}

// Close closes the Kafka client and the ClickHouse connection.
func (c *Connection) Close() {
	c.Kafka.Close()
	c.conn.Close()
}

// ClickHouse is the connection's ClickHouse client.
func (c *Connection) ClickHouse() clickhouse.Conn { return c.conn }

// Options returns the Pusher options of the connection's type, from its
// configuration: the schema, topic, limits, job store, partitioner and
// topic ID; origin says what starts its pushes ("push", "watch DIR").
func (c *Connection) Options(origin string, log *slog.Logger) Options {
	cfg := c.cfg
	return Options{
		Schema:         c.schema,
		Topic:          cfg.Kafka.Topic,
		MaxRecordBytes: int(cfg.Loader.MaxRecordBytes),
		URL: URLLimits{
			ConnectTimeout: cfg.Loader.URLConnectTimeout,
			HeaderTimeout:  cfg.Loader.URLHeaderTimeout,
			IdleTimeout:    cfg.Loader.URLIdleTimeout,
			MaxBytes:       int64(cfg.Loader.URLMaxBytes),
		},
		ZstdMaxWindow: int64(cfg.Loader.ZstdMaxWindow),
		// Leave room for the record batch's own framing.
		MaxValueBytes: int(cfg.Loader.BatchMaxBytes) - 512,
		Jobs:          c.Jobs,
		Origin:        origin,
		Log:           log,
		Partitioner:   c.Partitioner,
		TopicID:       c.TopicID,
		// A push checks the topic as often as the services do.
		TopicCheckInterval: cfg.Kafka.TopicCheckInterval,
	}
}

func newProducerClient(cfg config.Config, log *slog.Logger) (*kgo.Client, *kafka.FixedPartitioner, error) {
	// Kafka's default partitioner (murmur2 of the key), so that every
	// client, in any language, puts a key in the same partition, over the
	// configured count: a topic that grows partitions while the loader
	// runs never gets a key on a second one (the push stops instead).
	part := &kafka.FixedPartitioner{N: cfg.Kafka.Partitions}
	cl, err := kafka.NewClient(cfg.Kafka, log,
		kgo.DefaultProduceTopic(cfg.Kafka.Topic),
		kgo.ProducerLinger(cfg.Loader.Linger),
		kgo.ProducerBatchMaxBytes(int32(cfg.Loader.BatchMaxBytes)),
		kgo.MaxBufferedRecords(cfg.Loader.MaxBufferedRecords),
		kgo.ProducerBatchCompression(kafka.Compression(cfg.Kafka.Compression)),
		kgo.RecordDeliveryTimeout(cfg.Loader.DeliveryTimeout),
		kgo.RecordPartitioner(part),
	)
	if err != nil {
		return nil, nil, err
	}
	return cl, part, nil
}

// upHint suggests starting the local stack, unless the server answered and
// refused the credentials or its certificate: it is up then.
func upHint(refused bool) string {
	if refused {
		return ""
	}
	return " (is the stack up? run 'make up')"
}
