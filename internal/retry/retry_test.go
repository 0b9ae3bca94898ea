package retry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestWaitGrowsAndIsBounded(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for n, ceiling := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 4: 80 * time.Millisecond, 50: 80 * time.Millisecond} {
		var top time.Duration
		for range 2000 {
			w := b.Wait(n)
			if w <= 0 || w > ceiling {
				t.Fatalf("Wait(%d) = %s, want in (0, %s]", n, w, ceiling)
			}
			top = max(top, w)
		}
		if top < ceiling*3/4 {
			t.Errorf("Wait(%d) never came near its ceiling %s (max %s): no jitter range", n, ceiling, top)
		}
	}
}

func TestForeverRetriesUntilSuccess(t *testing.T) {
	calls := 0
	err := Forever(context.Background(), Backoff{Min: time.Millisecond, Max: time.Millisecond}, quiet, "op",
		func(error) bool { return true },
		func(context.Context) error {
			calls++
			if calls < 5 {
				return errors.New("down")
			}
			return nil
		})
	if err != nil || calls != 5 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestForeverStopsOnPermanentErrorAndCancel(t *testing.T) {
	permanent := errors.New("bad data")
	calls := 0
	err := Forever(context.Background(), Default, quiet, "op", func(err error) bool { return err != permanent },
		func(context.Context) error { calls++; return permanent })
	if err != permanent || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = Forever(ctx, Backoff{Min: time.Hour, Max: time.Hour}, quiet, "op", func(error) bool { return true },
		func(context.Context) error { return errors.New("down") })
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v after %s: a cancelled context must end the wait", err, time.Since(start))
	}
}

// hook records what a Hook hears.
type hook struct {
	retries, backoffs, backingOff int
	events                        []string
}

func (h *hook) Retrying() { h.retries++; h.events = append(h.events, "retry") }
func (h *hook) BackingOff(on bool) {
	if on {
		h.backoffs++
		h.backingOff++
		h.events = append(h.events, "on")
	} else {
		h.backingOff--
		h.events = append(h.events, "off")
	}
}

// The hook hears of every retry, and of backing off from the first
// failure until Forever returns, however it returns.
func TestForeverTellsItsHook(t *testing.T) {
	h := &hook{}
	calls := 0
	b := Backoff{Min: time.Millisecond, Max: time.Millisecond}.WithHook(h)
	err := Forever(context.Background(), b, quiet, "op", func(error) bool { return true }, func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("down")
		}
		return nil
	})
	if err != nil || h.retries != 2 || h.backoffs != 1 || h.backingOff != 0 {
		t.Fatalf("err %v, hook %+v", err, h)
	}
	if got := strings.Join(h.events, " "); got != "retry on retry off" {
		t.Fatalf("events %q", got)
	}

	// A permanent error is not retried: nothing to hear.
	h = &hook{}
	permanent := errors.New("bad data")
	_ = Forever(context.Background(), Default.WithHook(h), quiet, "op", func(err error) bool { return err != permanent },
		func(context.Context) error { return permanent })
	if h.retries != 0 || h.backoffs != 0 || len(h.events) != 0 {
		t.Fatalf("a permanent error was heard as a retry: %+v", h)
	}
	// Nor is a first attempt that works.
	_ = Forever(context.Background(), Default.WithHook(h), quiet, "op", func(error) bool { return true },
		func(context.Context) error { return nil })
	if len(h.events) != 0 {
		t.Fatalf("a success was heard: %+v", h)
	}
	// A permanent error after a retry ends the backing off.
	calls = 0
	_ = Forever(context.Background(), Backoff{Min: time.Millisecond, Max: time.Millisecond, Hook: h}, quiet, "op",
		func(err error) bool { return err != permanent },
		func(context.Context) error {
			if calls++; calls == 1 {
				return errors.New("down")
			}
			return permanent
		})
	if h.retries != 1 || h.backoffs != 1 || h.backingOff != 0 {
		t.Fatalf("a permanent error after a retry: %+v", h)
	}

	// A wait cut short by ctx still ends.
	h = &hook{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_ = Forever(ctx, Backoff{Min: time.Hour, Max: time.Hour, Hook: h}, quiet, "op", func(error) bool { return true },
		func(context.Context) error { return errors.New("down") })
	if h.retries != 1 || h.backoffs != 1 || h.backingOff != 0 {
		t.Fatalf("after a cancelled wait: %+v", h)
	}
}

func TestOrDefaultKeepsTheHook(t *testing.T) {
	h := &hook{}
	if b := (Backoff{Hook: h}).OrDefault(); b.Min != Default.Min || b.Max != Default.Max || b.Hook != h {
		t.Fatalf("OrDefault of a hook alone: %+v", b)
	}
	b := Backoff{Min: time.Millisecond, Max: time.Second}
	if b.OrDefault() != b {
		t.Fatalf("OrDefault changed a set backoff: %+v", b.OrDefault())
	}
}
