package export

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unsafe"

	json "github.com/goccy/go-json"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
)

// Format is a file format an export writes.
type Format string

// The formats.
const (
	Parquet Format = "parquet"
	NDJSON  Format = "ndjson"
	CSV     Format = "csv"
)

// Formats lists them, for flags and errors.
var Formats = []Format{Parquet, NDJSON, CSV}

// Ext is the file name extension of f.
func (f Format) Ext() string { return "." + string(f) }

// Binary reports whether f's files are not text.
func (f Format) Binary() bool { return f == Parquet }

// Compressions lists Parquet's compression codecs an export offers.
var Compressions = []string{"zstd", "snappy", "none"}

// rowWriter writes one file's rows.
type rowWriter interface {
	write(row []Value) error
	// close writes what is buffered and the file's end; it does not close
	// the underlying writer.
	close() error
}

func newRowWriter(f Format, w io.Writer, name string, cols []Column, o Options) (rowWriter, error) {
	switch f {
	case Parquet:
		return newParquetWriter(w, name, cols, o)
	case NDJSON:
		return newNDJSONWriter(w, cols), nil
	case CSV:
		return newCSVWriter(w, cols)
	}
	return nil, fmt.Errorf("unknown format %q (one of parquet, ndjson, csv)", f)
}

// --- Parquet -----------------------------------------------------------------

// parquetWriter writes rows with the columns' declared types: strings as
// UTF-8, integers as INT64 (UInt64 with the unsigned logical type),
// floats as DOUBLE, Bool as BOOLEAN, Date as DATE, DateTime and Timestamp
// as TIMESTAMP(MILLIS, UTC); nullable columns OPTIONAL.
type parquetWriter struct {
	w    *parquet.Writer
	cols []Column
	rows []parquet.Row
}

// parquetBatch is how many rows go to the Parquet writer at once.
const parquetBatch = 1024

func newParquetWriter(w io.Writer, name string, cols []Column, o Options) (*parquetWriter, error) {
	var codec compress.Codec
	switch o.Compression {
	case "", "zstd":
		z, err := newZstdCodec()
		if err != nil {
			return nil, err
		}
		codec = z
	case "snappy":
		codec = &snappy.Codec{}
	case "none":
		codec = &uncompressed.Codec{}
	default:
		return nil, fmt.Errorf("unknown compression %q (one of zstd, snappy, none)", o.Compression)
	}
	g := orderedGroup{Group: parquet.Group{}}
	for _, c := range cols {
		var n parquet.Node
		switch c.Kind {
		case String:
			n = parquet.String()
		case Int64:
			n = parquet.Int(64)
		case UInt64:
			n = parquet.Uint(64)
		case Float64:
			n = parquet.Leaf(parquet.DoubleType)
		case Bool:
			n = parquet.Leaf(parquet.BooleanType)
		case Date:
			n = parquet.Date()
		case DateTime, Timestamp:
			n = parquet.Timestamp(parquet.Millisecond)
		}
		if c.Nullable {
			n = parquet.Optional(n)
		}
		g.Group[c.Name] = n
		g.order = append(g.order, c.Name)
	}
	rowGroup := o.RowGroupRows
	if rowGroup <= 0 {
		rowGroup = DefaultRowGroupRows
	}
	pw := parquet.NewWriter(w, parquet.NewSchema(name, g),
		parquet.Compression(codec),
		parquet.MaxRowsPerRowGroup(int64(rowGroup)),
		// No version or time in the file: the same rows make the same bytes.
		parquet.CreatedBy("skuflow", "", ""))
	return &parquetWriter{w: pw, cols: cols}, nil
}

func (p *parquetWriter) write(row []Value) error {
	// The rows of a batch are reused: WriteRows copies their values.
	if len(p.rows) < cap(p.rows) {
		p.rows = p.rows[:len(p.rows)+1]
	} else {
		p.rows = append(p.rows, make(parquet.Row, len(row)))
	}
	out := p.rows[len(p.rows)-1]
	if cap(out) < len(row) {
		out = make(parquet.Row, len(row))
	}
	out = out[:len(row)]
	p.rows[len(p.rows)-1] = out
	for i, v := range row {
		c := p.cols[i]
		def := 0
		if c.Nullable {
			def = 1
		}
		if v.Null {
			out[i] = parquet.NullValue().Level(0, 0, i)
			continue
		}
		var pv parquet.Value
		switch c.Kind {
		case String:
			// Not copied here: WriteRows copies the bytes into its
			// buffers before the string can go.
			pv = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(v.S), len(v.S)))
		case Int64:
			pv = parquet.Int64Value(v.I)
		case UInt64:
			pv = parquet.Int64Value(int64(v.U))
		case Float64:
			pv = parquet.DoubleValue(v.F)
		case Bool:
			pv = parquet.BooleanValue(v.U != 0)
		case Date:
			pv = parquet.Int32Value(int32(v.T.Unix() / 86400))
		case DateTime, Timestamp:
			pv = parquet.Int64Value(v.T.UnixMilli())
		}
		out[i] = pv.Level(0, def, i)
	}
	if len(p.rows) == parquetBatch {
		return p.flushRows()
	}
	return nil
}

func (p *parquetWriter) flushRows() error {
	if len(p.rows) == 0 {
		return nil
	}
	_, err := p.w.WriteRows(p.rows)
	p.rows = p.rows[:0]
	return err
}

func (p *parquetWriter) close() error {
	if err := p.flushRows(); err != nil {
		return err
	}
	return p.w.Close()
}

// orderedGroup is a Parquet group whose fields come in the order given
// (the columns' order), where parquet.Group sorts them by name.
type orderedGroup struct {
	parquet.Group
	order []string
}

func (g orderedGroup) Fields() []parquet.Field {
	fields := g.Group.Fields()
	rank := make(map[string]int, len(g.order))
	for i, n := range g.order {
		rank[n] = i
	}
	slices.SortFunc(fields, func(a, b parquet.Field) int { return rank[a.Name()] - rank[b.Name()] })
	return fields
}

// --- NDJSON ------------------------------------------------------------------

// ndjsonWriter writes one JSON object a row, the columns in order, values
// as `loader push` reads them back: numbers, true/false, strings, dates as
// YYYY-MM-DD and times in RFC 3339 (UTC), null for NULL.
type ndjsonWriter struct {
	w    *bufio.Writer
	keys [][]byte
	cols []Column
	buf  []byte
}

func newNDJSONWriter(w io.Writer, cols []Column) *ndjsonWriter {
	n := &ndjsonWriter{w: bufio.NewWriterSize(w, 256<<10), cols: cols}
	for i, c := range cols {
		k, _ := json.Marshal(c.Name)
		sep := ","
		if i == 0 {
			sep = "{"
		}
		n.keys = append(n.keys, append([]byte(sep), append(k, ':')...))
	}
	return n
}

func (n *ndjsonWriter) write(row []Value) error {
	b := n.buf[:0]
	for i, v := range row {
		b = append(b, n.keys[i]...)
		if v.Null {
			b = append(b, "null"...)
			continue
		}
		switch n.cols[i].Kind {
		case String:
			s, err := json.Marshal(v.S)
			if err != nil {
				return err
			}
			b = append(b, s...)
		case Int64:
			b = strconv.AppendInt(b, v.I, 10)
		case UInt64:
			b = strconv.AppendUint(b, v.U, 10)
		case Float64:
			b = appendFloat(b, v.F)
		case Bool:
			b = strconv.AppendBool(b, v.U != 0)
		default:
			b = append(b, '"')
			b = appendTime(b, n.cols[i].Kind, v.T)
			b = append(b, '"')
		}
	}
	if len(row) == 0 {
		b = append(b, '{')
	}
	b = append(b, "}\n"...)
	n.buf = b
	_, err := n.w.Write(b)
	return err
}

func (n *ndjsonWriter) close() error { return n.w.Flush() }

// appendFloat writes f as JSON has it; NaN and the infinities, which JSON
// has not, as null (ClickHouse can hold them, a record type cannot
// receive them).
func appendFloat(b []byte, f float64) []byte {
	if f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendTime writes a time kind's value as text.
func appendTime(b []byte, k Kind, t time.Time) []byte {
	t = t.UTC()
	switch k {
	case Date:
		return t.AppendFormat(b, time.DateOnly)
	case Timestamp:
		return t.AppendFormat(b, jsonTimestamp)
	}
	return t.AppendFormat(b, jsonDateTime)
}

// --- CSV ---------------------------------------------------------------------

// csvWriter writes a header line of the column names, then one line a
// row, as RFC 4180 (encoding/csv) quotes it; NULL is an empty field.
type csvWriter struct {
	bw     *bufio.Writer
	w      *csv.Writer
	cols   []Column
	fields []string
	buf    []byte
}

func newCSVWriter(w io.Writer, cols []Column) (*csvWriter, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	c := &csvWriter{bw: bw, w: csv.NewWriter(bw), cols: cols, fields: make([]string, len(cols))}
	for i, col := range cols {
		c.fields[i] = col.Name
	}
	return c, c.w.Write(c.fields)
}

func (c *csvWriter) write(row []Value) error {
	for i, v := range row {
		if v.Null {
			c.fields[i] = ""
			continue
		}
		b := c.buf[:0]
		switch c.cols[i].Kind {
		case String:
			c.fields[i] = v.S
			continue
		case Int64:
			b = strconv.AppendInt(b, v.I, 10)
		case UInt64:
			b = strconv.AppendUint(b, v.U, 10)
		case Float64:
			b = strconv.AppendFloat(b, v.F, 'g', -1, 64)
		case Bool:
			b = strconv.AppendBool(b, v.U != 0)
		default:
			b = appendTime(b, c.cols[i].Kind, v.T)
		}
		c.fields[i] = string(b)
	}
	return c.w.Write(c.fields)
}

func (c *csvWriter) close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}
