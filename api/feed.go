package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"skuflow/config"
	"skuflow/internal/metrics"
	"skuflow/jobs"
)

// The feed's limits. A client gets feedBuffer events ahead of what it has
// taken; one that falls further behind is dropped, so a slow browser never
// holds up ingestion or the other clients.
const (
	// feedBuffer is an event per record POST or job change: a few seconds
	// of a busy API, far more than a healthy client ever lags.
	feedBuffer = 256
	// feedWriteTimeout bounds one message to one client: a client that
	// does not take it in that time is stuck, and dropped.
	feedWriteTimeout = 5 * time.Second
	// feedPing keeps idle connections open through proxies that cut
	// silent ones, and finds clients that went away without a word.
	feedPing = 30 * time.Second
	// jobPoll is how often the feed reads recent jobs, to tell of jobs
	// the loader and the watcher push (the API's own are told at once).
	jobPoll = time.Second
	// jobPollLimit is how many recent jobs each look reads.
	jobPollLimit = 50
)

// Event is one thing the live feed tells: a job's new state, or records
// accepted.
type Event struct {
	Kind string    `json:"kind"` // "hello", "job" or "records"
	Job  *jobs.Job `json:"job,omitempty"`
	// Progress is, for a job that is loading, how far each consumer group
	// is behind its end (as GET /v1/jobs/{id} answers with 425).
	Progress []jobs.GroupProgress `json:"progress,omitempty"`
	Type     string               `json:"type,omitempty"`
	Records  int                  `json:"records,omitempty"`
	Sample   string               `json:"sample,omitempty"`
	At       time.Time            `json:"at"`
}

// ErrSlowSubscriber ends a subscription from Follow that fell more than
// its buffer behind.
var ErrSlowSubscriber = errors.New("fell too far behind the live feed")

// ErrHubClosed ends every subscription when the hub closes.
var ErrHubClosed = errors.New("the live feed stopped (the API is shutting down)")

// Hub hands events to the feed's subscribers without ever waiting for
// one: Publish only puts events in buffers. A subscriber from Subscribe
// whose buffer is full misses events; one from Follow is dropped.
type Hub struct {
	log *slog.Logger
	mu  sync.Mutex
	// subs holds every live subscription; closed says Close was called.
	subs   map[*Subscription]struct{}
	closed bool
	// ctx ends with Close: it bounds the goroutines the hub's users start
	// (the job poller, the feed's connections).
	ctx    context.Context
	cancel context.CancelFunc
	// start runs the job poller once.
	start sync.Once
	// servers holds the http.Servers whose shutdown closes the hub.
	servers sync.Map
	dropped atomic.Int64
}

// Subscription is one follower of a hub.
type Subscription struct {
	h *Hub
	c chan Event
	// strict: dropped when its buffer is full, rather than missing events.
	strict bool
	// err says why c was closed; written before the close, under h.mu.
	err error
}

// NewHub returns an empty hub.
func NewHub(log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{log: log, subs: map[*Subscription]struct{}{}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// Publish hands e to every subscriber that has room for it, and drops the
// followers that have none. It never blocks.
func (h *Hub) Publish(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- e:
		default:
			if s.strict {
				h.end(s, fmt.Errorf("%w (%d events not yet sent)", ErrSlowSubscriber, cap(s.c)))
				h.dropped.Add(1)
			}
		}
	}
}

// Subscribe returns a channel of events and a function that ends the
// subscription. Events that find the channel full are missed.
func (h *Hub) Subscribe(buffer int) (<-chan Event, func()) {
	s := h.subscribe(buffer, false)
	return s.c, s.Close
}

// Follow returns a subscription that is ended, its channel closed and
// Err saying so, as soon as it is more than buffer events behind: a
// follower never silently misses an event.
func (h *Hub) Follow(buffer int) *Subscription { return h.subscribe(buffer, true) }

func (h *Hub) subscribe(buffer int, strict bool) *Subscription {
	s := &Subscription{h: h, c: make(chan Event, buffer), strict: strict}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.err = ErrHubClosed
		close(s.c)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// end closes s's channel with the reason; h.mu is held.
func (h *Hub) end(s *Subscription, err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.err = err
	close(s.c)
}

// Subscribers returns how many subscriptions are live.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Dropped returns how many followers were dropped for falling behind.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// Close ends every subscription, and those made later at once.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.end(s, ErrHubClosed)
	}
	h.cancel()
}

// closeOnShutdown closes the hub when the http.Server serving r starts to
// shut down: http.Server.Shutdown waits for open requests, and a Server-
// Sent Events stream stays open until its subscription ends. WebSocket
// clients hear of the shutdown at once too.
func (h *Hub) closeOnShutdown(r *http.Request) {
	hs, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return
	}
	if _, known := h.servers.LoadOrStore(hs, true); !known {
		hs.RegisterOnShutdown(h.Close)
	}
}

// Events returns the subscription's channel; it is closed when the
// subscription ends.
func (s *Subscription) Events() <-chan Event { return s.c }

// Err returns why the subscription ended: ErrSlowSubscriber,
// ErrHubClosed, or nil while it lasts or when it was closed by its owner.
func (s *Subscription) Err() error {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.end(s, nil)
}

// feedRoutes serves the live feed: GET /v1/feed, a WebSocket of JSON text
// messages (Server-Sent Events instead with ?sse=1), and GET /v1/events,
// the same feed as Server-Sent Events. Browsers cannot set headers on
// either, so the token may come as ?access_token=.
func (s *Server) feedRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/feed", s.auth.require(config.ScopeRead, http.HandlerFunc(s.feedWebSocket)))
	mux.Handle("GET /v1/events", s.auth.require(config.ScopeRead, http.HandlerFunc(s.feedSSE)))
}

// Start follows the job store for the feed until ctx ends or the server
// shuts down: jobs that the loader and the watcher push show there too,
// and loading jobs are settled (marked done once both groups pass them).
// The feed starts it with its first client if the main has not; it runs
// once.
func (s *Server) Start(ctx context.Context) {
	s.feed.start.Do(func() {
		if s.o.Jobs == nil {
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(s.feed.ctx, cancel)
		go func() {
			defer stop()
			defer cancel()
			s.pollJobs(ctx)
		}()
	})
}

// feedWebSocket sends the hub's events to one WebSocket client, each as a
// JSON text message, starting with {"kind":"hello"}. A client that falls
// feedBuffer events behind, or takes longer than feedWriteTimeout over
// one message, is closed with the reason (policy violation, 1008).
func (s *Server) feedWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("sse") == "1" {
		s.feedSSE(w, r)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.Header().Set("Upgrade", "websocket")
		writeError(w, http.StatusUpgradeRequired, "websocket_required",
			"GET /v1/feed is a WebSocket; for Server-Sent Events use GET /v1/events or /v1/feed?sse=1")
		return
	}
	if !s.feedClients.TryAcquire() {
		writeError(w, http.StatusServiceUnavailable, "busy", fmt.Sprintf("the feed has api.max_feed_clients (%d) clients", s.o.Config.API.MaxFeedClients))
		return
	}
	defer s.feedClients.Release()
	metrics.FeedClients.Inc()
	defer metrics.FeedClients.Dec()
	s.feed.closeOnShutdown(r)
	// The default origin check stays on: a page of another site must not
	// follow the feed with a loopback user's rights.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	s.Start(s.feed.ctx)
	sub := s.feed.Follow(feedBuffer)
	defer sub.Close()
	log := s.o.Log.With("client", r.RemoteAddr, "feed", "websocket")
	// The client sends nothing; reading answers its pings and closes, and
	// ends ctx when it goes. (r.Context() is not to be used after Accept;
	// a shutdown ends the subscription, and the connection with a close
	// frame saying why.)
	ctx := c.CloseRead(context.Background())

	send := func(e Event) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, feedWriteTimeout)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	if err := send(Event{Kind: "hello", At: time.Now()}); err != nil {
		c.CloseNow()
		return
	}
	ping := time.NewTicker(feedPing)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			c.CloseNow()
			return
		case e, ok := <-sub.Events():
			if !ok {
				err := sub.Err()
				code := websocket.StatusGoingAway
				if errors.Is(err, ErrSlowSubscriber) {
					code = websocket.StatusPolicyViolation
					log.Warn("feed client dropped", "reason", err)
				}
				// A reason of at most 123 bytes fits a close frame.
				c.Close(code, clip(err.Error(), 123))
				return
			}
			if err := send(e); err != nil {
				if ctx.Err() == nil {
					log.Warn("feed client dropped", "reason", fmt.Sprintf("did not take a message within %s: %v", feedWriteTimeout, err))
				}
				c.CloseNow()
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, feedWriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				c.CloseNow()
				return
			}
		}
	}
}

// feedSSE sends the hub's events as Server-Sent Events: each a message
// whose data is the event's JSON; a dropped client gets an "end" event
// with the reason.
func (s *Server) feedSSE(w http.ResponseWriter, r *http.Request) {
	if !s.feedClients.TryAcquire() {
		writeError(w, http.StatusServiceUnavailable, "busy", fmt.Sprintf("the feed has api.max_feed_clients (%d) clients", s.o.Config.API.MaxFeedClients))
		return
	}
	defer s.feedClients.Release()
	metrics.FeedClients.Inc()
	defer metrics.FeedClients.Dec()
	rc := http.NewResponseController(w)
	s.feed.closeOnShutdown(r)
	s.Start(s.feed.ctx)
	sub := s.feed.Follow(feedBuffer)
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(chunk string) error {
		_ = rc.SetWriteDeadline(time.Now().Add(feedWriteTimeout))
		if _, err := fmt.Fprint(w, chunk); err != nil {
			return err
		}
		return rc.Flush()
	}
	data := func(e Event) string {
		b, _ := json.Marshal(e)
		return "data: " + string(b) + "\n\n"
	}
	if write("retry: 2000\n"+data(Event{Kind: "hello", At: time.Now()})) != nil {
		return
	}
	ping := time.NewTicker(feedPing)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-sub.Events():
			if !ok {
				err := sub.Err()
				if errors.Is(err, ErrSlowSubscriber) {
					s.o.Log.Warn("feed client dropped", "client", r.RemoteAddr, "reason", err)
				}
				b, _ := json.Marshal(map[string]string{"reason": err.Error()})
				_ = write("event: end\ndata: " + string(b) + "\n\n")
				return
			}
			if write(data(e)) != nil {
				return
			}
		case <-ping.C:
			if write(": ping\n\n") != nil {
				return
			}
		}
	}
}

// jobMark is what the feed last told of a job; a job whose mark changes
// is told again.
type jobMark struct {
	state                    jobs.State
	read, produced, rejected int64
	behind                   int64
	err                      string
}

// pollJobs reads the recent jobs every jobPoll while anyone follows the
// feed, settles the loading ones, and publishes every job that is new or
// changed since the look before.
func (s *Server) pollJobs(ctx context.Context) {
	seen := map[string]jobMark{}
	primed := false
	t := time.NewTicker(jobPoll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.feed.Subscribers() == 0 {
			continue
		}
		err := s.pollOnce(ctx, seen, primed)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.o.Log.Warn("feed: reading jobs", "err", err)
			failing = true
		case err == nil:
			failing, primed = false, true
		}
	}
}

// pollOnce is one look of pollJobs. The first (primed false) only learns
// the jobs: a new client reads them from GET /v1/jobs.
func (s *Server) pollOnce(ctx context.Context, seen map[string]jobMark, primed bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*jobPoll)
	defer cancel()
	list, err := s.o.Jobs.List(ctx, jobs.Filter{}, jobPollLimit)
	if err != nil {
		return err
	}
	now := make(map[string]bool, len(list))
	for _, j := range list {
		now[j.ID] = true
		var progress []jobs.GroupProgress
		settledDone := false
		if j.State == jobs.Produced {
			progress = s.settle(ctx, j)
			// settle has told the feed of a job it found done.
			settledDone = j.State == jobs.Done
		}
		m := jobMark{state: j.State, read: j.Read, produced: j.Produced, rejected: j.Rejected, err: j.Error}
		for _, g := range progress {
			m.behind += g.Behind
		}
		old, known := seen[j.ID]
		seen[j.ID] = m
		if !primed || settledDone || (known && old == m) {
			continue
		}
		s.feed.Publish(Event{Kind: "job", Job: j, Progress: progress})
	}
	for id := range seen {
		if !now[id] {
			delete(seen, id)
		}
	}
	return nil
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
