package aggregator_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// BenchmarkAggregator1M runs the aggregator as a process against a topic of
// 1,000,000 distinct skus and reports its throughput (a new group reading
// the whole topic), the time a restarted instance takes to rebuild the
// state of all of them, and its peak memory. Run it with
// `go test -run '^$' -bench Aggregator1M ./aggregator/` (make bench does).
func BenchmarkAggregator1M(b *testing.B) {
	const rows = 1000000
	s := testenv.NewStack(b, "SKUFLOW_AGGREGATOR_BATCH_RECORDS=200000", "SKUFLOW_AGGREGATOR_FLUSH_INTERVAL=1s")
	file := testenv.Gen(b, b.TempDir(), "million.ndjson", "--rows", strconv.Itoa(rows), "--names", "10000", "--seed", "77")
	if out, stderr, err := s.Loader(b, "push", "--no-progress", file); err != nil {
		b.Fatalf("push: %v\n%s%s", err, out, stderr)
	}
	for range b.N {
		group := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		start := time.Now()
		a := s.Service(b, "aggregator", "SKUFLOW_AGGREGATOR_GROUP="+group)
		s.WaitCommitted(b, group, rows, 10*time.Minute)
		apply := time.Since(start)

		a.Stop(b)
		start = time.Now()
		a.Start(b)
		loaded := func() bool {
			for p := range 6 {
				if !a.LogContains(fmt.Sprintf("state loaded from ClickHouse\" component=aggregator partition=%d ", p)) {
					return false
				}
			}
			return true
		}
		for !loaded() {
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("no rebuild:\n%s", a.Log(30))
			}
			time.Sleep(20 * time.Millisecond)
		}
		rebuild := time.Since(start)
		rss := peakRSS(b, a.Pid())
		a.Stop(b)

		b.ReportMetric(rows/apply.Seconds(), "records/s")
		b.ReportMetric(rebuild.Seconds(), "rebuild-s/1M-skus")
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}

// peakRSS reads a process's VmHWM.
func peakRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
