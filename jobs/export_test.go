package jobs

import "time"

// SetClock gives s the clock of a host whose time differs, for tests.
func SetClock(s *Store, now func() time.Time) { s.now = now }
