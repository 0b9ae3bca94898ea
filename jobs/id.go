package jobs

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"
)

// NewID returns a job id that sorts by start time, to the microsecond, and
// is unique in practice: UTC time to the second, then the microseconds and
// 28 random bits in 12 hex digits, e.g. 20261121T134512Z-0c35f3f9a0c1.
// Lists of jobs order by it within a second: several jobs of one loader
// start within the same second.
func NewID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	now = now.UTC()
	return fmt.Sprintf("%s-%05x%07x", now.Format("20060102T150405Z"), now.Nanosecond()/1000, binary.BigEndian.Uint32(b[:])>>4)
}
