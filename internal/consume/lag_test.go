package consume

import (
	"testing"
	"time"
)

func TestEagerDue(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	const flush = time.Second // an eager wait of 100 ms
	for _, c := range []struct {
		name        string
		first, last time.Time
		want        time.Time
	}{
		{"never written: at once", ms(5000), time.Time{}, ms(5000)},
		{"after a quiet spell: at once", ms(5000), ms(4000), ms(5000)},
		{"exactly the eager wait after the last write: at once", ms(5000), ms(4900), ms(5000)},
		{"soon after a write: the eager wait after it", ms(5000), ms(4950), ms(5050)},
		{"came while a write ran: the eager wait after the record", ms(5000), ms(5030), ms(5100)},
	} {
		if got := EagerDue(c.first, c.last, flush); !got.Equal(c.want) {
			t.Errorf("%s: due %v after t0, want %v", c.name, got.Sub(t0), c.want.Sub(t0))
		}
	}
}

// However records trickle in, writes due by EagerDue are at least the eager
// wait apart, and no record waits longer than that.
func TestEagerDueBoundsWrites(t *testing.T) {
	const flush = time.Second
	eager := flush / EagerFraction
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, gap := range []time.Duration{time.Millisecond, 7 * time.Millisecond, 40 * time.Millisecond, 99 * time.Millisecond, 150 * time.Millisecond, time.Second} {
		var last, first time.Time // the last write; the oldest record held
		var writes []time.Time
		for i := range 2000 {
			now := t0.Add(time.Duration(i) * gap)
			// Writes that came due before this record are made.
			if !first.IsZero() {
				if due := EagerDue(first, last, flush); !due.After(now) {
					if due.Sub(first) > eager {
						t.Fatalf("gap %v: a record waited %v", gap, due.Sub(first))
					}
					writes, last, first = append(writes, due), due, time.Time{}
				}
			}
			if first.IsZero() {
				first = now
			}
		}
		for i := 1; i < len(writes); i++ {
			if d := writes[i].Sub(writes[i-1]); d < eager {
				t.Fatalf("gap %v: writes %v apart", gap, d)
			}
		}
		if len(writes) == 0 {
			t.Fatalf("gap %v: nothing written", gap)
		}
	}
}
