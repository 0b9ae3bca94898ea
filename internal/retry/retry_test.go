package retry

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
