package clickhouse_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"skuflow/internal/clickhouse"
	"skuflow/schemas"
)

// The aggregator builds keys and groups from records (Column.Canonical)
// and, after a restart, from what ClickHouse gives back (Column.TextSQL):
// the two must be the same bytes for every type, at the edges of each
// range too, on the real 18.16 (which prints the epoch's Date as
// 0000-00-00, and days after 2106-02-06 as 1970-01-01).
func TestCanonicalTextMatchesClickHouse(t *testing.T) {
	_, conn, ctx := server(t)
	values := map[schemas.ColumnType][]string{
		schemas.String:    {`""`, `"a\tb\u00e9"`, `"\\"`},
		schemas.Int64:     {`-9223372036854775808`, `9223372036854775807`, `"0"`},
		schemas.UInt64:    {`18446744073709551615`, `0`},
		schemas.Bool:      {`true`, `false`, `"1"`},
		schemas.Date:      {`"1970-01-01"`, `"1970-01-02"`, `"2024-02-29"`, `"2105-12-31"`},
		schemas.DateTime:  {`"1970-01-01T00:00:00Z"`, `"1970-01-01T00:00:01Z"`, `"2024-02-29T23:59:59+01:00"`, `"2105-12-31 23:59:59"`},
		schemas.Timestamp: {`"0001-01-01T00:00:00Z"`, `"2019-04-23T17:25:43.111Z"`, `"9999-12-31T23:59:59.999Z"`},
	}
	var cols []schemas.Column
	for _, typ := range schemas.ColumnTypes {
		if typ == schemas.Float64 {
			continue // neither a key nor a group: never read back as text
		}
		cols = append(cols, schemas.Column{Name: "c_" + strings.ToLower(string(typ)), Type: typ})
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS canon"); err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		table := clickhouse.Table("canon", c.Name)
		if err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (i UInt32, v %s) ENGINE = MergeTree ORDER BY i", table, c.ClickHouseType())); err != nil {
			t.Fatal(err)
		}
		var want []string
		vec := schemas.NewVector(c)
		for _, in := range values[c.Type] {
			text, err := c.Canonical(nil, []byte(in))
			if err != nil {
				t.Fatalf("%s %s: %v", c.Type, in, err)
			}
			if err := vec.Append(text); err != nil {
				t.Fatal(err)
			}
			want = append(want, string(text))
		}
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (i, v)")
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]uint32, len(want))
		for i := range ids {
			ids[i] = uint32(i)
		}
		if err := b.Column(0).Append(ids); err != nil {
			t.Fatal(err)
		}
		if err := b.Column(1).Append(vec.Values()); err != nil {
			t.Fatalf("%s: %v", c.Type, err)
		}
		if err := b.Send(); err != nil {
			t.Fatalf("%s: %v", c.Type, err)
		}
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s ORDER BY i", c.TextSQL("v"), table))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		rows.Close()
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: ClickHouse gives back %s, records give %s", c.Type, strconv.Quote(strings.Join(got, "|")), strconv.Quote(strings.Join(want, "|")))
		}
	}
}
