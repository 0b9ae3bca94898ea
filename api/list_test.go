package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// events and plays are the shipped example types (skuflow.example.yaml):
// a composite key with a Timestamp, and a source identity with a Date
// grouped by.
var (
	testEvents = &schemas.Schema{
		Name: "events", Topic: "events", Key: []string{"id", "ts"}, Extra: "extra",
		Columns: []schemas.Column{
			{Name: "id", Type: schemas.String, Required: true},
			{Name: "data", Type: schemas.String},
			{Name: "ts", Type: schemas.Timestamp, Required: true},
		},
	}
	testPlays = &schemas.Schema{
		Name: "plays", Topic: "plays", Identity: true, Extra: "extra",
		Columns: []schemas.Column{
			{Name: "song", Type: schemas.String, Required: true},
			{Name: "date", Type: schemas.Date, Required: true},
			{Name: "plays", Type: schemas.UInt64, Required: true},
		},
		Aggregates: []schemas.Aggregate{{Name: "plays_by_song_date", Table: "plays_by_song_date_state", By: []string{"song", "date"}, Sum: "plays", As: "plays"}},
	}
)

func TestKeysetCursorRoundTrip(t *testing.T) {
	for _, texts := range [][]string{
		{"sku-1"},
		{""},
		{"10101", "2019-04-23 17:25:43.111"},
		{"not \xff UTF-8", "a\x00b"},
		{strings.Repeat("x", 300), "18446744073709551615"},
	} {
		got, err := decodeCursor(encodeCursor(texts))
		if err != nil || !slices.Equal(got, texts) {
			t.Errorf("%q: decoded %q, %v", texts, got, err)
		}
	}
}

func TestKeysetBadCursor(t *testing.T) {
	products, events, plays := recordKeys(schemas.Products), recordKeys(testEvents), recordKeys(testPlays)
	for _, c := range []struct {
		name   string
		ks     keyset
		cursor string
		want   string
	}{
		{"not base64", products, "!!", "not a cursor this API gave"},
		{"padded", products, encodeCursor([]string{"ab"}) + "=", "not a cursor this API gave"},
		{"no values", products, base64URL("\x01"), "0 values for 1 key columns"},
		{"other version", products, base64URL("\x02\x01a"), "not a cursor this API gave"},
		{"length past the end", products, base64URL("\x01\x05ab"), "not a cursor this API gave"},
		{"bad uvarint", products, base64URL("\x01\xff"), "not a cursor this API gave"},
		{"too few values", events, encodeCursor([]string{"10101"}), "1 values for 2 key columns"},
		{"too many values", products, encodeCursor([]string{"a", "b"}), "2 values for 1 key columns"},
		{"not a time", events, encodeCursor([]string{"10101", "yesterday"}), `field "ts": not an RFC 3339 time`},
		{"not an offset", plays, encodeCursor([]string{strings.Repeat("a", 64), "-1"}), `field "_file_offset": not a non-negative integer`},
		{"offset too large", plays, encodeCursor([]string{strings.Repeat("a", 64), "18446744073709551616"}), `not a non-negative integer that fits UInt64`},
		{"SQL in a number", plays, encodeCursor([]string{"a", "1) OR (1"}), `field "_file_offset"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			lits, err := c.ks.cursor(c.cursor)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("cursor %q: %q, %v; want an error containing %q", c.cursor, lits, err, c.want)
			}
		})
	}
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestKeysetLiterals(t *testing.T) {
	for _, c := range []struct {
		col  schemas.Column
		text string
		want string
	}{
		{schemas.Column{Name: "s", Type: schemas.String}, `it's \ a`, `'it\'s \\ a'`},
		{schemas.Column{Name: "s", Type: schemas.String}, "", `''`},
		{schemas.Column{Name: "i", Type: schemas.Int64}, "-9223372036854775808", `toInt64('-9223372036854775808')`},
		{schemas.Column{Name: "i", Type: schemas.Int64}, "007", `toInt64('7')`},
		{schemas.Column{Name: "u", Type: schemas.UInt64}, "18446744073709551615", `toUInt64('18446744073709551615')`},
		{schemas.Column{Name: "b", Type: schemas.Bool}, "true", `toUInt8('1')`},
		{schemas.Column{Name: "d", Type: schemas.Date}, "1970-01-01", `toDate('1970-01-01')`},
		{schemas.Column{Name: "t", Type: schemas.DateTime}, "2024-02-29T23:00:00-01:00", `toDateTime('2024-03-01 00:00:00', 'UTC')`},
		{schemas.Column{Name: "ts", Type: schemas.Timestamp}, "2019-04-23 17:25:43.1", `'2019-04-23 17:25:43.100'`},
	} {
		got, err := keyLiteral(c.col, c.text)
		if err != nil || got != c.want {
			t.Errorf("%s %q: %s, %v; want %s", c.col.Type, c.text, got, err, c.want)
		}
	}
	for _, c := range []struct {
		col  schemas.Column
		text string
	}{
		{schemas.Column{Name: "i", Type: schemas.Int64}, "1; DROP TABLE x"},
		{schemas.Column{Name: "i", Type: schemas.Int64}, "9223372036854775808"},
		{schemas.Column{Name: "d", Type: schemas.Date}, "2024-02-30"},
		{schemas.Column{Name: "d", Type: schemas.Date}, "2106-01-01"},
		{schemas.Column{Name: "b", Type: schemas.Bool}, "2"},
	} {
		if got, err := keyLiteral(c.col, c.text); err == nil {
			t.Errorf("%s %q: %s, want an error", c.col.Type, c.text, got)
		}
	}
}

func TestKeysetConditions(t *testing.T) {
	one := keyset{{Name: "sku", Type: schemas.String}}
	two := recordKeys(testEvents)
	three := keyset{{Name: "a", Type: schemas.String}, {Name: "b", Type: schemas.Int64}, {Name: "c", Type: schemas.Date}}
	for _, c := range []struct{ got, want string }{
		{one.greater([]string{"'x'"}), "`sku` > 'x'"},
		{one.atMost([]string{"'x'"}), "`sku` <= 'x'"},
		{two.greater([]string{"'1'", "'t'"}), "`id` >= '1' AND (`id` > '1' OR `ts` > 't')"},
		{two.atMost([]string{"'1'", "'t'"}), "`id` <= '1' AND (`id` < '1' OR `ts` <= 't')"},
		{three.greater([]string{"A", "B", "C"}), "`a` >= A AND (`a` > A OR (`b` >= B AND (`b` > B OR `c` > C)))"},
		{three.equal([]string{"A", "B", "C"}), "`a` = A AND `b` = B AND `c` = C"},
		{three.orderBy(), "`a`, `b`, `c`"},
	} {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
}

func TestKeysetURLKey(t *testing.T) {
	sha := strings.Repeat("0a", 32)
	for _, c := range []struct {
		s       *schemas.Schema
		escaped string
		want    []string
	}{
		{schemas.Products, "a%2Fb%20c", []string{`'a/b c'`}},
		{schemas.Products, "a/b", []string{`'a/b'`}},
		{testEvents, url.PathEscape(`["10101","2019-04-23T19:25:43.111+02:00"]`), []string{`'10101'`, `'2019-04-23 17:25:43.111'`}},
		{testEvents, url.PathEscape(`["10101", "2019-04-23 17:25:43.111"]`), []string{`'10101'`, `'2019-04-23 17:25:43.111'`}},
		{testEvents, "10101/2019-04-23T17:25:43.111Z", []string{`'10101'`, `'2019-04-23 17:25:43.111'`}},
		{testEvents, "a%2Fb/2019-04-23%2017:25:43.1", []string{`'a/b'`, `'2019-04-23 17:25:43.100'`}},
		{testPlays, sha + "/17", []string{"'" + sha + "'", `toUInt64('17')`}},
	} {
		key, _ := url.PathUnescape(c.escaped)
		got, err := recordKeys(c.s).urlKey(c.s, key, c.escaped)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s %q: %q, %v; want %q", c.s.Name, c.escaped, got, err, c.want)
		}
	}
	for _, c := range []struct {
		s             *schemas.Schema
		escaped, want string
	}{
		{schemas.Products, "", "no key"},
		{testEvents, "10101", `give its 2 values as path segments (a slash inside one as %2F), or as the JSON array ["id","ts"]`},
		{testEvents, url.PathEscape(`["10101"]`), "give its 2 values"},
		{testEvents, "1/2/2019-04-23T17:25:43Z", "give its 2 values"},
		{testEvents, url.PathEscape(`["", "2019-04-23T17:25:43Z"]`), `field "id": required field is empty`},
		{testEvents, "1/2019-04-23", `field "ts": not an RFC 3339 time`},
		{testPlays, sha, "is not <sha256>/<offset>"},
		{testPlays, sha + "/x", "the offset is not a decimal number"},
	} {
		key, _ := url.PathUnescape(c.escaped)
		got, err := recordKeys(c.s).urlKey(c.s, key, c.escaped)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: %q, %v; want an error containing %q", c.s.Name, c.escaped, got, err, c.want)
		}
	}
}

func TestKeysetJSONValues(t *testing.T) {
	str := func(s string) *string { return &s }
	o := jsonObject{
		{"i", jsonValue(schemas.Int64, str("-12"))},
		{"u", jsonValue(schemas.UInt64, str("18446744073709551615"))},
		{"f", jsonValue(schemas.Float64, str("0.1"))},
		{"b", jsonValue(schemas.Bool, str("1"))},
		{"d", jsonValue(schemas.Date, str("2024-02-29"))},
		{"n", jsonValue(schemas.Int64, nil)},
		{"extra", jsonExtra(str(`{"color":"red"}`))},
		{"bad extra", jsonExtra(str(`{not json`))},
		{"_meta", jsonObject{{"_job", "j"}}},
	}
	got, err := json.Marshal(o)
	want := `{"i":-12,"u":18446744073709551615,"f":0.1,"b":true,"d":"2024-02-29","n":null,"extra":{"color":"red"},"bad extra":"{not json","_meta":{"_job":"j"}}`
	if err != nil || string(got) != want {
		t.Fatalf("%s, %v\nwant %s", got, err, want)
	}
}

// FuzzKeysetCursor: no cursor makes decoding or the literals panic, a
// decoded cursor encodes back to itself, and every literal is one quoted
// string, alone or in one conversion.
func FuzzKeysetCursor(f *testing.F) {
	f.Add(encodeCursor([]string{"10101", "2019-04-23 17:25:43.111"}))
	f.Add(encodeCursor([]string{strings.Repeat("a", 64), "12"}))
	f.Add("AQ")
	f.Add("AX") // AQ with a stray bit, once decoded to AQ's empty key
	ks := []keyset{recordKeys(schemas.Products), recordKeys(testEvents), recordKeys(testPlays),
		{{Name: "d", Type: schemas.Date}, {Name: "t", Type: schemas.DateTime}, {Name: "b", Type: schemas.Bool}}}
	f.Fuzz(func(t *testing.T, s string) {
		texts, err := decodeCursor(s)
		if err != nil {
			return
		}
		if again := encodeCursor(texts); again != s {
			t.Fatalf("%q decodes to %q, which encodes to %q", s, texts, again)
		}
		for _, k := range ks {
			lits, err := k.cursor(s)
			if err != nil {
				continue
			}
			for _, l := range lits {
				inner := l[strings.IndexByte(l, '\''):]
				inner = strings.TrimSuffix(strings.TrimSuffix(inner, ", 'UTC')"), ")")
				if !strings.HasSuffix(inner, "'") || strings.Count(strings.ReplaceAll(inner, `\\`, ""), "'")-strings.Count(strings.ReplaceAll(inner, `\\`, ""), `\'`) != 2 {
					t.Fatalf("literal %s is not one quoted string", l)
				}
			}
		}
	})
}

// loggedConn runs every query with log_queries and a query id that starts
// with the current label, so that system.query_log tells what each request
// read (18.16 logs queries only when asked).
type loggedConn struct {
	clickhouse.Conn
	mu    sync.Mutex
	label string
	n     int
}

func (c *loggedConn) setLabel(l string) {
	c.mu.Lock()
	c.label = l
	c.mu.Unlock()
}

func (c *loggedConn) ctx(ctx context.Context) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return ch.Context(ctx, ch.WithQueryID(fmt.Sprintf("%s/%d", c.label, c.n)), ch.WithSettings(ch.Settings{"log_queries": 1}))
}

func (c *loggedConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	return c.Conn.Query(c.ctx(ctx), query, args...)
}

func (c *loggedConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	return c.Conn.QueryRow(c.ctx(ctx), query, args...)
}

// rowsRead returns the rows that the queries labelled label read, once
// query_log holds the n queries.
func rowsRead(t *testing.T, srv *testenv.ClickHouseServer, label string, n int) int64 {
	t.Helper()
	for try := 0; ; try++ {
		srv.Query(t, "SYSTEM FLUSH LOGS")
		var queries int
		var rows int64
		out := srv.Query(t, fmt.Sprintf("SELECT count(), sum(read_rows) FROM system.query_log WHERE toUInt8(type) = 2 AND startsWith(query_id, %s)", clickhouse.Quote(label+"/")))
		if _, err := fmt.Sscan(out, &queries, &rows); err != nil {
			t.Fatalf("query_log: %q: %v", out, err)
		}
		if queries == n {
			return rows
		}
		if try == 50 {
			t.Fatalf("query_log holds %d queries labelled %s, want %d", queries, label, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listServer serves types on the ClickHouse server srv, through conn.
func listServer(t *testing.T, srv *testenv.ClickHouseServer, conn clickhouse.Conn, types ...*schemas.Schema) string {
	t.Helper()
	cfg := config.Default()
	cfg.ClickHouse.Addr = srv.TCPAddr
	cfg.API.RateLimit, cfg.API.RateBurst = 1e6, 1e6
	o := Options{Config: cfg, Conn: conn, Types: map[string]*Type{}}
	for _, s := range types {
		o.Types[s.Name] = &Type{Schema: s, Config: cfg.For(s)}
	}
	hs := httptest.NewServer(New(o).Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

func getPage(t *testing.T, u string) pageBody {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	var p pageBody
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
	return p
}

type pageBody struct {
	Rows []map[string]any `json:"rows"`
	Next string           `json:"next"`
}

// TestKeysetRowsReadOnClickHouse pages through 1,000,000 products in
// pages of 1,000 on ClickHouse 18.16, the table in five parts that each
// span the whole key range (four loads and an update, as the processor's
// batches do), and reads from system.query_log what pages at several
// depths read. A page reads a few granules (8,192 rows) of each part at
// any depth; one ORDER BY ... LIMIT query alone would read every row above
// the cursor, the whole table for the first page (logged, for comparison).
func TestKeysetRowsReadOnClickHouse(t *testing.T) {
	srv := testenv.ClickHouse(t)
	ctx := context.Background()
	base, err := clickhouse.Open(config.ClickHouse{Addr: srv.TCPAddr, Username: "default", DialTimeout: 5 * time.Second, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	if err := clickhouse.Migrate(ctx, base, "skuflow", schemas.Products); err != nil {
		t.Fatal(err)
	}
	const rows, parts, limit = 1000000, 4, 1000
	// sku-1000000 to sku-1999999: one width, so text order is number order.
	sku := func(i int) string { return fmt.Sprintf("sku-%d", 1000000+i) }
	insert := "INSERT INTO skuflow.products (sku, name, description, extra, _job, _source, _line, _partition, _offset, _version, _ingested_at) "
	for p := range parts {
		srv.Query(t, insert+fmt.Sprintf("SELECT concat('sku-', toString(1000000 + number)), concat('name ', toString(number %% 977)), '', '{}', 'job', 'gen', number + 1, 0, number, 1, now() FROM system.numbers WHERE number %% %d = %d LIMIT %d", parts, p, rows/parts))
	}
	// Every 100th product renamed.
	srv.Query(t, insert+fmt.Sprintf("SELECT concat('sku-', toString(1000000 + number)), 'renamed', '', '{\"n\":1}', 'job2', 'update', 1, 0, number, 2, now() FROM system.numbers WHERE number %% 100 = 7 LIMIT %d", rows/100))
	conn := &loggedConn{Conn: base}
	url := listServer(t, srv, conn, schemas.Products) + fmt.Sprintf("/v1/records/products?limit=%d", limit)
	// The cursor of the page at depth d (from 1), as the page before gives it.
	cursor := func(d int) string {
		if d == 1 {
			return ""
		}
		return encodeCursor([]string{sku((d-1)*limit - 1)})
	}

	// The first pages and the last ones: every key once, in order, with
	// its last write; the page after the last is empty, with no next.
	for _, from := range []int{1, rows/limit - 1} {
		next := cursor(from)
		for d := from; d < from+3; d++ {
			p := getPage(t, url+"&after="+next)
			if d > rows/limit {
				if len(p.Rows) != 0 || p.Next != "" {
					t.Fatalf("page %d, past the end: %d rows, next %q", d, len(p.Rows), p.Next)
				}
				break
			}
			if len(p.Rows) != limit || p.Next != cursor(d+1) {
				t.Fatalf("page %d: %d rows, next %q", d, len(p.Rows), p.Next)
			}
			for j, r := range p.Rows {
				i := (d-1)*limit + j
				if r["sku"] != sku(i) || (i%100 == 7) != (r["name"] == "renamed") {
					t.Fatalf("row %d: %v, want sku %s", i, r, sku(i))
				}
			}
			next = p.Next
		}
	}

	// Rows read by pages at several depths, measured three times,
	// interleaved; the least of each (a merge of parts in the background
	// only adds). The naive page, one ORDER BY ... LIMIT query with the
	// cursor alone, for comparison.
	depths := []int{1, 2, 50, 500, 999, 1000}
	read, naive, took := map[int]int64{}, map[int]int64{}, map[int]time.Duration{}
	for rep := range 3 {
		for _, d := range depths {
			label := fmt.Sprintf("page%04d.%d", d, rep)
			conn.setLabel(label)
			began := time.Now()
			getPage(t, url+"&after="+cursor(d))
			if el := time.Since(began); rep == 0 || el < took[d] {
				took[d] = el
			}
			if n := rowsRead(t, srv, label, 2); rep == 0 || n < read[d] {
				read[d] = n
			}
			label = "naive" + label
			conn.setLabel(label)
			ks := recordKeys(schemas.Products)
			lits, _ := ks.cursor(cursor(d))
			var where []string
			if lits != nil {
				where = append(where, ks.greater(lits))
			}
			rd := newRecordReader(schemas.Products)
			if _, err := rd.read(ctx, conn, fmt.Sprintf("SELECT %s FROM skuflow.products FINAL%s ORDER BY sku LIMIT %d", strings.Join(rd.exprs, ", "), whereClause(where), limit)); err != nil {
				t.Fatal(err)
			}
			if n := rowsRead(t, srv, label, 1); rep == 0 || n < naive[d] {
				naive[d] = n
			}
		}
	}
	var active int
	if _, err := fmt.Sscan(srv.Query(t, "SELECT count() FROM system.parts WHERE database = 'skuflow' AND table = 'products' AND active"), &active); err != nil {
		t.Fatal(err)
	}
	for _, d := range depths {
		t.Logf("page %4d: %6d rows read in %s (one ORDER BY ... LIMIT query alone: %7d)", d, read[d], took[d].Round(100*time.Microsecond), naive[d])
	}
	// What a page may read: the first query reads the granule holding the
	// cursor and on to the LIMIT in each part, the second the granules
	// between cursor and bound, one or two per part.
	const granule = 8192
	most := int64(active*3*granule + 2*limit)
	t.Logf("%d active parts: at most %d rows a page", active, most)
	for _, d := range depths {
		if read[d] > most {
			t.Errorf("page %d read %d rows, more than %d", d, read[d], most)
		}
	}
}

// The conditions greater and atMost agree with ClickHouse's own tuple
// comparison on every pair of keys of a small table of three columns of
// different types (String, Int64, Date), including the epoch's date and
// the empty string.
func TestKeysetComparisonsOnClickHouse(t *testing.T) {
	srv := testenv.ClickHouse(t)
	srv.Query(t, "CREATE TABLE default.k (a String, b Int64, c Date) ENGINE = MergeTree ORDER BY (a, b, c)")
	srv.Query(t, "INSERT INTO default.k SELECT arrayJoin(['', 'a', 'b']) AS a, arrayJoin([-1, 0, 1]) AS b, arrayJoin([toDate('1970-01-01'), toDate('2024-02-29')]) AS c")
	ks := keyset{{Name: "a", Type: schemas.String}, {Name: "b", Type: schemas.Int64}, {Name: "c", Type: schemas.Date}}
	keys := strings.Split(srv.Query(t, "SELECT a, toString(b), "+ks[2].TextSQL("c")+" FROM default.k ORDER BY a, b, c FORMAT TSV"), "\n")
	if len(keys) != 18 {
		t.Fatalf("keys: %q", keys)
	}
	var q []string
	for _, k := range keys {
		lits, err := ks.literals(strings.Split(k, "\t"))
		if err != nil {
			t.Fatal(err)
		}
		tuple := "(" + strings.Join(lits, ", ") + ")"
		q = append(q, fmt.Sprintf("SELECT countIf(%s) = countIf((a, b, c) > %s) AND countIf(%s) = countIf((a, b, c) <= %s) AND countIf(%s) = 1 FROM default.k",
			ks.greater(lits), tuple, ks.atMost(lits), tuple, ks.equal(lits)))
	}
	got := srv.Query(t, strings.Join(q, ";\n"))
	if want := strings.TrimSuffix(strings.Repeat("1\n", len(keys)), "\n"); got != want {
		t.Fatalf("conditions disagree with tuple comparisons (1 = agree):\n%s", got)
	}
}
