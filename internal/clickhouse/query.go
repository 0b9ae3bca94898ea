package clickhouse

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// QueryText runs a query and returns its column names and every value as
// text, the way clickhouse-client writes them in TSV (dates as
// 2006-01-02 15:04:05, no quoting). It holds the whole result: it is for
// small results; StreamText is for any.
func QueryText(ctx context.Context, conn Conn, query string) ([]string, [][]string, error) {
	var names []string
	var out [][]string
	err := StreamText(ctx, conn, query,
		func(h []string) error { names = slices.Clone(h); return nil },
		func(r []string) error { out = append(out, slices.Clone(r)); return nil })
	if err != nil {
		return nil, nil, err
	}
	return names, out, nil
}

// StreamText runs a query and hands its column names to header, then each
// row, as text (as QueryText writes it), to row, as the rows arrive: it
// holds one block of the result at a time, however large the result. The
// slices are reused: a callback that keeps one must copy it. An error from
// a callback cancels the query and is returned as it is.
func StreamText(ctx context.Context, conn Conn, query string, header, row func([]string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return err
	}
	// Cancel before Close: Close reads what is left of the result.
	defer rows.Close()
	defer cancel()
	types := rows.ColumnTypes()
	names := make([]string, len(types))
	ptrs := make([]any, len(types))
	// A Date scans into a time.Time too; it is shown as the day it is.
	layouts := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name()
		ptrs[i] = reflect.New(t.ScanType()).Interface()
		layouts[i] = time.DateTime
		if typ := t.DatabaseTypeName(); strings.Contains(typ, "Date") && !strings.Contains(typ, "DateTime") {
			layouts[i] = time.DateOnly
		}
	}
	if err := header(names); err != nil {
		return err
	}
	values := make([]string, len(types))
	for n := 1; rows.Next(); n++ {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read row %d: %w", n, err)
		}
		for i, p := range ptrs {
			values[i] = text(reflect.ValueOf(p).Elem().Interface(), layouts[i])
		}
		if err := row(values); err != nil {
			return err
		}
	}
	return rows.Err()
}

func text(v any, layout string) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		return x.Format(layout)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case *string:
		if x == nil {
			return "NULL"
		}
		return *x
	case nil:
		return "NULL"
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "NULL"
		}
		return text(rv.Elem().Interface(), layout)
	}
	return fmt.Sprint(v)
}
