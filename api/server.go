// Package api is skuflow's HTTP door: file uploads and single records go
// through the loader's own pipeline (producer.Pusher), jobs are read from
// the job store, stored rows from ClickHouse, and a live feed and the
// operations page sit on top. It is a door, not a second pipeline.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/jobs"
	"skuflow/producer"
	"skuflow/schemas"
)

// Type is one record type the API serves: its schema, its configuration
// (config.Config.For) and the pusher of its topic.
type Type struct {
	Schema *schemas.Schema
	Config config.Config
	Pusher *producer.Pusher
	// Ready reports whether its topic can be reached.
	Ready func(ctx context.Context) error
	// Committed reads its consumer groups' offsets on topic, for the
	// progress of jobs that are loading.
	Committed func(ctx context.Context, topic string) (*jobs.Committed, error)
}

// Options wire a Server.
type Options struct {
	Config config.Config
	// Types by name; every one the configuration declares.
	Types map[string]*Type
	Conn  clickhouse.Conn
	Jobs  *jobs.Store
	Log   *slog.Logger
	// Now returns the time; tests may fix it.
	Now func() time.Time
}

// Server serves the API. Handler returns its routes; Shutdown waits for
// the pushes of uploaded files.
type Server struct {
	o      Options
	auth   *authenticator
	feed   *Hub
	pushes sync.WaitGroup
	// uploads bounds the uploads received or pushed at once
	// (api.max_uploads): each holds a spooled file on disk.
	uploads slots
	// feedClients bounds the live feed's clients (api.max_feed_clients).
	feedClients slots
	// pushCtx ends the pushes still running when a shutdown gives up on
	// them: their jobs fail with the reason.
	pushCtx    context.Context
	stopPushes context.CancelCauseFunc
	// jobsGauge exports the recent jobs by state (see Metrics).
	jobsGauge *jobsGauge
}

// New returns a server.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, auth: newAuthenticator(o.Config.API, o.Now), feed: NewHub(o.Log), uploads: make(slots, max(o.Config.API.MaxUploads, 1)),
		feedClients: make(slots, max(o.Config.API.MaxFeedClients, 1))}
	s.pushCtx, s.stopPushes = context.WithCancelCause(context.Background())
	s.jobsGauge = &jobsGauge{s: s}
	s.startMetrics()
	return s
}

// Feed is the server's live feed, which the page and WebSocket clients
// follow.
func (s *Server) Feed() *Hub { return s.feed }

// Handler returns every route, each request counted and timed by the
// route that served it (see Metrics).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("POST /v1/files", s.auth.require(config.ScopeWrite, http.HandlerFunc(s.postFile)))
	mux.Handle("GET /v1/jobs", s.auth.require(config.ScopeRead, http.HandlerFunc(s.listJobs)))
	mux.Handle("GET /v1/jobs/{id}", s.auth.require(config.ScopeRead, http.HandlerFunc(s.getJob)))
	mux.Handle("GET /v1/jobs/{id}/errors", s.auth.require(config.ScopeRead, http.HandlerFunc(s.jobErrors)))
	mux.Handle("POST /v1/records/{type}", s.auth.require(config.ScopeWrite, http.HandlerFunc(s.postRecords)))
	s.listRoutes(mux)
	s.feedRoutes(mux)
	s.pageRoutes(mux)
	s.openAPIRoutes(mux)
	s.metricsRoutes(mux)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return instrument(mux)
}

// Shutdown waits for the pushes of uploaded files to finish, until ctx
// ends; then it stops them, and their jobs fail with the reason.
func (s *Server) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.pushes.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.stopPushes(fmt.Errorf("the API stopped before the push finished"))
		<-done
	}
	s.feed.Close()
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when ClickHouse and every type's topic answer; each
// is asked at once, with its own time limit, so that one that hangs does
// not make the others look down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]func(context.Context) error{"clickhouse": s.o.Conn.Ping}
	for name, t := range s.o.Types {
		if t.Ready != nil {
			checks["kafka "+name] = t.Ready
		}
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]string{}
		ok  = true
	)
	for name, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// Which one, not the driver's text: /readyz needs no token.
				out[name], ok = "unreachable", false
				s.o.Log.Warn("not ready", "check", name, "err", err)
				return
			}
			out[name] = "ok"
		})
	}
	wg.Wait()
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ok, "checks": out})
}

// typeOf returns the record type a request names, or answers 404.
func (s *Server) typeOf(w http.ResponseWriter, name string) *Type {
	if name == "" {
		name = config.BuiltinType
	}
	t := s.o.Types[name]
	if t == nil {
		names := make([]string, 0, len(s.o.Types))
		for n := range s.o.Types {
			names = append(names, n)
		}
		writeError(w, http.StatusNotFound, "unknown_type", fmt.Sprintf("no record type %q (the types are %v)", name, names))
	}
	return t
}

// apiError is the body of every error answer.
type apiError struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details that depend on the error: the earlier job of a refused
	// upload, the rejected records of a request.
	Job     string   `json:"job,omitempty"`
	Records []reject `json:"records,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, apiError{errorBody{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// SweepSpool makes the spool folder and removes what an earlier run left
// in it (a crash, or a stop that did not wait for an upload): nothing in
// it is wanted once no push is running. It returns how many it removed.
func (s *Server) SweepSpool() (int, error) {
	dir := s.o.Config.API.SpoolDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("api.spool_dir %s: %w", dir, err)
	}
	left, err := filepath.Glob(filepath.Join(dir, "upload-*"))
	if err != nil {
		return 0, err
	}
	for _, f := range left {
		if err := os.Remove(f); err != nil {
			return 0, fmt.Errorf("api.spool_dir: %w", err)
		}
	}
	return len(left), nil
}
