package consume

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Lag follows how far a member's polled records are behind the broker, to
// tell when it has read everything there is: then what it holds can go in
// at once instead of waiting for a batch to fill or age. The zero Lag is
// ready to use; it is not safe for concurrent use.
type Lag struct {
	// Meter, when set, is told each partition's lag (metrics.Lag).
	Meter  *Meter
	behind map[int32]int64
	gauges map[int32]prometheus.Gauge
}

// Track notes, from a polled partition, how many records the broker held
// beyond the last one polled, as of the fetch that brought them.
func (l *Lag) Track(fp kgo.FetchTopicPartition) {
	if l.behind == nil {
		l.behind = map[int32]int64{}
	}
	var behind int64
	switch n := len(fp.Records); {
	case fp.Err != nil:
		return
	case n > 0:
		behind = fp.HighWatermark - (fp.Records[n-1].Offset + 1)
	}
	l.behind[fp.Partition] = behind
	if l.Meter != nil {
		g := l.gauges[fp.Partition]
		if g == nil {
			if l.gauges == nil {
				l.gauges = map[int32]prometheus.Gauge{}
			}
			g = l.Meter.lagGauge(fp.Partition)
			l.gauges[fp.Partition] = g
		}
		g.Set(float64(max(behind, 0)))
	}
}

// Forget drops partitions no longer owned.
func (l *Lag) Forget(partitions []int32) {
	for _, p := range partitions {
		delete(l.behind, p)
		if _, ok := l.gauges[p]; ok {
			delete(l.gauges, p)
			l.Meter.forgetLag(p)
		}
	}
}

// CaughtUp reports whether every record the broker had at the last fetch
// has been polled from cl.
func (l *Lag) CaughtUp(cl *kgo.Client) bool {
	if cl.BufferedFetchRecords() > 0 {
		return false
	}
	for _, n := range l.behind {
		if n > 0 {
			return false
		}
	}
	return true
}

// EagerFraction: once a member has read everything the broker holds, what
// it holds goes in as soon as its oldest record is FlushInterval/
// EagerFraction old (100 ms by default), rather than waiting for a batch to
// fill or for FlushInterval. The end of a push is then written without
// delay, while a trickle of records makes at most EagerFraction writes per
// FlushInterval.
const EagerFraction = 10
