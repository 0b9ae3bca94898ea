package producer

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// builderChunk is how many records' structs a chunk holds.
const builderChunk = 512

// chunkBytes is the room a chunk has for its records' keys, values and
// provenance headers; a record too big for an eighth of it gets bytes of its own.
const chunkBytes = 256 << 10

// chunk is the memory builderChunk produced records are cut from: their
// structs, headers and bytes, so that a record costs no allocation of its
// own. With a chunkPool, a chunk whose every record is acknowledged is
// used again: a push of 2 million records no longer hands the garbage
// collector a gigabyte to clear and free (the records held 1.1 KB of heap
// each for as long as the broker took to acknowledge them, so the
// collector ran every few thousand records).
type chunk struct {
	recs []kgo.Record
	hdrs []kgo.RecordHeader
	buf  []byte
	next int // records handed out

	// refs counts the records handed out and not yet released, and one
	// more while the builder cuts from the chunk.
	refs atomic.Int32
	pool *chunkPool
	// ctx is the records' Context: the push's, which franz-go watches for
	// cancellation as it does the context given to Produce, and this
	// chunk, which the record's promise releases (chunkOf).
	ctx chunkContext
}

type chunkContext struct {
	context.Context
	c *chunk
}

// chunkPool keeps the chunks of one push whose records are all released.
type chunkPool struct {
	mu   sync.Mutex
	free []*chunk
}

func (p *chunkPool) get() *chunk {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		return nil
	}
	c := p.free[n-1]
	p.free = p.free[:n-1]
	return c
}

// newChunk returns an empty chunk, reused from pool when one is free; its
// records carry ctx (nil: none, and the chunk is never released).
func newChunk(pool *chunkPool, ctx context.Context) *chunk {
	c := pool.get()
	if c == nil {
		c = &chunk{recs: make([]kgo.Record, builderChunk), hdrs: make([]kgo.RecordHeader, builderChunk),
			buf: make([]byte, 0, chunkBytes), pool: pool}
		c.ctx.c = c
	}
	// A pool is one push's: its chunks' records carry the same ctx.
	c.next, c.buf, c.ctx.Context = 0, c.buf[:0], ctx
	c.refs.Store(1)
	return c
}

// fits says whether the chunk has a record and n bytes left.
func (c *chunk) fits(n int) bool {
	return c.next < len(c.recs) && cap(c.buf)-len(c.buf) >= n
}

// inChunk is how many of the chunk's bytes a copy of b takes.
func inChunk(b []byte) int {
	if len(b) > chunkBytes/8 {
		return 0
	}
	return len(b)
}

// record hands out the next record and its header, zeroed but for
// the Context. The caller checked fits.
func (c *chunk) record() (*kgo.Record, []kgo.RecordHeader) {
	i := c.next
	c.next++
	c.refs.Add(1)
	r := &c.recs[i]
	*r = kgo.Record{}
	if c.ctx.Context != nil {
		r.Context = &c.ctx
	}
	return r, c.hdrs[i : i+1 : i+1]
}

// copy returns a copy of b in the chunk's bytes (or of its own when it is
// big). The caller checked fits for every byte it copies.
func (c *chunk) copy(b []byte) []byte {
	if len(b) > chunkBytes/8 {
		return append([]byte(nil), b...)
	}
	start := len(c.buf)
	c.buf = append(c.buf, b...)
	return c.buf[start:len(c.buf):len(c.buf)]
}

// release drops one reference: a record's, once franz-go is done with it
// (its promise ran), or the builder's. The last one puts the chunk back
// in its pool.
func (c *chunk) release() {
	if c.refs.Add(-1) == 0 && c.pool != nil {
		c.pool.mu.Lock()
		c.pool.free = append(c.pool.free, c)
		c.pool.mu.Unlock()
	}
}

// chunkOf returns the chunk a record was cut from, when it is to be
// released.
func chunkOf(r *kgo.Record) *chunk {
	if cc, ok := r.Context.(*chunkContext); ok {
		return cc.c
	}
	return nil
}
