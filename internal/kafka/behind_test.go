package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/internal/testenv"
)

// Behind against the real broker: a group that never joined has all of the
// topic to take; one that committed a partition's end has the rest.
func TestBehind(t *testing.T) {
	b := testenv.Broker(t)
	cl, err := kafka.NewClient(config.Kafka{Brokers: []string{b.Addr}, DialTimeout: 5 * time.Second}, nil, kgo.DefaultProduceTopic(b.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range 30 {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte("{}")})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, b.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := kafka.Behind(ctx, adm, b.Topic, "never-joined", ends); err != nil || n != 30 {
		t.Fatalf("a group that never joined: %d behind, %v; want 30", n, err)
	}
	var commit kadm.Offsets
	var done int64
	ends.Each(func(o kadm.ListedOffset) {
		if done == 0 && o.Offset > 0 {
			commit.AddOffset(o.Topic, o.Partition, o.Offset, -1)
			done = o.Offset
		}
	})
	if err := adm.CommitAllOffsets(ctx, "one-partition", commit); err != nil {
		t.Fatal(err)
	}
	if n, err := kafka.Behind(ctx, adm, b.Topic, "one-partition", ends); err != nil || n != 30-done {
		t.Fatalf("a group that committed one partition's %d: %d behind, %v; want %d", done, n, err, 30-done)
	}
}
