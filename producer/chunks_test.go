package producer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/kafka"
	"skuflow/schemas"
)

// products returns a reader of n generated products, and a copy of each
// as read (the reader's records live until its next one).
func products(t testing.TB, n int) (Reader, []*Record) {
	t.Helper()
	in := append(bytes.Join(jsonBenchProducts(n), []byte("\n")), '\n')
	r := NewNDJSONReader(bytes.NewReader(in), ReaderOptions{KeyFields: schemas.Products.Key})
	var out []*Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &Record{Line: rec.Line, JSON: bytes.Clone(rec.JSON)})
	}
	return NewNDJSONReader(bytes.NewReader(in), ReaderOptions{KeyFields: schemas.Products.Key}), out
}

// next reads the next record.
func next(t testing.TB, r Reader) *Record {
	t.Helper()
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func checkRecord(t *testing.T, what string, r *kgo.Record, want *Record) {
	t.Helper()
	sku := fmt.Sprintf("sku-%07d", want.Line-1)
	if string(r.Key) != sku || !bytes.Equal(r.Value, want.JSON) || len(r.Headers) != 1 || r.Headers[0].Key != kafka.HeaderProvenance ||
		string(r.Headers[0].Value) != "job "+strconv.FormatInt(want.Line, 10)+" src" {
		t.Fatalf("%s: record %s %s %v, want line %d", what, r.Key, r.Value, r.Headers, want.Line)
	}
}

// A recycling builder reuses a chunk once every record cut from it is
// released, and never one whose records franz-go may still hold.
func TestChunksReusedOnlyWhenReleased(t *testing.T) {
	in, recs := products(t, 4*builderChunk)
	p := NewPusher(nil, Options{Schema: schemas.Products, Topic: "products"})
	rb := p.newRecordBuilder("job", "src")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rb.recycle(ctx)

	var built []*kgo.Record
	for range recs[:2*builderChunk] {
		rec := next(t, in)
		r, reason := rb.build(rec, rec.Line, rec.Offset)
		if r == nil {
			t.Fatal(reason)
		}
		if r.Context.Done() != ctx.Done() {
			t.Fatal("the record's context is not the push's")
		}
		built = append(built, r)
	}
	// All of the first chunk's records but one are acknowledged, and all
	// of the second's.
	held := built[7]
	for i, r := range built {
		if i != 7 {
			release(r)
		}
	}
	seen := map[*kgo.Record]bool{}
	for _, r := range built {
		seen[r] = true
	}
	reused := 0
	for i, want := range recs[2*builderChunk:] {
		rec := next(t, in)
		r, _ := rb.build(rec, rec.Line, rec.Offset)
		if r == held {
			t.Fatalf("record %d took the struct of a record not released", i)
		}
		if seen[r] {
			reused++
		}
		checkRecord(t, "new", r, want)
	}
	checkRecord(t, "held while others were built", held, recs[7])
	// The second chunk is free once the builder leaves it for the third;
	// the first never is.
	if reused != builderChunk {
		t.Fatalf("%d records reused a struct, want the second chunk's %d", reused, builderChunk)
	}
}

// Built and released as the loader's promises do (on other goroutines),
// records cost no allocation.
func TestChunksNoAllocation(t *testing.T) {
	const n = 20000
	in := append(bytes.Join(jsonBenchProducts(n), []byte("\n")), '\n')
	p := NewPusher(nil, Options{Schema: schemas.Products, Topic: "products"})
	rb := p.newRecordBuilder("job", "src")
	rb.recycle(context.Background())
	acks := make(chan *kgo.Record, 5000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := range acks {
			release(r)
		}
	}()
	rd := bytes.NewReader(in)
	r := NewNDJSONReader(rd, ReaderOptions{KeyFields: schemas.Products.Key})
	run := func() {
		rd.Reset(in)
		for range n {
			rec := next(t, r)
			kr, reason := rb.build(rec, rec.Line, rec.Offset)
			if kr == nil {
				t.Fatal(reason)
			}
			acks <- kr
		}
	}
	run() // the first chunks
	if allocs := testing.AllocsPerRun(5, run); allocs > 20 {
		t.Fatalf("%.0f allocations for %d records", allocs, n)
	}
	close(acks)
	wg.Wait()
}

// A push's clock follows the time to its tick, and stops with its context.
func TestClock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := startClock(ctx, time.Millisecond)
	first := c.now()
	time.Sleep(50 * time.Millisecond)
	// Loose bounds: a busy machine may hold its goroutine back a while.
	for deadline := time.Now().Add(5 * time.Second); !c.now().After(first) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	now, got := time.Now(), c.now()
	if !got.After(first) || got.After(now) || now.Sub(got) > time.Second {
		t.Fatalf("the clock says %v (started at %v), the time is %v", got, first, now)
	}
	cancel()
	<-c.done
	stopped := c.now()
	time.Sleep(20 * time.Millisecond)
	if c.now() != stopped {
		t.Fatalf("the clock went on after its context ended: %v, then %v", stopped, c.now())
	}
}
