package jobs

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewID returns a job id that sorts by start time and is unique in
// practice: UTC time to the second and 48 random bits, e.g.
// 20261121T134512Z-3f9a0c1b2d4e.
func NewID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
