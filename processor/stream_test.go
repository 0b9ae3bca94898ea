package processor

import (
	"testing"
	"time"

	"skuflow/config"
	"skuflow/schemas"
)

// A stream ends once it holds a batch's worth of set-aside records (copies
// kept until it ends), whatever else would keep it open: a topic of bad
// records costs no more memory than one of good ones. (ends asks the lag
// last; with no client, reaching it panics, so the bound must decide.)
func TestStreamEndsOnSetAsideRecords(t *testing.T) {
	cfg := config.Default().Processor
	cfg.BatchRows, cfg.InsertRows, cfg.FlushInterval = 10, 1000, time.Hour
	p := &Processor{cfg: cfg}
	b := newBatch(schemas.Products, &topicInfo{})
	for i := range 10 {
		b.add(record(0, int64(i), `{"sku":"ok"}`))
	}
	s := newStream()
	s.first = time.Now()
	for i := range 10 {
		s.bad = append(s.bad, errorRow{rec: record(1, int64(i), "not json")})
	}
	if !p.ends(s, b, time.Now()) {
		t.Fatal("a stream holding a batch's worth of set-aside records goes on")
	}
	s.bad, s.badBytes = nil, int(cfg.BatchBytes)
	if !p.ends(s, b, time.Now()) {
		t.Fatal("a stream holding batch_bytes of set-aside records goes on")
	}
}
