package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// listing is the body of a page of GET /v1/records/{type} or
// /v1/aggregates/{name}.
type listing struct {
	Rows []map[string]any `json:"rows"`
	Next string           `json:"next"`
}

// getList GETs u and decodes its JSON body into out, failing the test
// unless the status is want. It returns the body.
func getList(t testing.TB, u string, want int, out any) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", u, resp.StatusCode, want, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v: %s", u, err, body)
		}
	}
	return body
}

// walk pages through a listing (u has its query, limit included) and
// returns every row, checking that only the last page is short.
func walkPages(t testing.TB, u string, limit int) []map[string]any {
	t.Helper()
	var rows []map[string]any
	for after := ""; ; {
		var p listing
		getList(t, u+"&after="+url.QueryEscape(after), http.StatusOK, &p)
		rows = append(rows, p.Rows...)
		if p.Next == "" {
			return rows
		}
		if len(p.Rows) != limit {
			t.Fatalf("a page of %d rows (limit %d) with a next", len(p.Rows), limit)
		}
		after = p.Next
	}
}

// tsv runs a query and returns its rows' fields, unescaped.
func finalRows(t testing.TB, st *testenv.Stack, query string) [][]string {
	t.Helper()
	out := st.CH.Query(t, query+" FORMAT TSV")
	if out == "" {
		return nil
	}
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "\t")
		for i := range f {
			f[i] = testenv.UnescapeTSV(f[i])
		}
		rows = append(rows, f)
	}
	return rows
}

// text writes a JSON value of a row as ClickHouse's TSV does: strings as
// they are, numbers in decimal, objects as compact JSON with sorted keys.
func asTSV(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return "NULL"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// canonJSON re-encodes JSON text with sorted keys, to compare extra.
func sortedJSON(t testing.TB, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("extra %q: %v", s, err)
	}
	return asTSV(v)
}

// compareRows holds the rows of a walk against the rows of a query, as
// texts: the row's fields named by fields ("_meta._line" for one of
// _meta), in the query's column order.
func sameRows(t testing.TB, what string, got []map[string]any, want [][]string, fields ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, FINAL holds %d", what, len(got), len(want))
	}
	for i, r := range got {
		for j, f := range fields {
			v := any(r)
			for _, part := range strings.Split(f, ".") {
				m, _ := v.(map[string]any)
				v = m[part]
			}
			g := asTSV(v)
			w := want[i][j]
			if f == "extra" {
				w = sortedJSON(t, w)
			}
			if g != w {
				t.Fatalf("%s row %d: %s is %q, FINAL has %q\nrow %v\nwant %q", what, i, f, g, w, r, want[i])
			}
		}
	}
}

// typesAPI starts a stack whose configuration declares the shipped types
// (events, plays), with the processor, the aggregator and the API.
func typesStackAPI(t *testing.T) (*testenv.Stack, string) {
	t.Helper()
	st := testenv.NewStack(t, "SKUFLOW_CONFIG="+filepath.Join(testenv.RepoRoot(t), "skuflow.example.yaml"))
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	base, _ := st.API(t)
	return st, base
}

func pushTyped(t *testing.T, st *testenv.Stack, typ string, args ...string) {
	t.Helper()
	out, stderr, err := st.Loader(t, append([]string{"push", "--wait", "--wait-timeout", "3m", "--no-progress", "--type", typ}, args...)...)
	if err != nil {
		t.Fatalf("push --type %s %v: %v\n%s\n%s", typ, args, err, out, stderr)
	}
}

// TestListRecordsOfEveryKind pages through products (a String key),
// events (a composite key with a millisecond Timestamp) and plays (the
// source identity: file hash and offset), each loaded with repeated and
// changed records, and finds exactly the FINAL rows in key order, typed;
// GETs single rows by each kind of key; and pages through both aggregates,
// finding exactly their views.
func TestListRecordsOfEveryKind(t *testing.T) {
	st, base := typesStackAPI(t)
	dir := t.TempDir()
	pushTyped(t, st, "products", testenv.Gen(t, dir, "p.ndjson", "--rows", "4000", "--dup-rate", "0.1", "--rename-rate", "0.2"))
	pushTyped(t, st, "events", testenv.Gen(t, dir, "e.ndjson", "--type", "events", "--rows", "3000", "--dup-rate", "0.05", "--update-rate", "0.2"))
	plays := testenv.Gen(t, dir, "plays.csv", "--type", "plays", "--rows", "2500", "--days", "3")
	pushTyped(t, st, "plays", plays)
	// A product with extra fields and a key that needs escaping in a URL.
	odd := "a/b c?%é"
	resp, err := http.Post(base+"/v1/records/products", "application/x-ndjson", strings.NewReader(
		`{"sku":"`+odd+`","name":"Odd","color":"red","sizes":[1,2]}`))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	st.WaitCount(t, "SELECT count() FROM skuflow.products FINAL WHERE sku = '"+odd+"'", 1, time.Minute)
	st.WaitCount(t, "SELECT count() FROM skuflow.products_agg WHERE name = 'Odd'", 1, time.Minute)

	products := walkPages(t, base+"/v1/records/products?limit=700", 700)
	sameRows(t, "products", products,
		finalRows(t, st, "SELECT sku, name, description, extra, _job, _source, toString(_line), sku FROM skuflow.products FINAL ORDER BY sku"),
		"sku", "name", "description", "extra", "_meta._job", "_meta._source", "_meta._line", "_meta._key")
	events := walkPages(t, base+"/v1/records/events?limit=400", 400)
	sameRows(t, "events", events,
		finalRows(t, st, "SELECT id, data, ts, extra, _source, toString(_line) FROM skuflow.events FINAL ORDER BY id, ts"),
		"id", "data", "ts", "extra", "_meta._source", "_meta._line")
	playRows := walkPages(t, base+"/v1/records/plays?limit=300", 300)
	sameRows(t, "plays", playRows,
		finalRows(t, st, "SELECT song, toString(date), toString(plays), _file_sha256, toString(_file_offset), concat(_file_sha256, '/', toString(_file_offset)) FROM skuflow.plays FINAL ORDER BY _file_sha256, _file_offset"),
		"song", "date", "plays", "_meta._file_sha256", "_meta._file_offset", "_meta._key")
	if len(products) < 2500 || len(events) < 2000 || len(playRows) != 2500 {
		t.Fatalf("walked %d products, %d events, %d plays", len(products), len(events), len(playRows))
	}
	for _, r := range []map[string]any{rowWith(t, products, "sku", odd), events[0], playRows[0]} {
		t.Logf("a row: %s", jsonText(r))
	}
	// Typed: numbers are numbers, extra is the record's other fields.
	for _, r := range products {
		if r["sku"] == odd {
			if got := jsonText(r); !strings.Contains(got, `"extra":{"color":"red","sizes":[1,2]}`) {
				t.Fatalf("the odd product: %s", got)
			}
		}
	}
	if _, ok := playRows[0]["plays"].(float64); !ok {
		t.Fatalf("plays is not a number: %v", playRows[0])
	}

	// One row by its key, as _meta._key gives it, escaped in the URL.
	for _, c := range []struct {
		typ string
		row map[string]any
	}{
		{"products", products[len(products)/2]},
		{"products", rowWith(t, products, "sku", odd)},
		{"events", events[len(events)/3]},
		{"plays", playRows[len(playRows)-1]},
	} {
		key := c.row["_meta"].(map[string]any)["_key"].(string)
		var got map[string]any
		getList(t, base+"/v1/records/"+c.typ+"/"+url.PathEscape(key), http.StatusOK, &got)
		if !reflect.DeepEqual(got, c.row) {
			t.Fatalf("GET %s %q:\n%v\nthe page had\n%v", c.typ, key, got, c.row)
		}
	}
	// An event by other spellings of its key: its values as path
	// segments, its time in another offset.
	ev := events[0]
	ts, _ := time.Parse("2006-01-02 15:04:05.000", ev["ts"].(string))
	other := ts.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)
	array, _ := json.Marshal([]any{ev["id"], other})
	for _, key := range []string{url.PathEscape(string(array)), url.PathEscape(ev["id"].(string)) + "/" + url.PathEscape(other)} {
		var got map[string]any
		getList(t, base+"/v1/records/events/"+key, http.StatusOK, &got)
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("event by %s: %v, want %v", key, got, ev)
		}
	}
	// The odd product by its sku with its slash left as it is.
	var got map[string]any
	getList(t, base+"/v1/records/products/a/"+url.PathEscape("b c?%é"), http.StatusOK, &got)
	if got["sku"] != odd {
		t.Fatalf("odd product by its sku unescaped: %v", got)
	}
	for _, c := range []struct {
		path string
		code int
		err  string
	}{
		{"/v1/records/products/no-such-sku", 404, "not_found"},
		{"/v1/records/events/" + url.PathEscape(`["1","2019-01-01T00:00:00Z"]`), 404, "not_found"},
		{"/v1/records/plays/" + strings.Repeat("0", 64) + "/0", 404, "not_found"},
		{"/v1/records/events/10019", 400, "bad_key"},
		{"/v1/records/events/1/2/3", 400, "bad_key"},
		{"/v1/records/plays/abc/1", 400, "bad_key"},
		{"/v1/records/nothing/x", 404, "unknown_type"},
		{"/v1/records/nothing", 404, "unknown_type"},
		{"/v1/records/products?after=xyz", 400, "bad_cursor"},
		{"/v1/records/events?after=" + url.QueryEscape(firstCursor(t, base+"/v1/records/products?limit=1")), 400, "bad_cursor"},
		{"/v1/records/products?limit=1001", 400, "bad_limit"},
		{"/v1/records/products?limit=0", 400, "bad_limit"},
		{"/v1/aggregates/nothing", 404, "unknown_aggregate"},
		{"/v1/aggregates/products_agg?after=%25%25", 400, "bad_cursor"},
	} {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		getList(t, base+c.path, c.code, &e)
		if e.Error.Code != c.err || e.Error.Message == "" {
			t.Fatalf("%s: %+v, want code %s", c.path, e, c.err)
		}
		if c.err == "unknown_aggregate" && !strings.Contains(e.Error.Message, "[plays_by_song_date products_agg]") {
			t.Fatalf("%s: %s does not list the aggregates", c.path, e.Error.Message)
		}
	}

	// The aggregates, paged, are their views.
	byName := walkPages(t, base+"/v1/aggregates/products_agg?limit=90", 90)
	sameRows(t, "products_agg", byName, finalRows(t, st, "SELECT name, toString(no_of_products) FROM skuflow.products_agg ORDER BY name"), "name", "no_of_products")
	bySong := walkPages(t, base+"/v1/aggregates/plays_by_song_date?limit=7", 7)
	sameRows(t, "plays_by_song_date", bySong, finalRows(t, st, "SELECT song, toString(date), toString(plays) FROM skuflow.plays_by_song_date ORDER BY song, date"), "song", "date", "plays")
	t.Logf("aggregate rows: %s, %s", jsonText(byName[0]), jsonText(bySong[0]))
	if len(byName) < 100 || len(bySong) < 20 {
		t.Fatalf("%d names, %d songs and dates", len(byName), len(bySong))
	}
}

func rowWith(t *testing.T, rows []map[string]any, field string, value any) map[string]any {
	t.Helper()
	for _, r := range rows {
		if r[field] == value {
			return r
		}
	}
	t.Fatalf("no row with %s %v", field, value)
	return nil
}

func firstCursor(t *testing.T, u string) string {
	t.Helper()
	var p listing
	getList(t, u, http.StatusOK, &p)
	return p.Next
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestKeysetWalkDuringUpdates is the proof: 50,000 products are
// loaded, then walked in pages of 1,000 again and again while another
// process (loader push) keeps renaming every one of them and adding new
// skus between them. Every walk sees every product that existed throughout
// exactly once and no key twice, whatever it caught of the writes. Then
// page 1 and page 50 are timed, interleaved: the ratio is logged, and held
// under a generous bound (the rows a page reads are held against its depth
// on ClickHouse itself by TestKeysetRowsReadOnClickHouse).
func TestKeysetWalkDuringUpdates(t *testing.T) {
	st := testenv.NewStack(t)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	base, _ := st.API(t)
	dir := t.TempDir()
	const rows, limit = 50000, 1000
	first := testenv.Gen(t, dir, "products.ndjson", "--rows", strconv.Itoa(rows))
	st.PushWait(t, first)
	existing := testenv.LastWrites(t, first)
	if len(existing) != rows {
		t.Fatalf("%d distinct skus generated", len(existing))
	}
	skus := make([]string, 0, rows)
	for s := range existing {
		skus = append(skus, s)
	}
	sort.Strings(skus)

	// The writer: round after round, every product renamed "round N" and
	// 2,000 new skus, each just after an existing one in key order, until
	// the walks are done (at most 20 rounds).
	var stop atomic.Bool
	writerDone := make(chan error, 1)
	t.Cleanup(func() {
		// A walk that failed ends the writer too, before the stack stops.
		stop.Store(true)
		for range writerDone {
		}
	})
	go func() {
		defer close(writerDone)
		for round := 1; round <= 20 && !stop.Load(); round++ {
			var b strings.Builder
			for i, s := range skus {
				fmt.Fprintf(&b, `{"sku":%q,"name":"round %d"}`+"\n", s, round)
				if i%25 == 0 {
					fmt.Fprintf(&b, `{"sku":%q,"name":"new in round %d"}`+"\n", fmt.Sprintf("%s~%d", s, round), round)
				}
			}
			path := filepath.Join(dir, fmt.Sprintf("round-%d.ndjson", round))
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				writerDone <- err
				return
			}
			if out, stderr, err := st.Loader(t, "push", "--wait", "--wait-timeout", "5m", "--no-progress", path); err != nil {
				writerDone <- fmt.Errorf("push round %d: %v\n%s%s", round, err, out, stderr)
				return
			}
		}
	}()
	st.WaitCount(t, "SELECT count() FROM skuflow.products WHERE name = 'round 1'", 1, 2*time.Minute)

	// Walks, each checked on its own; one at least must have run while
	// rows were written (the highest row version moved meanwhile).
	const walks = 4
	concurrent := 0
	for w := range walks {
		seen := map[string]int{}
		names := map[string]int{}
		pages := 0
		began := time.Now()
		v0 := st.CH.Query(t, "SELECT max(_version) FROM skuflow.products")
		for after := ""; ; pages++ {
			var p listing
			getList(t, base+"/v1/records/products?limit="+strconv.Itoa(limit)+"&after="+url.QueryEscape(after), http.StatusOK, &p)
			for _, r := range p.Rows {
				sku := r["sku"].(string)
				seen[sku]++
				if _, ok := existing[sku]; ok {
					name := r["name"].(string)
					if !strings.HasPrefix(name, "round ") {
						name = "as loaded"
					}
					names[name]++
				}
			}
			if p.Next == "" {
				break
			}
			after = p.Next
		}
		for sku, n := range seen {
			if n != 1 {
				t.Errorf("walk %d: sku %q seen %d times", w, sku, n)
			}
		}
		missing := 0
		for sku := range existing {
			if seen[sku] != 1 {
				missing++
				if missing <= 5 {
					t.Errorf("walk %d: sku %q, which existed throughout, seen %d times", w, sku, seen[sku])
				}
			}
		}
		if missing > 0 || t.Failed() {
			t.Fatalf("walk %d: %d of %d existing skus not seen exactly once", w, missing, rows)
		}
		written := st.CH.Query(t, "SELECT max(_version) FROM skuflow.products") != v0
		t.Logf("walk %d: %d pages, %d keys (%d new) in %s, rows written meanwhile: %v; the loaded products by name: %v",
			w, pages, len(seen), len(seen)-rows, time.Since(began).Round(time.Millisecond), written, names)
		if written {
			concurrent++
		}
	}
	stop.Store(true)
	if err, ok := <-writerDone; ok && err != nil {
		t.Fatal(err)
	}
	if concurrent == 0 {
		t.Fatalf("no walk ran while rows were written; the test proved nothing")
	}

	// Page 1 against page 50, interleaved, once the writes are done.
	var cursor50 string
	for after, d := "", 1; d < 50; d++ {
		var p listing
		getList(t, base+"/v1/records/products?limit=1000&after="+url.QueryEscape(after), http.StatusOK, &p)
		after, cursor50 = p.Next, p.Next
	}
	const reps = 15
	var t1, t50 []time.Duration
	for range reps {
		for _, c := range []struct {
			after string
			into  *[]time.Duration
		}{{"", &t1}, {cursor50, &t50}} {
			began := time.Now()
			var p listing
			getList(t, base+"/v1/records/products?limit=1000&after="+url.QueryEscape(c.after), http.StatusOK, &p)
			*c.into = append(*c.into, time.Since(began))
			if len(p.Rows) != limit {
				t.Fatalf("a page of %d rows", len(p.Rows))
			}
		}
	}
	slices.Sort(t1)
	slices.Sort(t50)
	m1, m50 := t1[reps/2], t50[reps/2]
	ratio := float64(m50) / float64(m1)
	t.Logf("page 1: median %s (min %s); page 50: median %s (min %s); page 50 / page 1 = %.2f",
		m1.Round(10*time.Microsecond), t1[0].Round(10*time.Microsecond), m50.Round(10*time.Microsecond), t50[0].Round(10*time.Microsecond), ratio)
	if ratio > 3 {
		t.Errorf("page 50 took %.1f times as long as page 1", ratio)
	}
}
