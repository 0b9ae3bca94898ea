package jobs

import (
	"sync"
)

// EndOffsets keeps, per partition, the highest offset a job produced. It is
// safe for concurrent use: produce callbacks of several partitions update it
// at once.
type EndOffsets struct {
	mu   sync.Mutex
	last map[int32]int64
}

// Observe records that offset was produced to partition.
func (e *EndOffsets) Observe(partition int32, offset int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		e.last = make(map[int32]int64)
	}
	if cur, ok := e.last[partition]; !ok || offset > cur {
		e.last[partition] = offset
	}
}

// Snapshot returns a copy: partition -> last offset produced.
func (e *EndOffsets) Snapshot() map[int32]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[int32]int64, len(e.last))
	for p, o := range e.last {
		out[p] = o
	}
	return out
}
