package jobs_test

import (
	"slices"
	"testing"
	"time"

	"skuflow/jobs"
)

// Ids sort by start time, also within one second, and pass CheckID.
func TestNewIDSortsByStart(t *testing.T) {
	start := time.Date(2026, 11, 21, 13, 45, 12, 0, time.UTC)
	var ids []string
	for _, d := range []time.Duration{0, time.Microsecond, 2 * time.Microsecond, time.Millisecond, 999999 * time.Microsecond, time.Second} {
		for range 3 { // the same instant: unique all the same
			ids = append(ids, jobs.NewID(start.Add(d)))
		}
	}
	for i, id := range ids {
		if err := jobs.CheckID(id); err != nil {
			t.Fatal(err)
		}
		if len(id) != len("20261121T134512Z-3f9a0c1b2d4e") {
			t.Fatalf("id %q has another length", id)
		}
		if i%3 == 0 && i > 0 && id <= ids[i-1] {
			t.Fatalf("id %q of a later start sorts before %q", id, ids[i-1])
		}
	}
	if got := ids[0][:17]; got != "20261121T134512Z-" {
		t.Fatalf("id %q does not start with the UTC second", ids[0])
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Fatalf("ids repeat: %v", ids)
	}
}
