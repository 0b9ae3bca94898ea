package metrics

import "testing"

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
