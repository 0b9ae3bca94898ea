package metrics

import "github.com/prometheus/client_golang/prometheus"

// The metrics of skuflow's services, each process registering what it
// uses (a processor never exports the watcher's). Every name is listed,
// with what it means, in docs/operations.md. The service a series comes
// from is its scrape job; labels are bounded sets.

// Consuming services: the processor and the aggregator.
var (
	// RecordsConsumed counts records polled from a type's topic.
	RecordsConsumed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skuflow_records_consumed_total", Help: "Records read from the type's topic.",
	}, []string{"type"})
	// BytesConsumed counts the bytes of those records (key and value).
	BytesConsumed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skuflow_consumed_bytes_total", Help: "Bytes of the records read from the type's topic (keys and values).",
	}, []string{"type"})
	// Lag is how many records of each partition are not yet handled:
	// the end offset less the next offset to read, from each fetch and
	// from the broker every second (consume.Lag).
	Lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skuflow_consumer_lag_records", Help: "Records of the partition on the topic not yet read by this instance.",
	}, []string{"type", "partition"})
	// DataAge is how old the oldest record read but not yet written to
	// ClickHouse is (by its Kafka timestamp), 0 when nothing waits: how
	// late the data is.
	DataAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skuflow_data_age_seconds", Help: "Age of the oldest record read but not yet in ClickHouse; 0 when none waits.",
	}, []string{"type"})
	// Retries counts operations retried after a failure (an insert, a
	// commit, a load).
	Retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skuflow_retries_total", Help: "Operations retried after a failure.",
	}, []string{"type", "op"})
	// BackingOff is 1 while the service waits to retry a failed operation
	// (ClickHouse or Kafka is failing), 0 otherwise.
	BackingOff = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skuflow_backing_off", Help: "1 from an operation's first failure until it works (the service is retrying), else 0.",
	}, []string{"type"})
)

// The processor.
var (
	// RecordsInserted counts rows inserted into a type's table.
	RecordsInserted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skuflow_records_inserted_total", Help: "Rows inserted into the type's table.",
	}, []string{"type"})
	// InsertDuration is the time of one INSERT, from its first block sent
	// to its end (a processor's INSERT takes consecutive batches while
	// there is more to read).
	InsertDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "skuflow_insert_duration_seconds", Help: "Time of one INSERT into ClickHouse, from its first block to its end.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms to 41 s
	}, []string{"type"})
	// BatchRows is the rows of one INSERT.
	BatchRows = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "skuflow_insert_batch_rows", Help: "Rows of one INSERT into ClickHouse.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 11), // 1 to 1,048,576
	}, []string{"type"})
)

// Records rejected, by any service: the loader's stages (decode,
// validate) when the watcher or the API pushes, the processor's (decode,
// key, insert).
var RecordsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "skuflow_records_rejected_total", Help: "Records set aside in ingest_errors, by stage.",
}, []string{"type", "stage"})

// The aggregator.
var (
	// AggregatorKeys is the keys the instance's state holds.
	AggregatorKeys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skuflow_aggregator_keys", Help: "Keys in the aggregator's state for the partitions it owns.",
	}, []string{"type"})
	// RebuildDuration is the time to load newly assigned partitions' state
	// from ClickHouse.
	RebuildDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "skuflow_aggregator_rebuild_duration_seconds", Help: "Time to load assigned partitions' state from ClickHouse.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14), // 10 ms to 82 s
	}, []string{"type"})
	// AggregateRowsWritten counts rows of partial results written.
	AggregateRowsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skuflow_aggregate_rows_written_total", Help: "Rows of aggregate results written (one per changed group and partition).",
	}, []string{"type"})
)

// Jobs, the watcher and pushes.
var (
	// Jobs is the recent jobs by state, as the job store holds them.
	Jobs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skuflow_jobs", Help: "Jobs started in the last 24 hours, by state (producing, produced, done, failed) and stalled (producing, not heard from).",
	}, []string{"type", "state"})
	// InboxFiles is the files in each folder of an inbox.
	InboxFiles = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skuflow_inbox_files", Help: "Files in the inbox's folders: waiting (the inbox itself), processing, done, failed.",
	}, []string{"type", "folder"})
	// PushDuration is the time of one push, from the start to produced.
	PushDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "skuflow_push_duration_seconds", Help: "Time of one push (a file or an upload) from its start until every record was produced.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50 ms to 7 min
	}, []string{"type"})
	// RecordsProduced counts records a push or the API produced.
	RecordsProduced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skuflow_records_produced_total", Help: "Records produced to the type's topic by pushes and the API.",
	}, []string{"type"})
)

// The API.
var (
	// HTTPRequests counts requests by route pattern and status code.
	HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skuflow_http_requests_total", Help: "HTTP requests answered, by route and status code.",
	}, []string{"route", "code"})
	// HTTPDuration is the time to answer a request, by route.
	HTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "skuflow_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15), // 1 ms to 16 s
	}, []string{"route"})
	// FeedClients is the live feed's clients.
	FeedClients = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skuflow_feed_clients", Help: "Clients following the live feed.",
	})
)

// Register registers collectors on Registry, once each (a second call
// for one already there is harmless), so that a process exports only the
// metrics of what it runs.
func Register(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := Registry.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
				panic(err)
			}
		}
	}
}
