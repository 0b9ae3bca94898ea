package clickhouse

import (
	"testing"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// The processor's columns go to clickhouse-go without a copy: should a
// later clickhouse-go keep its values otherwise, share says so here, not
// only in the processor's profile (AppendColumn then copies, still right).
func TestShareColumns(t *testing.T) {
	str := proto.ColStr{}
	str.Append("a")
	str.Append("bc")
	for _, c := range []struct {
		typ  column.Type
		data any
		rows int
	}{
		{"String", str, 2},
		{"UInt64", proto.ColUInt64{1, 2, 3}, 3},
		{"UInt32", proto.ColUInt32{1}, 1},
		{"Int64", proto.ColInt64{-1, 2}, 2},
		{"Float64", proto.ColFloat64{0.5}, 1},
		{"UInt8", proto.ColUInt8{0, 1}, 2},
	} {
		col, err := c.typ.Column("x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !share(col, c.data) {
			t.Errorf("%s: %T not shared", c.typ, c.data)
			continue
		}
		if col.Rows() != c.rows {
			t.Errorf("%s: %d rows, want %d", c.typ, col.Rows(), c.rows)
		}
	}
	col, _ := column.Type("String").Column("x", nil)
	if share(col, proto.ColUInt64{1}) {
		t.Error("a UInt64 column shared into a String one")
	}
	if share(col, []string{"a"}) {
		t.Error("a []string shared")
	}
	n, _ := column.Type("Nullable(String)").Column("x", nil)
	if share(n, str) {
		t.Error("a String column shared into a Nullable one")
	}
	if !share(col, str) || col.Row(1, false) != "bc" {
		t.Errorf("String column reads %v", col.Row(1, false))
	}
}
