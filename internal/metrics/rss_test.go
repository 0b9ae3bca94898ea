package metrics

import (
	"testing"
	"time"
)

func TestPeakRSSGrowsWithUse(t *testing.T) {
	before := PeakRSS()
	if before <= 0 {
		t.Fatalf("PeakRSS() = %d on Linux", before)
	}
	buf := make([]byte, 256<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	after := PeakRSS()
	if after < before+200<<20 {
		t.Fatalf("peak RSS went from %d to %d after touching 256 MiB", before, after)
	}
	_ = buf[len(buf)-1]
}

func TestCPUSecondsGrowsWithWork(t *testing.T) {
	// A fixed amount of work, not a stretch of wall time: on a crowded
	// machine the process gets less of the CPU, never less work done.
	before := CPUSeconds()
	x := uint64(1)
	start := time.Now()
	for range 1 << 28 {
		x = x*6364136223846793005 + 1442695040888963407
	}
	// The same work takes some tens of milliseconds of CPU however busy
	// the machine is; CPUSeconds must see it (and not more than the wall
	// time it took, on one goroutine).
	used := CPUSeconds() - before
	if wall := time.Since(start).Seconds(); used < 0.02 || used > wall+0.05 {
		t.Fatalf("%.3f CPU seconds for %.3f s of one goroutine's work", used, wall)
	}
	_ = x
}
