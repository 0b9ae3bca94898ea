package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"skuflow/schemas"
)

// Config is the whole configuration of skuflow. Each service reads the parts
// it needs.
type Config struct {
	Kafka      Kafka      `mapstructure:"kafka"`
	ClickHouse ClickHouse `mapstructure:"clickhouse"`
	Loader     Loader     `mapstructure:"loader"`
	Processor  Processor  `mapstructure:"processor"`
	Aggregator Aggregator `mapstructure:"aggregator"`
	Watch      Watch      `mapstructure:"watch"`
	Broker     Broker     `mapstructure:"broker"`
	API        API        `mapstructure:"api"`
	Log        Log        `mapstructure:"log"`
	// Types declares record types besides the built-in products, by name
	// (see Schemas).
	Types map[string]schemas.Decl `mapstructure:"types"`
}

// Kafka says where the topic is and what shape it has.
type Kafka struct {
	Brokers    []string `mapstructure:"brokers"`
	Topic      string   `mapstructure:"topic"`
	Partitions int      `mapstructure:"partitions"`
	// Compression is the producer's batch codec: none, gzip, snappy, lz4 or zstd.
	Compression string `mapstructure:"compression"`
	// DialTimeout bounds one connection attempt to a broker.
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// TopicCheckInterval is how often a running producer or service reads
	// the topic's metadata to notice a recreated topic or a changed
	// partition count.
	TopicCheckInterval time.Duration `mapstructure:"topic_check_interval"`
	// SASL and TLS secure the connection to every broker (security.go).
	SASL SASL `mapstructure:"sasl"`
	TLS  TLS  `mapstructure:"tls"`
}

// ClickHouse says where the database is and how to log in.
type ClickHouse struct {
	// Addr is host:port of the native protocol, or several, comma
	// separated: the servers of a cluster, tried in turn when one is down.
	Addr     string `mapstructure:"addr"`
	Database string `mapstructure:"database"`
	Username string `mapstructure:"username"`
	Password Secret `mapstructure:"password"`
	// PasswordFile, instead of Password, names a file holding it.
	PasswordFile string        `mapstructure:"password_file"`
	DialTimeout  time.Duration `mapstructure:"dial_timeout"`
	// Compression of the native protocol: none, lz4, zstd, or auto (none
	// to a loopback address, where it only costs CPU; lz4 otherwise).
	Compression string `mapstructure:"compression"`
	// Cluster, when set, is the ClickHouse cluster (remote_servers) the
	// tables live on: every DDL runs ON CLUSTER, the tables are
	// Replicated*MergeTree on each shard with a Distributed table over
	// them. Empty: one server.
	Cluster string `mapstructure:"cluster"`
	// TLS secures the native protocol (ClickHouse's tcp_port_secure).
	TLS TLS `mapstructure:"tls"`
}

// Addrs returns the addresses of Addr.
func (c ClickHouse) Addrs() []string {
	var out []string
	for _, a := range strings.Split(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Loader tunes `loader push`.
type Loader struct {
	// MaxRecordBytes bounds one record of the input.
	MaxRecordBytes Bytes `mapstructure:"max_record_bytes"`
	// MaxBufferedRecords bounds the records produced but not yet
	// acknowledged by the broker; reading waits when it is reached.
	MaxBufferedRecords int `mapstructure:"max_buffered_records"`
	// Linger is how long the producer waits to fill a batch.
	Linger time.Duration `mapstructure:"linger"`
	// BatchMaxBytes bounds one produced batch; it must stay under the
	// broker's message.max.bytes.
	BatchMaxBytes Bytes `mapstructure:"batch_max_bytes"`
	// ShowErrors is how many rejected records a push prints; all are counted.
	ShowErrors int `mapstructure:"show_errors"`
	// DeliveryTimeout bounds how long a record may wait for the broker;
	// past it the push fails instead of hanging on a broker that is gone.
	DeliveryTimeout time.Duration `mapstructure:"delivery_timeout"`
	// URLConnectTimeout bounds connecting to the server of a pushed URL.
	URLConnectTimeout time.Duration `mapstructure:"url_connect_timeout"`
	// URLHeaderTimeout bounds the wait for a URL's response headers.
	URLHeaderTimeout time.Duration `mapstructure:"url_header_timeout"`
	// URLIdleTimeout fails a URL push whose server sends no data for that
	// long while the loader waits for it.
	URLIdleTimeout time.Duration `mapstructure:"url_idle_timeout"`
	// URLMaxBytes bounds what one URL may send (as stored, compressed).
	URLMaxBytes Bytes `mapstructure:"url_max_bytes"`
	// ZstdMaxWindow bounds the window of a zstd input's frames: the
	// history its decoder holds, so the loader's memory per input.
	ZstdMaxWindow Bytes `mapstructure:"zstd_max_window"`
}

// Processor tunes the processor: its consumer group and its batches.
type Processor struct {
	// Group is the consumer group all processor instances share.
	Group string `mapstructure:"group"`
	// SessionTimeout is how long the group waits for a silent instance
	// before giving its partitions to the others.
	SessionTimeout time.Duration `mapstructure:"session_timeout"`
	// ShutdownTimeout bounds the final flush on SIGTERM; what is not in
	// ClickHouse by then is left uncommitted and read again on restart.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// A batch is inserted when it reaches BatchRows or BatchBytes, or
	// FlushInterval after its first record, or as soon as the instance has
	// read everything the broker holds, if it has BatchRows/50 rows.
	BatchRows     int           `mapstructure:"batch_rows"`
	BatchBytes    Bytes         `mapstructure:"batch_bytes"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// While there is more to read, consecutive batches go into one INSERT,
	// each sent as a block as soon as it is full, up to InsertRows rows or
	// InsertBytes bytes (or FlushInterval): ClickHouse makes one part of
	// it, where one part per batch cost it twice the CPU in writing and
	// merging. InsertRows at or below BatchRows: one INSERT per batch.
	InsertRows  int   `mapstructure:"insert_rows"`
	InsertBytes Bytes `mapstructure:"insert_bytes"`
	// MetricsAddr serves /metrics, /healthz and /readyz; empty: none.
	// Port 0 picks a free port (logged).
	MetricsAddr string `mapstructure:"metrics_addr"`
}

// Aggregator tunes the aggregator: its consumer group and how often it
// writes counts.
type Aggregator struct {
	Group           string        `mapstructure:"group"`
	SessionTimeout  time.Duration `mapstructure:"session_timeout"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// Changed counts are written after BatchRecords records, or
	// FlushInterval after the first change.
	BatchRecords  int           `mapstructure:"batch_records"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// MetricsAddr serves /metrics, /healthz and /readyz; empty: none.
	MetricsAddr string `mapstructure:"metrics_addr"`
}

// Watch tunes `loader watch`, the inbox folder.
type Watch struct {
	// QuietPeriod is how long a file must go unchanged before it is taken;
	// a file renamed into the folder is taken at once.
	QuietPeriod time.Duration `mapstructure:"quiet_period"`
	// PollInterval is how often the folder is looked at (renames into it
	// are noticed at once on Linux).
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// Parallel is how many files are pushed at once.
	Parallel int `mapstructure:"parallel"`
	// MetricsAddr serves /metrics, /healthz and /readyz; empty: none.
	MetricsAddr string `mapstructure:"metrics_addr"`
}

// Broker configures the embedded broker of the local stack.
type Broker struct {
	// Port is the loopback port it listens on.
	Port    int    `mapstructure:"port"`
	DataDir string `mapstructure:"data_dir"`
	// SASL makes the broker require SASL: kafka.sasl's user, with its
	// mechanism and password, is its one user, so that the loader and
	// services of the same configuration log in.
	SASL bool `mapstructure:"sasl"`
	// TLS makes the broker speak TLS only (security.go).
	TLS BrokerTLS `mapstructure:"tls"`
}

// API configures cmd/api, the HTTP door.
type API struct {
	// Addr is where it listens: loopback unless tokens are configured.
	Addr string `mapstructure:"addr"`
	// Tokens may call it; with none, only loopback clients can, and all
	// may do everything.
	Tokens []Token `mapstructure:"tokens"`
	// SpoolDir holds uploaded files while they are pushed.
	SpoolDir string `mapstructure:"spool_dir"`
	// MaxUploadBytes bounds one uploaded file (as sent, compressed), and
	// MaxUploads the uploads received or pushed at once: together they
	// bound the spool's disk.
	MaxUploadBytes Bytes `mapstructure:"max_upload_bytes"`
	MaxUploads     int   `mapstructure:"max_uploads"`
	// MaxFeedClients bounds the live feed's clients, all tokens together.
	MaxFeedClients int `mapstructure:"max_feed_clients"`
	// MaxRecordsBody bounds the body of one POST of records, and
	// MaxRecords the records in it.
	MaxRecordsBody Bytes `mapstructure:"max_records_body"`
	MaxRecords     int   `mapstructure:"max_records"`
	// RateLimit is the requests per second each token (or, without
	// tokens, each client address) may make, RateBurst how many at once.
	RateLimit float64 `mapstructure:"rate_limit"`
	RateBurst int     `mapstructure:"rate_burst"`
	// ReadHeaderTimeout bounds a request's headers, IdleTimeout a kept-alive
	// connection without requests, BodyIdleTimeout a request body that
	// sends nothing.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	BodyIdleTimeout   time.Duration `mapstructure:"body_idle_timeout"`
	// ShutdownTimeout bounds a graceful stop: uploads in flight finish, or
	// their jobs fail with the reason.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// Token is one bearer token the API accepts: its name (for logs and rate
// limits), the SHA-256 of the token (hex; the token itself is never
// stored), and what it may do: read, write.
type Token struct {
	Name   string   `mapstructure:"name"`
	SHA256 string   `mapstructure:"sha256"`
	Scopes []string `mapstructure:"scopes"`
}

// Log configures the services' logs.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text or json
}

// Default returns the configuration used where nothing else is said. It
// matches the local stack that `make up` starts.
func Default() Config {
	return Config{
		Kafka: Kafka{
			// The embedded broker's port; a docker-compose Kafka listens on 9092.
			Brokers: []string{"127.0.0.1:19092"},
			Topic:   "products",
			// Six partitions let up to six processors share the work while
			// keeping per-partition batches large on a small machine.
			Partitions: 6,
			// snappy (franz-go uses klauspost's s2) costs the least CPU of
			// the codecs: measured end to end on 500,000 products, 6.0-6.8
			// CPU seconds in all against 7.4 with lz4 and 8.7-8.9 with
			// zstd, and 10-20% less wall time. Without compression the
			// loader saves CPU but the broker spends more.
			Compression: "snappy",
			DialTimeout: 5 * time.Second,
			// One metadata request every few seconds costs nothing, and a
			// producer running while partitions are added stops within it
			// (its partitioner never moves a key meanwhile).
			TopicCheckInterval: 5 * time.Second,
		},
		ClickHouse: ClickHouse{
			// The local stack's native port, apart from a system server's 9000.
			Addr:        "127.0.0.1:19000",
			Database:    "skuflow",
			Username:    "default",
			DialTimeout: 5 * time.Second,
			Compression: "auto",
		},
		Loader: Loader{
			// Far above any real product record; bounds the readers' memory.
			MaxRecordBytes: 1 << 20,
			// 20k records of ~1 KB keep the producer's memory near 20 MB.
			MaxBufferedRecords: 20000,
			// A batch fills while the previous one is in flight anyway;
			// measured on 2,000,000 products, 1 ms against 5 ms: the
			// loader alone 0.86x the time (1.40 s against 1.64 s), end
			// to end the same, the broker 0.15 CPU-s more.
			Linger: time.Millisecond,
			// Under the default message.max.bytes of Kafka (1 MB) and kfake.
			BatchMaxBytes: 1000000,
			ShowErrors:    20,
			// Long enough to ride out a broker restart, short enough that a
			// push against a dead broker ends with an answer.
			DeliveryTimeout: 2 * time.Minute,
			// A server that has not accepted in 10s is down or filtered;
			// a slow link still connects well within it.
			URLConnectTimeout: 10 * time.Second,
			// Servers that build an export before answering take a while;
			// a minute lets them, and then the job fails with the reason.
			URLHeaderTimeout: time.Minute,
			// A live transfer's pauses (retransmits, a busy server) stay
			// well under 30s; a longer silence is a stalled transfer, which
			// would otherwise leave the job producing forever.
			URLIdleTimeout: 30 * time.Second,
			// Far above any real export (a push streams, so size costs time,
			// not memory), yet a server that never ends is stopped.
			URLMaxBytes: 64 << 30,
			// What the zstd CLI decodes without extra memory (--long=27):
			// every ordinary level fits (-19 uses 8 MiB, --ultra -22 128
			// MiB), and a frame of --long=29 (512 MiB, times
			// watch.parallel) is refused instead of taken.
			ZstdMaxWindow: 128 << 20,
		},
		Processor: Processor{
			Group: "skuflow-processor",
			// Short enough that a crashed instance's partitions move on
			// quickly, long enough to ride out a GC pause or a slow insert.
			SessionTimeout:  10 * time.Second,
			ShutdownTimeout: 30 * time.Second,
			// ClickHouse wants large, infrequent inserts: at most about one
			// a second for a trickle, and at least 1000 rows (BatchRows/50)
			// for one made early because nothing more is waiting. An
			// instance holds two batches (one in flight, one filling), so
			// memory follows the batch size: measured on the 500,000-row
			// bench, 50,000 rows (about 10 MB of products) load as fast as
			// 100,000 end to end, with 40% less peak RSS under lag; the
			// byte bound keeps batches of large records as small.
			BatchRows:     50000,
			BatchBytes:    16 << 20,
			FlushInterval: time.Second,
			// Below what ClickHouse gathers into one part
			// (min_insert_block_size_rows 1,048,576 and _bytes 256 MiB,
			// which counts the columns in memory: the records' bytes and
			// the provenance columns, about 1.5 times the records' for
			// products): an INSERT is then one part, in whole or not at
			// all. The processor holds two batches whatever these are;
			// the server holds the INSERT until it ends.
			InsertRows:  1000000,
			InsertBytes: 128 << 20,
			// Fixed loopback ports for the local stack's Prometheus; a
			// second instance on one machine needs another (or 0).
			MetricsAddr: "127.0.0.1:18081",
		},
		Aggregator: Aggregator{
			Group:           "skuflow-aggregator",
			SessionTimeout:  10 * time.Second,
			ShutdownTimeout: 30 * time.Second,
			// A write costs one row per changed name: large batches of
			// records collapse into few rows.
			BatchRecords:  200000,
			FlushInterval: time.Second,
			MetricsAddr:   "127.0.0.1:18082",
		},
		Watch: Watch{
			// Long enough for a copy that pauses on a slow disk or network.
			QuietPeriod:  5 * time.Second,
			PollInterval: time.Second,
			// Two pushes keep two cores busy; more only contend.
			Parallel:    2,
			MetricsAddr: "127.0.0.1:18083",
		},
		Broker: Broker{
			Port:    19092,
			DataDir: ".data/broker",
		},
		API: API{
			Addr:     "127.0.0.1:18080",
			SpoolDir: ".data/api-spool",
			// As a URL push: size costs disk and time, not memory.
			MaxUploadBytes: 64 << 30,
			// A few files at once keep two cores busy; more only queue
			// on disk.
			MaxUploads: 8,
			// Operators' browsers, with room; each costs a goroutine and
			// a buffer of 256 events.
			MaxFeedClients: 100,
			// A POST of records is for a trickle; files are for bulk.
			MaxRecordsBody: 16 << 20,
			MaxRecords:     10000,
			// Far above a person or a script's steady use, low enough
			// that one runaway client cannot take the loader's share.
			RateLimit:         100,
			RateBurst:         200,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			BodyIdleTimeout:   30 * time.Second,
			ShutdownTimeout:   30 * time.Second,
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// Validate reports every key whose value cannot work, each named by its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker address is needed")
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("kafka.brokers", "%q is not host:port", b)
		}
	}
	if c.Kafka.Topic == "" {
		bad("kafka.topic", "must not be empty")
	}
	if c.Kafka.Partitions < 1 || c.Kafka.Partitions > schemas.MaxPartitions {
		bad("kafka.partitions", "must be between 1 and %d, got %d", schemas.MaxPartitions, c.Kafka.Partitions)
	}
	switch c.Kafka.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		bad("kafka.compression", "must be one of none, gzip, snappy, lz4, zstd; got %q", c.Kafka.Compression)
	}
	positive(bad, "kafka.dial_timeout", c.Kafka.DialTimeout)
	positive(bad, "kafka.topic_check_interval", c.Kafka.TopicCheckInterval)
	if addrs := c.ClickHouse.Addrs(); len(addrs) == 0 {
		bad("clickhouse.addr", "no address given; want host:port, or several comma separated")
	} else {
		for _, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad("clickhouse.addr", "%q is not host:port", a)
				break
			}
		}
	}
	if c.ClickHouse.Cluster != "" {
		if err := CheckIdentifier(c.ClickHouse.Cluster); err != nil {
			bad("clickhouse.cluster", "%v", err)
		}
	}
	if err := CheckIdentifier(c.ClickHouse.Database); err != nil {
		bad("clickhouse.database", "%v", err)
	}
	positive(bad, "clickhouse.dial_timeout", c.ClickHouse.DialTimeout)
	switch c.ClickHouse.Compression {
	case "auto", "none", "lz4", "zstd":
	default:
		bad("clickhouse.compression", "must be one of auto, none, lz4, zstd; got %q", c.ClickHouse.Compression)
	}
	if c.Loader.MaxRecordBytes < 1024 {
		bad("loader.max_record_bytes", "must be at least 1KiB, got %d", c.Loader.MaxRecordBytes)
	}
	if c.Loader.MaxBufferedRecords < 1 {
		bad("loader.max_buffered_records", "must be at least 1, got %d", c.Loader.MaxBufferedRecords)
	}
	if c.Loader.Linger < 0 {
		bad("loader.linger", "must not be negative, got %s", c.Loader.Linger)
	}
	if c.Loader.BatchMaxBytes < 1024 {
		bad("loader.batch_max_bytes", "must be at least 1KiB, got %d", c.Loader.BatchMaxBytes)
	}
	positive(bad, "loader.delivery_timeout", c.Loader.DeliveryTimeout)
	positive(bad, "loader.url_connect_timeout", c.Loader.URLConnectTimeout)
	positive(bad, "loader.url_header_timeout", c.Loader.URLHeaderTimeout)
	positive(bad, "loader.url_idle_timeout", c.Loader.URLIdleTimeout)
	if c.Loader.URLMaxBytes < 1024 {
		bad("loader.url_max_bytes", "must be at least 1KiB, got %d", c.Loader.URLMaxBytes)
	}
	if c.Loader.ZstdMaxWindow < 1<<20 || c.Loader.ZstdMaxWindow > 1<<31 {
		bad("loader.zstd_max_window", "must be between 1MiB and 2GiB, got %d", c.Loader.ZstdMaxWindow)
	}
	if c.Loader.ShowErrors < 0 {
		bad("loader.show_errors", "must not be negative, got %d", c.Loader.ShowErrors)
	}
	if c.Processor.Group == "" {
		bad("processor.group", "must not be empty")
	}
	positive(bad, "processor.session_timeout", c.Processor.SessionTimeout)
	positive(bad, "processor.shutdown_timeout", c.Processor.ShutdownTimeout)
	if c.Processor.BatchRows < 1 {
		bad("processor.batch_rows", "must be at least 1, got %d", c.Processor.BatchRows)
	}
	if c.Processor.InsertRows < 0 {
		bad("processor.insert_rows", "must not be negative, got %d", c.Processor.InsertRows)
	}
	if c.Processor.InsertRows > c.Processor.BatchRows && c.Processor.InsertBytes < c.Processor.BatchBytes {
		bad("processor.insert_bytes", "must be at least processor.batch_bytes (%d), got %d", c.Processor.BatchBytes, c.Processor.InsertBytes)
	}
	if c.Processor.BatchBytes < 1024 {
		bad("processor.batch_bytes", "must be at least 1KiB, got %d", c.Processor.BatchBytes)
	}
	positive(bad, "processor.flush_interval", c.Processor.FlushInterval)
	if c.Aggregator.Group == "" {
		bad("aggregator.group", "must not be empty")
	}
	if c.Aggregator.Group == c.Processor.Group {
		bad("aggregator.group", "must differ from processor.group %q: the two groups each read the whole topic", c.Processor.Group)
	}
	positive(bad, "aggregator.session_timeout", c.Aggregator.SessionTimeout)
	positive(bad, "aggregator.shutdown_timeout", c.Aggregator.ShutdownTimeout)
	positive(bad, "aggregator.flush_interval", c.Aggregator.FlushInterval)
	if c.Aggregator.BatchRecords < 1 {
		bad("aggregator.batch_records", "must be at least 1, got %d", c.Aggregator.BatchRecords)
	}
	positive(bad, "watch.quiet_period", c.Watch.QuietPeriod)
	positive(bad, "watch.poll_interval", c.Watch.PollInterval)
	if c.Watch.Parallel < 1 {
		bad("watch.parallel", "must be at least 1, got %d", c.Watch.Parallel)
	}
	if c.Broker.Port < 1 || c.Broker.Port > 65535 {
		bad("broker.port", "must be a TCP port, got %d", c.Broker.Port)
	}
	if c.Broker.DataDir == "" {
		bad("broker.data_dir", "must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error; got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json; got %q", c.Log.Format)
	}
	for key, addr := range map[string]string{"processor.metrics_addr": c.Processor.MetricsAddr,
		"aggregator.metrics_addr": c.Aggregator.MetricsAddr, "watch.metrics_addr": c.Watch.MetricsAddr} {
		if addr == "" {
			continue
		}
		// Metrics need no token (they say nothing of the data): loopback
		// is the default, another address the operator's choice.
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port (or empty for none)", addr)
		}
	}
	c.validateSecurity(bad)
	c.validateAPI(bad)
	c.validateTypes(bad)
	return errors.Join(errs...)
}

// CheckIdentifier refuses a name that is not a plain SQL identifier:
// ASCII letters, digits and _, not starting with a digit. Names that reach
// ClickHouse's SQL (the database, the tables and columns of a schema) must
// pass it; they are quoted as well (clickhouse.Ident).
func CheckIdentifier(name string) error { return schemas.CheckIdentifier(name) }

func positive(bad func(string, string, ...any), key string, d time.Duration) {
	if d <= 0 {
		bad(key, "must be positive, got %s", d)
	}
}

// KeyError is a configuration value that cannot work.
type KeyError struct {
	Key    string
	Reason string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Reason }

// Bytes is a size in bytes. In a file or the environment it may be written
// as a plain number or with a unit: 512KiB, 64MiB, 1GiB, 1MB.
type Bytes int64

// UnmarshalText parses a size such as "64MiB".
func (b *Bytes) UnmarshalText(text []byte) error {
	n, err := ParseBytes(string(text))
	if err != nil {
		return err
	}
	*b = n
	return nil
}

// ParseBytes parses a size such as "64MiB", "1MB" or "1048576".
func ParseBytes(s string) (Bytes, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
		{"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB", s)
	}
	return Bytes(n * mult), nil
}
