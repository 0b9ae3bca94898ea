// Package retry runs an operation until it works or the caller stops
// caring: exponential backoff with full jitter, no limit on attempts. The
// processor and the aggregator retry ClickHouse with it; neither ever gives
// up on its own, because giving up would mean dropping or skipping data.
package retry

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Backoff says how long to wait between attempts.
type Backoff struct {
	// Min is the ceiling of the first wait; each failure doubles it up to
	// Max. The actual wait is drawn uniformly below the ceiling (full
	// jitter), so that many instances that failed together do not retry
	// together.
	Min, Max time.Duration
	// Hook, when set, hears of each retry and each wait (for metrics); it
	// changes nothing of how Forever retries.
	Hook Hook
}

// Hook hears of Forever's retries. Calls come from the goroutine that runs
// Forever; several Forevers may share a hook at once.
type Hook interface {
	// Retrying is called each time an attempt failed and another will
	// follow, before the wait.
	Retrying()
	// BackingOff(true) is called at the first of those, and
	// BackingOff(false) when Forever returns after it, however it
	// returns: the operation is backing off in between, attempts
	// included (an attempt against a server that hangs may take longer
	// than the waits).
	BackingOff(bool)
}

// WithHook returns b with h as its hook.
func (b Backoff) WithHook(h Hook) Backoff {
	b.Hook = h
	return b
}

// OrDefault returns b, or Default (with b's hook) when b sets no waits.
func (b Backoff) OrDefault() Backoff {
	if b.Min <= 0 || b.Max <= 0 {
		return Default.WithHook(b.Hook)
	}
	return b
}

// Default suits a database that is restarting: the first retry comes fast,
// and an outage of minutes costs a retry every few seconds.
var Default = Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// Wait returns the wait before attempt number n (n >= 1).
func (b Backoff) Wait(n int) time.Duration {
	ceiling := b.Min
	for i := 1; i < n && ceiling < b.Max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, b.Max)
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

// Forever calls op until it returns nil, a permanent error (one for which
// retriable returns false), or ctx ends; it returns the last error. Each
// failure is logged with the attempt number and the wait.
func Forever(ctx context.Context, b Backoff, log *slog.Logger, what string, retriable func(error) bool, op func(context.Context) error) error {
	backingOff := false
	if b.Hook != nil {
		defer func() {
			if backingOff {
				b.Hook.BackingOff(false)
			}
		}()
	}
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			if attempt > 1 {
				log.Info(what+" succeeded after retries", "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if !retriable(err) {
			return err
		}
		wait := b.Wait(attempt)
		log.Warn(what+" failed; retrying", "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
		if b.Hook != nil {
			b.Hook.Retrying()
			if !backingOff {
				backingOff = true
				b.Hook.BackingOff(true)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
