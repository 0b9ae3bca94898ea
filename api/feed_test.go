package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"skuflow/config"
)

// feedServer serves a Server without tokens (loopback clients may call
// it) and without a job store: the feed of what is published.
func feedServer(t *testing.T) (*Server, string) {
	s, hs := feedHTTPServer(t)
	return s, hs.URL
}

func feedHTTPServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	s := New(Options{Config: config.Default()})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		hs.Close()
	})
	return s, hs
}

func dialFeed(t *testing.T, ctx context.Context, base string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/feed", nil)
	if err != nil {
		t.Fatalf("dial the feed: %v", err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	if e := readEvent(t, ctx, c); e.Kind != "hello" {
		t.Fatalf("first event %+v, want hello", e)
	}
	return c
}

func readEvent(t *testing.T, ctx context.Context, c *websocket.Conn) Event {
	t.Helper()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read the feed: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("a %v message, want text", typ)
	}
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an event: %q: %v", b, err)
	}
	return e
}

func TestHub(t *testing.T) {
	h := NewHub(nil)
	missing, endMissing := h.Subscribe(1)
	follower := h.Follow(1)
	h.Publish(Event{Kind: "records", Records: 1})
	h.Publish(Event{Kind: "records", Records: 2}) // both buffers are full
	if e := <-missing; e.Records != 1 || e.At.IsZero() {
		t.Fatalf("subscriber got %+v", e)
	}
	if _, ok := <-follower.Events(); !ok {
		t.Fatal("the follower lost its first event")
	}
	if _, ok := <-follower.Events(); ok || !errors.Is(follower.Err(), ErrSlowSubscriber) {
		t.Fatalf("a follower past its buffer: open %v, err %v; want dropped", ok, follower.Err())
	}
	if h.Dropped() != 1 || h.Subscribers() != 1 {
		t.Fatalf("dropped %d, subscribers %d; want 1, 1", h.Dropped(), h.Subscribers())
	}
	h.Publish(Event{Kind: "records", Records: 3})
	if e := <-missing; e.Records != 3 {
		t.Fatalf("a subscriber that missed an event got %+v next, want the third", e)
	}
	endMissing()
	endMissing() // twice is fine
	follower.Close()

	last := h.Follow(4)
	h.Close()
	if _, ok := <-last.Events(); ok || !errors.Is(last.Err(), ErrHubClosed) {
		t.Fatalf("after Close: open %v, err %v", ok, last.Err())
	}
	if late := h.Follow(4); !errors.Is(late.Err(), ErrHubClosed) {
		t.Fatalf("a follower after Close: %v", late.Err())
	}
	h.Publish(Event{Kind: "records"}) // no one to tell, no panic
}

// Published events reach a WebSocket client as JSON text messages, in
// order, and reach a Server-Sent Events client too.
func TestFeedEvents(t *testing.T) {
	s, base := feedServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dialFeed(t, ctx, base)

	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /v1/events: %d %s", resp.StatusCode, ct)
	}
	sse := bufio.NewScanner(resp.Body)
	nextData := func() Event {
		t.Helper()
		for sse.Scan() {
			if data, ok := strings.CutPrefix(sse.Text(), "data: "); ok {
				var e Event
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					t.Fatalf("SSE data %q: %v", data, err)
				}
				return e
			}
		}
		t.Fatalf("the event stream ended: %v", sse.Err())
		return Event{}
	}
	if e := nextData(); e.Kind != "hello" {
		t.Fatalf("first SSE event %+v", e)
	}
	for s.feed.Subscribers() < 2 {
		time.Sleep(5 * time.Millisecond)
	}

	s.feed.Publish(Event{Kind: "records", Type: "products", Records: 2, Sample: `{"sku":"a","name":"<b>Anna</b>"}`})
	s.feed.Publish(Event{Kind: "records", Type: "products", Records: 1, Sample: `{"sku":"b"}`})
	for _, want := range []int{2, 1} {
		e := readEvent(t, ctx, c)
		if e.Kind != "records" || e.Type != "products" || e.Records != want || e.At.IsZero() {
			t.Fatalf("WebSocket event %+v, want %d records", e, want)
		}
		if e = nextData(); e.Kind != "records" || e.Records != want {
			t.Fatalf("SSE event %+v, want %d records", e, want)
		}
	}

	// A plain GET of the WebSocket says what to do.
	code, body, _ := getText(t, base+"/v1/feed")
	if code != http.StatusUpgradeRequired || !strings.Contains(body, "/v1/events") {
		t.Fatalf("plain GET /v1/feed: %d %s", code, body)
	}

	// Shutting down closes the feed with the reason.
	s.feed.Close()
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("after shutdown: %v, want going away", err)
	}
}

// An http.Server's graceful shutdown ends the feed's streams: it does not
// wait its whole timeout for a Server-Sent Events client, and a WebSocket
// client is told at once.
func TestFeedEndsOnShutdown(t *testing.T) {
	_, hs := feedHTTPServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialFeed(t, ctx, hs.URL)
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/v1/feed?sse=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := bufio.NewScanner(resp.Body)
	if !sse.Scan() {
		t.Fatal("no Server-Sent Events")
	}

	began := time.Now()
	if err := hs.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a feed client: %v", err)
	}
	t.Logf("the server shut down in %s", time.Since(began).Round(time.Millisecond))
	var rest strings.Builder
	for sse.Scan() {
		rest.WriteString(sse.Text() + "\n")
	}
	if !strings.Contains(rest.String(), "event: end") || !strings.Contains(rest.String(), "shutting down") {
		t.Fatalf("the event stream ended with %q, want an end event with the reason", rest.String())
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("the WebSocket after shutdown: %v, want going away", err)
	}
}

// A client that stops reading is dropped once it is a buffer behind;
// Publish never waits for it, and a client that reads goes on getting
// every event.
func TestFeedDropsStuckClient(t *testing.T) {
	s, base := feedServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stuck := dialFeed(t, ctx, base) // reads its hello, then nothing
	healthy := dialFeed(t, ctx, base)
	for s.feed.Subscribers() < 2 {
		time.Sleep(5 * time.Millisecond)
	}

	type got struct {
		n    int
		last Event
		err  error
	}
	healthyDone := make(chan got, 1)
	var healthyN atomic.Int64
	go func() {
		var g got
		for {
			_, b, err := healthy.Read(ctx)
			if err != nil {
				g.err = err
				healthyDone <- g
				return
			}
			g.n++
			healthyN.Add(1)
			_ = json.Unmarshal(b, &g.last)
			if g.last.Kind == "end-of-test" {
				healthyDone <- g
				return
			}
		}
	}()

	// Events of 8 KiB: the stuck client's socket buffers (a few MiB on
	// loopback) fill first, then its place in the hub.
	sample := strings.Repeat("x", 8<<10)
	var published int
	var slowest time.Duration
	deadline := time.Now().Add(45 * time.Second)
	for s.feed.Dropped() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stuck client was not dropped after %d events", published)
		}
		began := time.Now()
		s.feed.Publish(Event{Kind: "records", Type: "products", Records: 1, Sample: sample})
		slowest = max(slowest, time.Since(began))
		published++
		// Keep to the reading client's pace, however slow this machine:
		// it must never be the one dropped.
		for int64(published)-healthyN.Load() > feedBuffer/4 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	t.Logf("the stuck client was dropped after %d events of 8 KiB; the slowest Publish took %s", published, slowest)
	// Far below feedWriteTimeout: Publish never waits on a client.
	if slowest > 250*time.Millisecond {
		t.Errorf("a Publish took %s with a stuck client attached", slowest)
	}
	s.feed.Publish(Event{Kind: "end-of-test"})
	select {
	case g := <-healthyDone:
		if g.err != nil || g.n != published+1 {
			t.Fatalf("the reading client got %d of %d events (err %v)", g.n, published+1, g.err)
		}
	case <-ctx.Done():
		t.Fatal("the reading client did not get the last event")
	}
	if n := s.feed.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers, want the reading client alone", n)
	}

	// Reading again, the stuck client finds its connection closed: with
	// the reason if the close frame got through before the write timed
	// out, else cut.
	var err error
	for err == nil {
		_, _, err = stuck.Read(ctx)
	}
	if ctx.Err() != nil {
		t.Fatal("the stuck client's connection was never closed")
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "behind") {
			t.Fatalf("closed with %v, want a policy violation saying it fell behind", ce)
		}
		t.Logf("the stuck client was told: %d %q", ce.Code, ce.Reason)
	} else {
		t.Logf("the stuck client's connection was cut: %v", err)
	}
}

func getText(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, b.String(), resp.Header
}
