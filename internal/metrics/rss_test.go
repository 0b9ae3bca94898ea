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
	before, start := CPUSeconds(), time.Now()
	x := uint64(1)
	for time.Since(start) < 200*time.Millisecond {
		for range 1 << 16 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	// 200 ms of busy wall time is at least 100 ms of CPU, even on a
	// crowded machine.
	if used := CPUSeconds() - before; used < 0.1 {
		t.Fatalf("%.3f CPU seconds for 200 ms of work", used)
	}
	_ = x
}
