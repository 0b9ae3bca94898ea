package consume

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"skuflow/internal/metrics"
	"skuflow/internal/retry"
)

// Meter is the metrics of one record type in a consuming service (the
// processor, the aggregator): what it reads, how far behind the broker it
// is, how late its data is, and its retries. Its counters are bound to the
// type once, so that measuring a fetch costs no label lookup. A nil *Meter
// measures nothing.
type Meter struct {
	typ      string
	consumed prometheus.Counter
	bytes    prometheus.Counter
	age      prometheus.Gauge
	retries  *prometheus.CounterVec // curried with the type: op remains

	// oldest returns the Kafka timestamp (Unix nanoseconds) of the oldest
	// record read but not yet written, 0 when none waits. It is read at
	// every tick of WatchAge, from another goroutine.
	oldest func() int64

	// failing is how many of the type's operations are backing off at
	// once (retry.Hook); backingOff is 1 while any is.
	mu         sync.Mutex
	failing    int
	backingOff prometheus.Gauge
}

// NewMeter registers the consuming services' metrics (metrics.Register)
// and returns those of type typ.
func NewMeter(typ string) *Meter {
	metrics.Register(metrics.RecordsConsumed, metrics.BytesConsumed, metrics.Lag, metrics.DataAge,
		metrics.Retries, metrics.BackingOff)
	m := &Meter{
		typ:        typ,
		consumed:   metrics.RecordsConsumed.WithLabelValues(typ),
		bytes:      metrics.BytesConsumed.WithLabelValues(typ),
		age:        metrics.DataAge.WithLabelValues(typ),
		retries:    metrics.Retries.MustCurryWith(prometheus.Labels{"type": typ}),
		backingOff: metrics.BackingOff.WithLabelValues(typ),
	}
	// Present from the start, at 0: a rate or an alert needs the series
	// before the first event.
	m.backingOff.Set(0)
	m.age.Set(0)
	return m
}

// Consumed counts records polled and their bytes (keys and values).
func (m *Meter) Consumed(records, bytes int) {
	if m == nil || records == 0 {
		return
	}
	m.consumed.Add(float64(records))
	m.bytes.Add(float64(bytes))
}

// lagGauge returns the lag gauge of a partition.
func (m *Meter) lagGauge(partition int32) prometheus.Gauge {
	return metrics.Lag.WithLabelValues(m.typ, strconv.Itoa(int(partition)))
}

// forgetLag removes the lag series of a partition no longer owned.
func (m *Meter) forgetLag(partition int32) {
	metrics.Lag.DeleteLabelValues(m.typ, strconv.Itoa(int(partition)))
}

// Backoff returns b (or retry.Default when b is zero) with a hook that
// counts op's retries and says when the type is backing off: from an
// operation's first failure until it works. op is a bounded name: insert,
// flush, load, prepare.
func (m *Meter) Backoff(op string, b retry.Backoff) retry.Backoff {
	b = b.OrDefault()
	if m == nil {
		return b
	}
	m.retries.WithLabelValues(op) // the series, at 0
	return b.WithHook(&retryHook{m: m, retries: m.retries.WithLabelValues(op)})
}

// retryHook is a Meter's retry.Hook for one operation.
type retryHook struct {
	m       *Meter
	retries prometheus.Counter
}

func (h *retryHook) Retrying() { h.retries.Inc() }

func (h *retryHook) BackingOff(on bool) {
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		m.failing++
	} else {
		m.failing--
	}
	m.backingOff.Set(float64(min(m.failing, 1)))
}

// ageTick is how often WatchAge refreshes the data age: a scrape sees it at
// most this stale, even while the service is stuck in a retry.
const ageTick = time.Second

// WatchAge keeps the type's data age current from oldest (see Meter.oldest)
// until stop is called: now and every ageTick, and whenever RefreshAge is.
func (m *Meter) WatchAge(oldest func() int64) (stop func()) {
	if m == nil {
		return func() {}
	}
	m.oldest = oldest
	m.RefreshAge()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ageTick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				m.RefreshAge()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// RefreshAge sets the data age now, as when something went in.
func (m *Meter) RefreshAge() {
	if m == nil || m.oldest == nil {
		return
	}
	m.age.Set(Age(m.oldest(), time.Now()))
}

// Age is how old, in seconds, a record of Kafka timestamp oldest (Unix
// nanoseconds) is at now: 0 for none (0), and never below 0 (a producer's
// clock ahead of ours).
func Age(oldest int64, now time.Time) float64 {
	if oldest <= 0 {
		return 0
	}
	return max(float64(now.UnixNano()-oldest)/1e9, 0)
}

// Earlier returns the earlier of two timestamps (Unix nanoseconds), 0
// standing for none.
func Earlier(a, b int64) int64 {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	}
	return min(a, b)
}
