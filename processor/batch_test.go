package processor

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/schemas"
)

// record builds a record of partition p at offset o, with the loader's
// provenance of line o+1: at an odd offset, in the three headers earlier
// loaders wrote.
func record(p int32, o int64, value string) *kgo.Record {
	r := &kgo.Record{Partition: p, Offset: o, LeaderEpoch: 3, Key: []byte("k"), Value: []byte(value),
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderProvenance, Value: kafka.AppendProvenance(nil, "job-1", o+1, "/in/products.ndjson")},
		}}
	if o%2 == 1 {
		r.Headers = []kgo.RecordHeader{
			{Key: kafka.HeaderJob, Value: []byte("job-1")},
			{Key: kafka.HeaderSource, Value: []byte("/in/products.ndjson")},
			{Key: kafka.HeaderLine, Value: []byte(fmt.Sprint(o + 1))},
		}
	}
	return r
}

func TestBatchAdd(t *testing.T) {
	b := newBatch(schemas.Products, &topicInfo{})
	recs := []*kgo.Record{
		record(0, 10, `{"sku":"a","name":"A","x":1}`),
		record(1, 20, `this is not json`),
		record(0, 11, ` { "sku" : "b" , "description" : "line\nnext" } `),
		record(1, 21, `{"name":"no sku"}`),
		record(2, 30, `null`),
		record(1, 22, `{"sku":"c"}`),
	}
	for _, r := range recs {
		b.add(r)
	}
	b.seal()
	if b.len() != 6 || b.rows.len() != 3 {
		t.Fatalf("%d records, %d rows; want 6 and 3", b.len(), b.rows.len())
	}
	wantBad := []string{
		"value is not a JSON object: invalid character 'h' in literal true (expecting 'r') (at byte 1)",
		`field "sku": required field is missing`,
		"value is null, not a JSON object",
	}
	var gotBad []string
	for _, e := range b.bad {
		if e.stage != "decode" {
			t.Errorf("stage %q", e.stage)
		}
		gotBad = append(gotBad, e.reason)
	}
	if !reflect.DeepEqual(gotBad, wantBad) {
		t.Errorf("bad records\n got %q\nwant %q", gotBad, wantBad)
	}
	// Every record counts for the offsets to commit, decodable or not.
	wantNext := map[int32]kgo.EpochOffset{0: {Epoch: 3, Offset: 12}, 1: {Epoch: 3, Offset: 23}, 2: {Epoch: 3, Offset: 31}}
	if !reflect.DeepEqual(b.next, wantNext) {
		t.Errorf("next %v, want %v", b.next, wantNext)
	}
	if got := b.rows.block.Column("sku"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("sku column %q", got)
	}
	if got := b.rows.block.Column("description"); !reflect.DeepEqual(got, []string{"", "line\nnext", ""}) {
		t.Errorf("description column %q", got)
	}
	if got := b.rows.block.Column("extra"); !reflect.DeepEqual(got, []string{`{"x":1}`, "{}", "{}"}) {
		t.Errorf("extra column %q", got)
	}
	if !reflect.DeepEqual(b.rows.lines, []uint64{11, 12, 23}) || !reflect.DeepEqual(b.rows.offsets, []uint64{10, 11, 22}) ||
		!reflect.DeepEqual(b.rows.partitions, []uint32{0, 0, 1}) {
		t.Errorf("provenance: lines %v offsets %v partitions %v", b.rows.lines, b.rows.offsets, b.rows.partitions)
	}
	for i := range 3 {
		if b.rows.jobs.Row(i) != "job-1" || b.rows.sources.Row(i) != "/in/products.ndjson" {
			t.Errorf("row %d: job %q source %q", i, b.rows.jobs.Row(i), b.rows.sources.Row(i))
		}
	}

	// Dropping a partition drops its rows, its bad records and its offset.
	first := b.first
	b.drop([]int32{1})
	b.seal()
	if b.len() != 3 || b.rows.len() != 2 || len(b.bad) != 1 || b.first != first {
		t.Fatalf("after drop: %d records, %d rows, %d bad, first %v (was %v)", b.len(), b.rows.len(), len(b.bad), b.first, first)
	}
	if _, ok := b.next[1]; ok {
		t.Error("partition 1 still has an offset to commit")
	}
	if got := b.rows.block.Column("sku"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("sku column after drop %q", got)
	}
	if want := len(recs[0].Key) + len(recs[0].Value) + len(recs[2].Key) + len(recs[2].Value) + len(recs[4].Key) + len(recs[4].Value); b.bytes != want {
		t.Errorf("bytes %d, want %d", b.bytes, want)
	}

	b.drop([]int32{0, 2})
	if b.len() != 0 || b.rows.len() != 0 || len(b.bad) != 0 || len(b.next) != 0 || !b.first.IsZero() || b.bytes != 0 {
		t.Fatalf("after dropping every partition: %+v", b)
	}
}

func TestBatchFull(t *testing.T) {
	c := config.Default().Processor
	c.BatchRows, c.BatchBytes = 3, 1000
	b := newBatch(schemas.Products, &topicInfo{})
	for i := range 3 {
		if b.full(c) {
			t.Fatalf("full at %d records", i)
		}
		b.add(record(0, int64(i), `{"sku":"a"}`))
	}
	if !b.full(c) {
		t.Fatal("not full at BatchRows")
	}
	b.reset()
	if b.full(c) || b.len() != 0 || b.rows.len() != 0 {
		t.Fatal("reset left records")
	}
	b.add(record(0, 0, `{"sku":"`+strings.Repeat("x", 1000)+`"}`))
	if !b.full(c) {
		t.Fatal("not full at BatchBytes")
	}
}

// Decoding a record into the batch allocates nothing once the batch's
// memory has grown.
func TestBatchAddAllocs(t *testing.T) {
	recs := benchRecords(1000)
	b := newBatch(schemas.Products, &topicInfo{})
	for _, r := range recs {
		b.add(r)
	}
	b.reset()
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if i == len(recs) {
			i = 0
			b.reset()
		}
		b.add(recs[i])
		i++
	})
	if allocs > 0 {
		t.Errorf("%.2f allocations per record", allocs)
	}
}

// benchRecords returns n product records shaped like the generated ones,
// without escapes (see schemas.BenchmarkBlockAppend for their cost).
func benchRecords(n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = record(int32(i%6), int64(i), fmt.Sprintf(`{"sku":"community-art-%d","name":"David Williams","description":`+
			`"Community lead stone best often budget. Plant deal tax evidence floor budget sing season market model sing."}`, i))
	}
	return recs
}

func BenchmarkBatchAdd(b *testing.B) {
	recs := benchRecords(10000)
	size := 0
	for _, r := range recs {
		size += len(r.Value)
	}
	bt := newBatch(schemas.Products, &topicInfo{})
	b.ReportAllocs()
	b.SetBytes(int64(size / len(recs)))
	i := 0
	for b.Loop() {
		if i == len(recs) {
			i = 0
			bt.reset()
		}
		bt.add(recs[i])
		i++
	}
}

// A record whose Kafka key is not its schema key, or that is not on its
// key's partition, is set aside at stage "key", never loaded (invariant 2).
func TestBatchSetsAsideForeignKeys(t *testing.T) {
	topic := &topicInfo{incarnation: 2, partitions: 6}
	b := newBatch(schemas.Products, topic)
	own := kafka.PartitionOf([]byte("a"), 6)
	good := record(own, 10, `{"sku":"a","name":"A"}`)
	good.Key = []byte("a")
	noKey := record(own, 11, `{"sku":"a","name":"B"}`)
	noKey.Key = nil
	otherKey := record(own, 12, `{"sku":"a","name":"C"}`)
	otherKey.Key = []byte("b")
	elsewhere := record((own+1)%6, 13, `{"sku":"a","name":"D"}`)
	elsewhere.Key = []byte("a")
	for _, r := range []*kgo.Record{good, noKey, otherKey, elsewhere} {
		b.add(r)
	}
	b.seal()
	if b.rows.len() != 1 || len(b.bad) != 3 {
		t.Fatalf("%d rows, %d set aside; want 1 and 3", b.rows.len(), len(b.bad))
	}
	for _, e := range b.bad {
		if e.stage != "key" || !strings.Contains(e.reason, "not where its key belongs") {
			t.Errorf("set aside at stage %q: %s", e.stage, e.reason)
		}
	}
	if got, want := b.rows.versions[0], kafka.Version(2, 10); got != want {
		t.Errorf("version %x, want %x", got, want)
	}
}

// The data age is measured from the earliest Kafka timestamp a batch holds,
// whatever order its records came in; a record without one is not aged.
func TestBatchOldest(t *testing.T) {
	b := newBatch(schemas.Products, &topicInfo{})
	at := func(p int32, o int64, ts time.Time) *kgo.Record {
		r := record(p, o, `{"sku":"k"}`)
		r.Timestamp = ts
		return r
	}
	t0 := time.Unix(1_700_000_000, 0)
	if b.oldest != 0 {
		t.Fatalf("empty batch: oldest %d", b.oldest)
	}
	b.add(at(0, 1, time.Time{}))
	if b.oldest != 0 {
		t.Fatalf("a record without a timestamp: oldest %d", b.oldest)
	}
	b.add(at(0, 2, t0.Add(2*time.Second)))
	b.add(at(1, 7, t0)) // another partition, behind
	b.add(at(0, 3, t0.Add(3*time.Second)))
	if b.oldest != t0.UnixNano() {
		t.Fatalf("oldest %v, want %v", time.Unix(0, b.oldest), t0)
	}
	b.drop([]int32{1})
	if b.oldest != t0.Add(2*time.Second).UnixNano() {
		t.Fatalf("after dropping partition 1: oldest %v", time.Unix(0, b.oldest))
	}
	b.reset()
	if b.oldest != 0 {
		t.Fatalf("after reset: oldest %d", b.oldest)
	}
}

// A batch of a table ordered by one String key goes in the order of its
// keys' bytes, as ClickHouse orders the table, records of one key in poll
// order; a batch of a table ordered otherwise goes in poll order. Either way
// every row keeps its own record and provenance.
func TestBatchSealOrder(t *testing.T) {
	keyed := func(p int32, o int64, sku string) *kgo.Record {
		r := record(p, o, `{"sku":"`+sku+`","name":"n`+fmt.Sprint(o)+`"}`)
		r.Key = []byte(sku)
		return r
	}
	recs := []*kgo.Record{
		keyed(1, 5, "b"), keyed(0, 9, "ab"), keyed(2, 1, "a"), keyed(1, 6, "b"),
		record(0, 10, "not json"), keyed(1, 7, "b"), keyed(0, 3, "a\u00e9"), keyed(2, 2, "B"),
	}
	recs[4].Key = []byte("0")
	recs[3].Headers[0].Value = kafka.AppendProvenance(nil, "job-2", 7, "/in/other.ndjson") // offset 6
	b := newBatch(schemas.Products, &topicInfo{})
	for _, r := range recs {
		b.add(r)
	}
	b.seal()
	b.seal() // once only
	if got, want := b.rows.block.Column("sku"), []string{"B", "a", "ab", "aé", "b", "b", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sku column %q, want %q", got, want)
	}
	if got, want := b.rows.offsets, []uint64{2, 1, 9, 3, 5, 6, 7}; !reflect.DeepEqual(got, want) {
		t.Errorf("offsets %v, want %v", got, want)
	}
	if got, want := b.rows.block.Column("name"), []string{"n2", "n1", "n9", "n3", "n5", "n6", "n7"}; !reflect.DeepEqual(got, want) {
		t.Errorf("name column %q, want %q", got, want)
	}
	if got, want := b.rows.lines, []uint64{3, 2, 10, 4, 6, 7, 8}; !reflect.DeepEqual(got, want) {
		t.Errorf("lines %v, want %v", got, want)
	}
	if len(b.bad) != 1 || b.bad[0].rec.Offset != 10 {
		t.Errorf("set aside %+v, want the record at offset 10", b.bad)
	}
	for i, r := range b.rows.recs {
		job, source := "job-1", "/in/products.ndjson"
		if r.Offset == 6 {
			job, source = "job-2", "/in/other.ndjson"
		}
		if uint64(r.Offset) != b.rows.offsets[i] || b.rows.jobs.Row(i) != job || b.rows.sources.Row(i) != source {
			t.Errorf("row %d: record at offset %d, provenance offset %d, job %q, source %q", i, r.Offset, b.rows.offsets[i], b.rows.jobs.Row(i), b.rows.sources.Row(i))
		}
	}

	events := &schemas.Schema{Name: "events", Key: []string{"id"}, Extra: "extra", Columns: []schemas.Column{{Name: "id", Type: schemas.Int64, Required: true}}}
	if err := events.Check(); err != nil {
		t.Fatal(err)
	}
	e := newBatch(events, &topicInfo{})
	for i, id := range []string{"10", "9", "100"} {
		r := record(0, int64(i), `{"id":`+id+`}`)
		r.Key = []byte(id)
		e.add(r)
	}
	e.seal()
	if got, want := e.rows.block.Column("id"), []int64{10, 9, 100}; !reflect.DeepEqual(got, want) {
		t.Errorf("an Int64 key's batch: id column %v, want poll order %v", got, want)
	}
}

func TestOneValue(t *testing.T) {
	for _, c := range []struct {
		vals []string
		one  bool
	}{
		{nil, false}, {[]string{"x"}, true}, {[]string{"x", "x", "x"}, true}, {[]string{"", ""}, true},
		{[]string{"x", ""}, false}, {[]string{"x", "", ""}, false}, {[]string{"x", "", "x"}, false},
		{[]string{"", "x"}, false}, {[]string{"x", "y"}, false}, {[]string{"x", "x", "y", "y"}, false},
	} {
		var col proto.ColStr
		for _, v := range c.vals {
			appendRepeated(&col, []byte(v))
		}
		if got := oneValue(&col); got != c.one {
			t.Errorf("%q: oneValue %v", c.vals, got)
		}
		for i, v := range c.vals {
			if col.Row(i) != v {
				t.Errorf("%q: row %d is %q", c.vals, i, col.Row(i))
			}
		}
	}
}

// A sealed batch takes no record until reset: its rows are in another order
// than its records.
func TestBatchSealedTakesNothing(t *testing.T) {
	b := newBatch(schemas.Products, &topicInfo{})
	b.add(record(0, 0, `{"sku":"b"}`))
	b.add(record(0, 2, `{"sku":"a"}`))
	b.seal()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a record added to a sealed batch")
			}
		}()
		b.add(record(0, 4, `{"sku":"c"}`))
	}()
	b.reset()
	b.add(record(0, 4, `{"sku":"c"}`))
	if b.len() != 1 || b.rows.len() != 1 {
		t.Errorf("after reset: %d records, %d rows", b.len(), b.rows.len())
	}
}

// BenchmarkBatchSeal times putting a batch of 50,000 records, which came
// in no key order, in the table's order (batch.seal): the sort and the
// moves of everything beside the rows.
func BenchmarkBatchSeal(b *testing.B) {
	recs := benchRecords(50000)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	bt := newBatch(schemas.Products, &topicInfo{})
	for range b.N {
		b.StopTimer()
		bt.reset()
		for _, r := range recs {
			bt.add(r)
		}
		b.StartTimer()
		bt.seal()
	}
}
