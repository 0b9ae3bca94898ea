package clickhouse

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// QueryText runs a query and returns its column names and every value as
// text, the way clickhouse-client writes them in TSV (dates as
// 2006-01-02 15:04:05, no quoting). It is for showing results to a person
// or a script, not for large results.
func QueryText(ctx context.Context, conn Conn, query string) ([]string, [][]string, error) {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name()
	}
	var out [][]string
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, t := range types {
			ptrs[i] = reflect.New(t.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, fmt.Errorf("read row %d: %w", len(out)+1, err)
		}
		row := make([]string, len(ptrs))
		for i, p := range ptrs {
			row[i] = text(reflect.ValueOf(p).Elem().Interface())
		}
		out = append(out, row)
	}
	return names, out, rows.Err()
}

func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		return x.Format(time.DateTime)
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
		return text(rv.Elem().Interface())
	}
	return fmt.Sprint(v)
}
