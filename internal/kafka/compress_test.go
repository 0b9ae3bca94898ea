package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// records returns n bytes that compress as produced records do: JSON-ish
// lines with repeated field names and varying values.
func records(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, `{"sku":"SKU-%08d","name":"name %d","description":"%x"}`+"\n", r.IntN(1e8), r.IntN(5000), r.Uint64())
	}
	return b.Bytes()[:n]
}

// decodeSnappy is a strict reader of a raw snappy block, written from the
// format's description apart from s2: it refuses s2's extensions (a copy
// with offset 0 repeats the last offset in s2; snappy has no such thing)
// and any copy reaching before the block's start.
func decodeSnappy(src []byte) ([]byte, error) {
	n, k := binary.Uvarint(src)
	if k <= 0 {
		return nil, errors.New("bad length")
	}
	src = src[k:]
	out := make([]byte, 0, n)
	for len(src) > 0 {
		tag := src[0]
		var length, offset int
		switch tag & 3 {
		case 0: // literal
			length = int(tag>>2) + 1
			src = src[1:]
			if extra := int(tag>>2) - 59; extra > 0 {
				if len(src) < extra {
					return nil, errors.New("short literal length")
				}
				length = 0
				for i := extra - 1; i >= 0; i-- {
					length = length<<8 | int(src[i])
				}
				length++
				src = src[extra:]
			}
			if len(src) < length {
				return nil, errors.New("short literal")
			}
			out = append(out, src[:length]...)
			src = src[length:]
			continue
		case 1:
			if len(src) < 2 {
				return nil, errors.New("short copy1")
			}
			length, offset = int(tag>>2&7)+4, int(tag>>5)<<8|int(src[1])
			src = src[2:]
		case 2:
			if len(src) < 3 {
				return nil, errors.New("short copy2")
			}
			length, offset = int(tag>>2)+1, int(binary.LittleEndian.Uint16(src[1:]))
			src = src[3:]
		case 3:
			if len(src) < 5 {
				return nil, errors.New("short copy4")
			}
			length, offset = int(tag>>2)+1, int(binary.LittleEndian.Uint32(src[1:]))
			src = src[5:]
		}
		if offset <= 0 || offset > len(out) {
			return nil, fmt.Errorf("copy offset %d with %d bytes written", offset, len(out))
		}
		for i := 0; i < length; i++ {
			out = append(out, out[len(out)-offset])
		}
	}
	if uint64(len(out)) != n {
		return nil, fmt.Errorf("decoded %d bytes, the block says %d", len(out), n)
	}
	return out, nil
}

func TestParallelSnappy(t *testing.T) {
	random := make([]byte, 700<<10)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	inputs := map[string][]byte{
		"empty":            {},
		"one byte":         {'x'},
		"under a piece":    records(snappyPiece-1, 1),
		"two pieces":       records(2*snappyPiece, 2),
		"uneven":           records(3*snappyPiece+12345, 3),
		"a batch":          records(1000000, 4),
		"incompressible":   random,
		"one repeated run": bytes.Repeat([]byte{'a'}, 5*snappyPiece+1),
	}
	for _, pieces := range []int{1, 2, 3, 8} {
		c := newParallelSnappy(pieces)
		for name, src := range inputs {
			t.Run(fmt.Sprintf("%s/%d", name, pieces), func(t *testing.T) {
				var dst bytes.Buffer
				dst.WriteString("stale bytes of the pool's last use")
				dst.Reset()
				out, codec := c.Compress(&dst, src)
				if codec != kgo.CodecSnappy {
					t.Fatalf("codec %v", codec)
				}
				for _, dec := range []struct {
					name string
					fn   func([]byte) ([]byte, error)
				}{{"s2", func(b []byte) ([]byte, error) { return s2.Decode(nil, b) }}, {"strict snappy", decodeSnappy}} {
					got, err := dec.fn(out)
					if err != nil {
						t.Fatalf("%s: %v", dec.name, err)
					}
					if !bytes.Equal(got, src) {
						t.Fatalf("%s: %d bytes back, %d in, different", dec.name, len(got), len(src))
					}
				}
				whole := s2.EncodeSnappy(nil, src)
				split := pieces > 1 && len(src) >= 2*snappyPiece
				if split == bytes.Equal(out, whole) {
					t.Fatalf("cut in pieces: %v, but the output equal to one block's: %v", split, !split)
				}
				if len(out) > len(whole)+len(whole)/50+64 {
					t.Fatalf("%d bytes compressed, %d as one block", len(out), len(whole))
				}
			})
		}
	}
}

// Several brokers' goroutines compress at once.
func TestParallelSnappyConcurrent(t *testing.T) {
	c := newParallelSnappy(4)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				src := records(snappyPiece*(1+(g+i)%6)+g*i, uint64(g*100+i))
				var dst bytes.Buffer
				out, _ := c.Compress(&dst, src)
				if got, err := s2.Decode(nil, out); err != nil || !bytes.Equal(got, src) {
					t.Errorf("goroutine %d, batch %d: %v", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Batches compressed in pieces, produced through franz-go, read back by
// kcat (librdkafka's own snappy), a client nobody here wrote.
func TestParallelSnappyReadByKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: run 'make deps'")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("t"),
		ProducerCompression("snappy"), kgo.ProducerLinger(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lines := strings.Split(strings.TrimSuffix(string(records(3<<20, 9)), "\n"), "\n")
	lines = lines[:len(lines)-1] // the last one is cut
	want := map[string]string{}
	ctx := context.Background()
	for i, l := range lines {
		key := fmt.Sprint(i)
		want[key] = l
		cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte(l)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kcat, "-C", "-b", cluster.ListenAddrs()[0], "-t", "t", "-e", "-q", "-f", "%k\t%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("kcat read %d records, %d produced", len(got), len(want))
	}
	for _, g := range got {
		k, v, _ := strings.Cut(g, "\t")
		if want[k] != v {
			t.Fatalf("record %s: kcat read %q, produced %q", k, v, want[k])
		}
	}
}

// The time a batch of 1 MB holds up the broker's goroutine, in one piece
// and in GOMAXPROCS.
func BenchmarkParallelSnappy(b *testing.B) {
	src := records(1000000, 5)
	for _, pieces := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("pieces=%d", pieces), func(b *testing.B) {
			c := newParallelSnappy(pieces)
			var dst bytes.Buffer
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				dst.Reset()
				c.Compress(&dst, src)
			}
		})
	}
}
