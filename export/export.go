package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"skuflow/internal/clickhouse"
)

// DefaultRowGroupRows is the rows of a Parquet row group unless told:
// large enough for readers to skip and scan well, small enough that the
// group buffered while it is written stays in tens of MB for records of a
// few hundred bytes.
const DefaultRowGroupRows = 100_000

// progressEvery is how many rows pass between calls of Options.Progress.
const progressEvery = 8192

// Options say how an export writes.
type Options struct {
	Format Format
	// Compression is Parquet's codec: zstd (the default), snappy or none.
	Compression string
	// RowGroupRows is the rows of a Parquet row group (DefaultRowGroupRows
	// when 0).
	RowGroupRows int
	// SplitRows, when above 0, starts a new file every SplitRows rows.
	SplitRows int64
	// Where filters the current rows: SQL over the source's columns.
	Where string
	// Progress, when set, hears the rows written so far, now and then.
	Progress func(rows int64)
}

// Output is where an export's files go: W for one stream (stdout), or
// files named by Path.
type Output struct {
	W io.Writer
	// Path names the n-th file (from 1).
	Path func(n int) string
}

// ToFile writes to path, or with split to path with -00001, -00002...
// before its extension.
func ToFile(path string, split bool) Output {
	if !split {
		return Output{Path: func(int) string { return path }}
	}
	ext := filepath.Ext(path)
	stem := strings.TrimSuffix(path, ext)
	return Output{Path: func(n int) string { return fmt.Sprintf("%s-%05d%s", stem, n, ext) }}
}

// File is one file an export wrote.
type File struct {
	Path  string `json:"path"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// Result says what an export wrote.
type Result struct {
	Source  string   `json:"source"`
	Format  Format   `json:"format"`
	Columns []Column `json:"columns"`
	Files   []File   `json:"files,omitempty"`
	Rows    int64    `json:"rows"`
	Seconds float64  `json:"seconds"`
}

// Estimate returns an upper bound of the rows an export of src without a
// filter writes (the rows of its table, before FINAL), 0 when it cannot
// tell cheaply (aggregates).
func Estimate(ctx context.Context, conn clickhouse.Conn, src Source) (int64, error) {
	if !src.final {
		return 0, nil
	}
	var n uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM "+clickhouse.Table(src.db, src.from)).Scan(&n)
	return int64(n), err
}

// Export writes src's current rows in key order to out. Each file is
// written under a temporary name beside it and renamed when whole; when
// the export fails, the files it wrote are removed.
func Export(ctx context.Context, conn clickhouse.Conn, src Source, o Options, out Output) (*Result, error) {
	return run(ctx, conn, src, src.query(o.Where, nil), o, out)
}

func run(ctx context.Context, conn clickhouse.Conn, src Source, query string, o Options, out Output) (res *Result, err error) {
	if out.W != nil && o.SplitRows > 0 {
		return nil, errors.New("splitting into files needs a path to write to, not a stream")
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.Name, err)
	}
	// Cancel before Close: Close reads what is left of the result.
	defer rows.Close()
	defer cancel()

	types := rows.ColumnTypes()
	cols := make([]Column, len(types))
	dst := make([]any, len(types))
	for i, t := range types {
		k, nullable, err := kindOf(t.DatabaseTypeName(), src.declared[t.Name()])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", t.Name(), err)
		}
		cols[i] = Column{Name: t.Name(), Kind: k, Nullable: nullable}
		dst[i] = reflect.New(t.ScanType()).Interface()
	}
	res = &Result{Source: src.Name, Format: o.Format, Columns: cols}

	f := &files{out: out, format: o.Format, name: src.Name, cols: cols, o: o}
	defer func() {
		if err != nil {
			f.abort()
			res = nil
		}
	}()
	if err := f.next(); err != nil {
		return nil, err
	}
	vals := make([]Value, len(cols))
	var n int64
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return nil, fmt.Errorf("read %s, row %d: %w", src.Name, n+1, err)
		}
		for i := range dst {
			if vals[i], err = valueOf(dst[i], cols[i].Kind); err != nil {
				return nil, fmt.Errorf("%s, row %d, column %s: %w", src.Name, n+1, cols[i].Name, err)
			}
		}
		if o.SplitRows > 0 && f.rows == o.SplitRows {
			if err := f.next(); err != nil {
				return nil, err
			}
		}
		if err := f.w.write(vals); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.current(), err)
		}
		f.rows++
		n++
		if o.Progress != nil && n%progressEvery == 0 {
			o.Progress(n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s after %d rows: %w", src.Name, n, err)
	}
	if err := f.finish(); err != nil {
		return nil, err
	}
	if o.Progress != nil {
		o.Progress(n)
	}
	res.Files, res.Rows, res.Seconds = f.done, n, time.Since(start).Seconds()
	return res, nil
}

// files writes an export's files one after the other.
type files struct {
	out    Output
	format Format
	name   string
	cols   []Column
	o      Options

	n    int // files started
	w    rowWriter
	rows int64 // of the current file
	// The current file: its temporary name and the buffer before it.
	tmp  *os.File
	path string
	buf  *bufio.Writer
	cw   *countingWriter
	done []File
}

func (f *files) current() string {
	if f.path == "" {
		return "the output"
	}
	return f.path
}

// next ends the current file, if any, and starts the next one.
func (f *files) next() error {
	if err := f.finish(); err != nil {
		return err
	}
	f.n++
	var w io.Writer = f.out.W
	if w == nil {
		f.path = f.out.Path(f.n)
		dir, base := filepath.Split(f.path)
		if dir == "" {
			dir = "."
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("create %s: no folder %s to write it in", f.path, dir)
		}
		tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
		if err != nil {
			return fmt.Errorf("create %s: %w", f.path, err)
		}
		f.tmp = tmp
		w = tmp
	}
	f.cw = &countingWriter{w: w}
	f.buf = bufio.NewWriterSize(f.cw, 1<<20)
	rw, err := newRowWriter(f.format, f.buf, f.name, f.cols, f.o)
	if err != nil {
		return err
	}
	f.w, f.rows = rw, 0
	return nil
}

// finish ends the current file: its end written, flushed, renamed to its
// name.
func (f *files) finish() error {
	if f.w == nil {
		return nil
	}
	w := f.w
	f.w = nil
	if err := w.close(); err != nil {
		return fmt.Errorf("write %s: %w", f.current(), err)
	}
	if err := f.buf.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", f.current(), err)
	}
	file := File{Path: f.path, Rows: f.rows, Bytes: f.cw.n}
	if f.tmp != nil {
		tmp := f.tmp
		f.tmp = nil
		if err := tmp.Close(); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		if err := os.Rename(tmp.Name(), f.path); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	} else {
		file.Path = "-"
	}
	f.done = append(f.done, file)
	return nil
}

// abort removes what was written.
func (f *files) abort() {
	if f.tmp != nil {
		_ = f.tmp.Close()
		_ = os.Remove(f.tmp.Name())
		f.tmp = nil
	}
	for _, d := range f.done {
		if d.Path != "-" {
			_ = os.Remove(d.Path)
		}
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// valueOf reads a scanned cell (a pointer to what clickhouse-go scans the
// column's type into) as a Value of kind k.
func valueOf(dst any, k Kind) (Value, error) {
	var v Value
	switch x := dst.(type) {
	case *string:
		return stringValue(*x, k)
	case **string:
		if *x == nil {
			return Value{Null: true}, nil
		}
		return stringValue(**x, k)
	case *int64:
		v.I = *x
	case *uint64:
		v.U = *x
	case *uint32:
		v.U = uint64(*x)
	case *uint8:
		v.U = uint64(*x)
	case *float64:
		v.F = *x
	case *time.Time:
		v.T = x.UTC()
	default:
		// The rarer types (narrower integers, Nullable numbers and times)
		// through reflection.
		rv := reflect.ValueOf(dst).Elem()
		if rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return Value{Null: true}, nil
			}
			rv = rv.Elem()
		}
		switch rv.Kind() {
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.I = rv.Int()
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			v.U = rv.Uint()
		case reflect.Float32, reflect.Float64:
			v.F = rv.Float()
		case reflect.String:
			return stringValue(rv.String(), k)
		default:
			t, ok := rv.Interface().(time.Time)
			if !ok {
				return v, fmt.Errorf("cannot export a value of Go type %s", rv.Type())
			}
			v.T = t.UTC()
		}
	}
	return v, nil
}

// stringValue is a String column's value; a Timestamp's is parsed from
// its stored text.
func stringValue(s string, k Kind) (Value, error) {
	if k != Timestamp {
		return Value{S: s}, nil
	}
	t, err := time.ParseInLocation(timestampLayout, s, time.UTC)
	if err != nil {
		return Value{}, fmt.Errorf("not a stored timestamp (%s): %q", timestampLayout, s)
	}
	return Value{T: t}, nil
}
