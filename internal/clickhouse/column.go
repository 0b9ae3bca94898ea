package clickhouse

import (
	"reflect"
	"unsafe"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// AppendColumn appends data to column i of b, whose columns are cols
// (b.Columns(), asked once per batch). data is what the column's Append
// takes, or a ch-go column (proto.ColStr, proto.ColUInt64, proto.ColUInt32,
// proto.ColInt64, proto.ColFloat64, proto.ColUInt8).
//
// A ch-go column of the type the batch column keeps its values in is handed
// over as it is, not copied: Append copies every value into buffers that
// start empty on every INSERT, which cost the processor more CPU and
// garbage than decoding its records. The caller's memory is then the
// batch's, and must stay unchanged until b is sent or aborted.
func AppendColumn(b driver.Batch, cols []column.Interface, i int, data any) error {
	if i < len(cols) && share(cols[i], data) {
		return nil
	}
	switch d := data.(type) {
	case proto.ColStr:
		all := string(d.Buf)
		s := make([]string, len(d.Pos))
		for j, p := range d.Pos {
			s[j] = all[p.Start:p.End]
		}
		data = s
	case proto.ColUInt64:
		data = []uint64(d)
	case proto.ColUInt32:
		data = []uint32(d)
	case proto.ColInt64:
		data = []int64(d)
	case proto.ColFloat64:
		data = []float64(d)
	case proto.ColUInt8:
		data = []uint8(d)
	}
	return b.Column(i).Append(data)
}

// share sets the values of an empty clickhouse-go column to data when the
// column keeps them in a ch-go column of data's type: clickhouse-go's
// columns of plain types (String, the integers, the floats) are a struct
// with that ch-go column in a field named col, which it offers no way to
// set. Anything else (another layout in a later clickhouse-go, Nullable,
// dates) reports false, and the caller appends a copy.
func share(c column.Interface, data any) bool {
	switch data.(type) {
	case proto.ColStr, proto.ColUInt64, proto.ColUInt32, proto.ColInt64, proto.ColFloat64, proto.ColUInt8:
	default:
		return false
	}
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct || c.Rows() != 0 {
		return false
	}
	f := v.Elem().FieldByName("col")
	d := reflect.ValueOf(data)
	if !f.IsValid() || f.Type() != d.Type() {
		return false
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(d)
	return true
}
