package producer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"skuflow/schemas"
)

// A body of many records is refused by count whether they are valid or
// not, and a body of many invalid ones describes at most MaxRejections:
// neither costs memory by the record. (A body of 16 MiB of `[1,1,...]`
// once made 8 million rejections and 5.7 GiB.)
func TestProduceRecordsBounds(t *testing.T) {
	p := NewPusher(nil, Options{Schema: schemas.Products, Topic: "products"})
	body := "[" + strings.Repeat("1,", 200000) + "1]"
	if _, _, err := p.ProduceRecords(context.Background(), []byte(body), "j", "s", 10000); !errors.Is(err, ErrTooManyRecords) {
		t.Fatalf("200,001 invalid records, at most 10,000 allowed: %v", err)
	}
	body = strings.Repeat(`{"name":"no sku"}`+"\n", 5000)
	_, rejected, err := p.ProduceRecords(context.Background(), []byte(body), "j", "s", 10000)
	if err != nil || len(rejected) != MaxRejections {
		t.Fatalf("5,000 invalid records: %d described, %v; want %d", len(rejected), err, MaxRejections)
	}
	if rejected[0].Line != 1 || !strings.Contains(rejected[0].Reason, `field "sku": required field is missing`) {
		t.Fatalf("first rejection: %+v", rejected[0])
	}
	// One bad record among good ones: none is produced (no client needed).
	body = `{"sku":"a"}` + "\n" + `{"sku":""}` + "\n" + `{"sku":"b"}` + "\n"
	produced, rejected, err := p.ProduceRecords(context.Background(), []byte(body), "j", "s", 10)
	if err != nil || len(produced) != 0 || len(rejected) != 1 || rejected[0].Line != 2 {
		t.Fatalf("one bad of three: %v %+v %v", produced, rejected, err)
	}
}
