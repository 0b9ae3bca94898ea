package kafka

import (
	"bytes"
	"runtime"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerCompression is the producer option for the configured codec.
// snappy is compressed in pieces on several cores (see parallelSnappy);
// the others as franz-go does.
func ProducerCompression(name string) kgo.Opt {
	if name == "snappy" {
		return kgo.WithCompressor(newParallelSnappy(runtime.GOMAXPROCS(0)))
	}
	return kgo.ProducerBatchCompression(Compression(name))
}

// snappyPiece is the least input a piece compressed on its own gets:
// below it, starting a goroutine costs more than the core it adds.
const snappyPiece = 64 << 10

// parallelSnappy is a kgo.Compressor writing the raw snappy block Kafka
// takes (what franz-go's own snappy writes, with klauspost's s2), with a
// batch cut into pieces compressed at the same time. franz-go compresses
// every batch of a produce request one after the other on the one
// goroutine that writes to a broker: with a single broker, that goroutine
// was the loader's bottleneck. A snappy block is a length and then
// literals and copies whose offsets reach back only into the block's own
// output, so blocks compressed apart, concatenated under one length, are
// one valid block (s2.ConcatBlocks): any snappy reader decodes it. The
// pieces lose only the matches across their borders.
type parallelSnappy struct {
	pieces int
	bufs   sync.Pool // *[]byte, the pieces' compressed output
}

func newParallelSnappy(pieces int) *parallelSnappy {
	return &parallelSnappy{pieces: max(pieces, 1)}
}

// Compress implements kgo.Compressor. It may be called by several
// brokers' goroutines at once.
func (c *parallelSnappy) Compress(dst *bytes.Buffer, src []byte, _ ...kgo.CompressFlag) ([]byte, kgo.CompressionCodecType) {
	n := min(c.pieces, len(src)/snappyPiece)
	// The whole block is at most this long: a piece's own bound, summed,
	// is a few bytes more than the whole's, so it is what dst needs.
	need := 0
	size := (len(src) + max(n, 1) - 1) / max(n, 1)
	for at := 0; at < len(src); at += size {
		need += s2.MaxEncodedLen(min(size, len(src)-at))
	}
	if need < 0 || len(src) == 0 {
		need = s2.MaxEncodedLen(len(src))
	}
	if need > dst.Cap() {
		dst.Grow(need)
	}
	// As franz-go's own compressor: dst's bytes are used directly, and the
	// buffer is reset before it is used again.
	out := dst.Bytes()[:0]
	if n <= 1 {
		return s2.EncodeSnappy(out, src), kgo.CodecSnappy
	}
	blocks := make([][]byte, n)
	bufs := make([]*[]byte, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		piece := src[i*size : min((i+1)*size, len(src))]
		bufs[i] = c.buf(s2.MaxEncodedLen(len(piece)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			blocks[i] = s2.EncodeSnappy(*bufs[i], piece)
		}()
	}
	bufs[0] = c.buf(s2.MaxEncodedLen(size))
	blocks[0] = s2.EncodeSnappy(*bufs[0], src[:size])
	wg.Wait()
	out, err := s2.ConcatBlocks(out, blocks...)
	for _, b := range bufs {
		c.bufs.Put(b)
	}
	if err != nil {
		// Cannot happen with blocks s2 wrote; franz-go then sends the
		// batch uncompressed.
		return nil, kgo.CodecError
	}
	return out, kgo.CodecSnappy
}

// buf returns a pooled buffer of at least n bytes.
func (c *parallelSnappy) buf(n int) *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}
