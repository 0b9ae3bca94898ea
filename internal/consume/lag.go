package consume

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Lag follows how far a member's polled records are behind the broker, to
// tell when it has read everything there is: then what it holds can go in
// at once instead of waiting for a batch to fill or age. Track, Forget and
// CaughtUp belong to the poll loop; Refresh may run beside them. The zero
// Lag is ready to use.
type Lag struct {
	// Meter, when set, is told each partition's lag (metrics.Lag).
	Meter *Meter
	// behind is each partition's lag as of its last fetch, for CaughtUp:
	// the poll loop's alone.
	behind map[int32]int64

	// mu guards what Refresh shares with the poll loop: the next offset
	// to read of each partition polled, and the gauges.
	mu     sync.Mutex
	next   map[int32]int64
	gauges map[int32]prometheus.Gauge
}

// Track notes, from a polled partition, how many records the broker held
// beyond the last one polled, as of the fetch that brought them.
func (l *Lag) Track(fp kgo.FetchTopicPartition) {
	if l.behind == nil {
		l.behind = map[int32]int64{}
	}
	var behind int64
	n := len(fp.Records)
	switch {
	case fp.Err != nil:
		return
	case n > 0:
		behind = fp.HighWatermark - (fp.Records[n-1].Offset + 1)
	}
	l.behind[fp.Partition] = behind
	if l.Meter == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > 0 {
		if l.next == nil {
			l.next = map[int32]int64{}
		}
		l.next[fp.Partition] = fp.Records[n-1].Offset + 1
	}
	l.gauge(fp.Partition).Set(float64(max(behind, 0)))
}

// gauge returns partition p's lag gauge. Callers hold l.mu.
func (l *Lag) gauge(p int32) prometheus.Gauge {
	g := l.gauges[p]
	if g == nil {
		if l.gauges == nil {
			l.gauges = map[int32]prometheus.Gauge{}
		}
		g = l.Meter.lagGauge(p)
		l.gauges[p] = g
	}
	return g
}

// Forget drops partitions no longer owned.
func (l *Lag) Forget(partitions []int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range partitions {
		delete(l.behind, p)
		delete(l.next, p)
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

// Refresh sets the lag of every partition polled from topic from the
// broker's end offsets now. Fetches alone would leave it as it was while
// the member polls nothing: waiting on a failing ClickHouse, exactly when
// records pile up.
func (l *Lag) Refresh(ctx context.Context, adm *kadm.Client, topic string) error {
	l.mu.Lock()
	polled := len(l.next)
	l.mu.Unlock()
	if l.Meter == nil || polled == 0 {
		return nil
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ends.Each(func(o kadm.ListedOffset) {
		next, ok := l.next[o.Partition]
		if o.Err != nil || !ok {
			return
		}
		l.gauge(o.Partition).Set(float64(max(o.Offset-next, 0)))
	})
	return nil
}

// lagTick is how often WatchLag asks the broker for its end offsets: a
// scrape sees the lag at most this stale, polling or not.
const lagTick = time.Second

// WatchLag refreshes l from cl's broker every lagTick until ctx ends or
// stop is called. A failed refresh leaves the lag as it was: the broker
// being away shows in the services' own errors.
func (l *Lag) WatchLag(ctx context.Context, cl *kgo.Client, topic string) (stop func()) {
	if l.Meter == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	adm := kadm.NewClient(cl)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lagTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, rcancel := context.WithTimeout(ctx, lagTick)
				_ = l.Refresh(rctx, adm, topic)
				rcancel()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// EagerFraction: once a member has read everything the broker holds, what
// it holds goes in at once when it has written nothing for FlushInterval/
// EagerFraction (100 ms by default), and otherwise once that long has
// passed since its last write or since its oldest record came, whichever
// is sooner (EagerDue), rather than waiting for a batch to fill or for
// FlushInterval. A record that comes to an idle pipeline is written at
// once, the end of a push without delay, while a trickle of records makes
// at most EagerFraction writes per FlushInterval.
const EagerFraction = 10

// EagerDue is when a member that has read everything the broker holds
// writes what it holds, the oldest of which came at first, when its last
// write began at last (zero: never). A record waits no longer than
// FlushInterval/EagerFraction, and writes of records that came after the
// last write began (what a member holds once it has written) are at least
// that far apart.
func EagerDue(first, last time.Time, flushInterval time.Duration) time.Time {
	since := last
	if first.Before(last) {
		since = first
	}
	due := since.Add(flushInterval / EagerFraction)
	if due.Before(first) {
		return first
	}
	return due
}
