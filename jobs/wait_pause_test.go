package jobs

import (
	"testing"
	"time"
)

// Looks stay 10 ms apart for the first second of a wait, so that the end
// of a small push is seen within 10 ms of its commit; then they space out
// up to every.
func TestNextPause(t *testing.T) {
	every := 500 * time.Millisecond
	pause, since := min(firstLook, every), time.Duration(0)
	var got []time.Duration
	for since < 3*time.Second {
		got = append(got, pause)
		since += pause
		pause = nextPause(since, pause, every)
	}
	for i, p := range got {
		at := time.Duration(0)
		for _, q := range got[:i] {
			at += q
		}
		if at < quickLooks && p != firstLook {
			t.Fatalf("pause %d, %s into the wait, is %s: want %s during the first %s", i, at, p, firstLook, quickLooks)
		}
		if p > every {
			t.Fatalf("pause %d is %s, more than every (%s)", i, p, every)
		}
	}
	if last := got[len(got)-1]; last != every {
		t.Fatalf("the pauses end at %s, want every (%s): %v", last, every, got)
	}
	if p := nextPause(0, firstLook, 5*time.Millisecond); p != 5*time.Millisecond {
		t.Fatalf("with every 5ms the first pauses are %s", p)
	}
}
