package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/metrics"
	"skuflow/jobs"
	"skuflow/producer"
)

// Metrics are the collectors the server updates, for metrics.Register:
// requests, the feed's clients, what uploads and POSTed records produced
// and rejected, and the recent jobs by state, read from the job store.
func (s *Server) Metrics() []prometheus.Collector {
	return []prometheus.Collector{metrics.HTTPRequests, metrics.HTTPDuration, metrics.FeedClients,
		metrics.RecordsProduced, metrics.RecordsRejected, metrics.PushDuration, s.jobsGauge}
}

// metricsRoutes serves GET /metrics: a read token, or without tokens a
// loopback client, as every read.
func (s *Server) metricsRoutes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", s.auth.require(config.ScopeRead,
		promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{Registry: metrics.Registry})))
}

// startMetrics gives the series of every type a value from the start, so
// that rates over them have data before the first upload.
func (s *Server) startMetrics() {
	for name := range s.o.Types {
		metrics.RecordsProduced.WithLabelValues(name)
		metrics.RecordsRejected.WithLabelValues(name, "decode")
		metrics.RecordsRejected.WithLabelValues(name, "validate")
		metrics.PushDuration.WithLabelValues(name)
	}
}

// unmatched is the route label of a request no pattern matched (the mux's
// own 404 and 405).
const unmatched = "unmatched"

// instrument counts every request by the pattern that served it (never
// its path: ids and keys would make a series each) and its status code,
// and times it.
func instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		// The mux sets the pattern on r itself.
		route := r.Pattern
		if route == "" {
			route = unmatched
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK // nothing written: net/http answers 200
		}
		metrics.HTTPRequests.WithLabelValues(route, fmt.Sprint(code)).Inc()
		metrics.HTTPDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// statusWriter keeps the status code a handler answers. Unwrap lets
// http.ResponseController (flushes, deadlines, the WebSocket's hijack)
// reach the connection's own writer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx are interim, but for the WebSocket's 101, the last answer.
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countPush adds what the push of an upload did to its type's metrics:
// the records produced (by a push that failed midway too: they are on the
// topic), those rejected by stage, and, once the whole file is produced,
// its duration.
func countPush(res *producer.Result) {
	if res == nil || res.Type == "" {
		return
	}
	metrics.RecordsProduced.WithLabelValues(res.Type).Add(float64(res.Produced))
	for stage, n := range res.RejectedByStage {
		metrics.RecordsRejected.WithLabelValues(res.Type, stage).Add(float64(n))
	}
	if res.State == jobs.Produced {
		metrics.PushDuration.WithLabelValues(res.Type).Observe(res.Duration.Seconds())
	}
}

// countRecords adds a POST of records to its type's metrics: those it
// produced, or those that made it refused, by stage (at most
// producer.MaxRejections of a request are known).
func countRecords(typ string, produced int, rejected []producer.Rejection) {
	metrics.RecordsProduced.WithLabelValues(typ).Add(float64(produced))
	for _, r := range rejected {
		metrics.RecordsRejected.WithLabelValues(typ, r.Stage).Inc()
	}
}

// The jobs gauge: how far back it looks, how often it reads the job store
// at most (Prometheus scrapes every 15 s), and how long a read may take
// before the scrape goes on with the last values.
const (
	jobsWindow  = 24 * time.Hour
	jobsRefresh = 15 * time.Second
	jobsTimeout = 3 * time.Second
)

// jobStates are the state label's values: a job's state, and stalled for
// one producing that has not been heard from (jobs.Job.Stalled), which is
// then not counted as producing. Every value is exported for every type,
// 0 when no job is in it, so that the series exist before the first job.
var jobStates = []string{string(jobs.Producing), string(jobs.Produced), string(jobs.Done), string(jobs.Failed), "stalled"}

// jobsGauge exports metrics.Jobs, read from the job store when Prometheus
// scrapes, at most every jobsRefresh: the jobs started in the last
// jobsWindow by type and state.
type jobsGauge struct {
	s *Server

	mu   sync.Mutex
	read time.Time // when the store was last read (or tried)
}

func (g *jobsGauge) Describe(ch chan<- *prometheus.Desc) { metrics.Jobs.Describe(ch) }

func (g *jobsGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.s.o.Now(); now.Sub(g.read) >= jobsRefresh {
		g.read = now
		ctx, cancel := context.WithTimeout(context.Background(), jobsTimeout)
		counts, err := g.count(ctx, now)
		cancel()
		if err != nil {
			// The last values stay: a gauge that drops to nothing while
			// ClickHouse is away would say no job is stalled.
			g.s.o.Log.Warn("count the recent jobs for /metrics", "err", err)
		} else {
			metrics.Jobs.Reset()
			for typ, byState := range counts {
				for _, state := range jobStates {
					metrics.Jobs.WithLabelValues(typ, state).Set(float64(byState[state]))
				}
			}
		}
	}
	metrics.Jobs.Collect(ch)
}

// count reads the jobs started since now less jobsWindow from the job
// store: how many of each type are in each state. Every type the server
// serves is there, with no jobs or some.
func (g *jobsGauge) count(ctx context.Context, now time.Time) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	for name := range g.s.o.Types {
		out[name] = map[string]int64{}
	}
	if g.s.o.Conn == nil {
		return out, nil
	}
	// The producing jobs' last heartbeats come along, for Stalled to
	// judge by this server's clock, as the job list does.
	db := g.s.o.Config.ClickHouse.Database
	rows, err := g.s.o.Conn.Query(ctx, fmt.Sprintf(
		"SELECT type, state, count(), groupArrayIf(updated_at, state = %s) FROM %s FINAL WHERE started_at >= toDateTime(%d) GROUP BY type, state",
		clickhouse.Quote(string(jobs.Producing)), clickhouse.Table(db, clickhouse.JobsTable), now.Add(-jobsWindow).Unix()))
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, clickhouse.JobsTable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			typ, state string
			n          uint64
			beats      []time.Time
		)
		if err := rows.Scan(&typ, &state, &n, &beats); err != nil {
			return nil, fmt.Errorf("read %s.%s: %w", db, clickhouse.JobsTable, err)
		}
		if typ == "" {
			typ = config.BuiltinType // a job of a release before types
		}
		if out[typ] == nil {
			out[typ] = map[string]int64{}
		}
		out[typ][state] += int64(n)
		for _, beat := range beats {
			if (&jobs.Job{State: jobs.Producing, Updated: beat}).Stalled(now) {
				out[typ][string(jobs.Producing)]--
				out[typ]["stalled"]++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, clickhouse.JobsTable, err)
	}
	return out, nil
}
