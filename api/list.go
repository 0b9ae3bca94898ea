package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/schemas"
)

// Page sizes of the listings: what a page holds unless limit says, and the
// most it may hold.
const (
	defaultPageRows = 100
	maxPageRows     = 1000
)

// listQueryTimeout bounds the ClickHouse queries of one listing request: a
// page reads a few granules, so anything near this is a server in trouble,
// and the client gets an answer rather than a hung request.
const listQueryTimeout = 30 * time.Second

// listRoutes serves the stored rows and aggregates, a page at a time in key
// order:
//
//	GET /v1/records/{type}?after=CURSOR&limit=N     the current rows (FINAL)
//	GET /v1/records/{type}/{key...}                 one current row
//	GET /v1/aggregates/{name}?after=CURSOR&limit=N  an aggregate view's rows
//
// (GET /v1/types says which aggregates there are.)
//
// Pages are cut by keyset, never by offset: a page is the first rows whose
// key is above the cursor (the last key of the page before), so its cost
// does not grow with its depth (recordPage says how it stays small on
// 18.16). A walk while rows are written sees every key that exists
// throughout exactly once: pages cover adjacent ranges of keys, each page
// holds every key of its range that exists when it is read, and keys are
// never deleted. A key written during the walk is seen once, or not at
// all if its range was read before it.
func (s *Server) listRoutes(mux *http.ServeMux) {
	read := func(h http.HandlerFunc) http.Handler { return s.auth.require(config.ScopeRead, h) }
	mux.Handle("GET /v1/records/{type}", read(s.listRecords))
	// {key...}: an identity key (<sha256>/<offset>) holds a slash.
	mux.Handle("GET /v1/records/{type}/{key...}", read(s.getRecord))
	mux.Handle("GET /v1/aggregates/{name}", read(s.aggregateRows))
}

// pageAnswer is the body of a listing: its rows, and the cursor of the
// page after, omitted on the last page. A page as long as its limit gives a
// cursor even when no row follows: the page it leads to is empty.
type pageAnswer struct {
	Rows []jsonObject `json:"rows"`
	Next string       `json:"next,omitempty"`
}

// listRecords answers a page of a type's current rows in key order.
func (s *Server) listRecords(w http.ResponseWriter, r *http.Request) {
	t := s.typeOf(w, r.PathValue("type"))
	if t == nil {
		return
	}
	q := r.URL.Query()
	limit, err := limitParam(q.Get("limit"), defaultPageRows, maxPageRows)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_limit", err.Error())
		return
	}
	ks := recordKeys(t.Schema)
	after, err := ks.cursor(q.Get("after"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_cursor", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), listQueryTimeout)
	defer cancel()
	rows, err := s.recordPage(ctx, t, ks, after, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", fmt.Sprintf("read %s: %v", t.Schema.Name, err))
		return
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit))
}

// getRecord answers the current row of one key, given as the rest of the
// path (path-escaped):
//
//   - a single-column key: its value, /v1/records/products/sku-1 (a
//     slash in it may be left as it is);
//   - a composite key: its values in key order as path segments, a slash
//     inside a value escaped as %2F, /v1/records/events/10101/2019-04-23T17:25:43.111Z;
//     or as the type's Kafka key writes it (schemas.Schema.Validate), the
//     JSON array of the values, /v1/records/events/["10101","2019-04-23 17:25:43.111"]
//     escaped; values in any spelling their columns accept in a record;
//   - a source identity: <sha256>/<offset>.
//
// A row's _meta._key is its key in the Kafka key's form, ready for this.
func (s *Server) getRecord(w http.ResponseWriter, r *http.Request) {
	t := s.typeOf(w, r.PathValue("type"))
	if t == nil {
		return
	}
	ks := recordKeys(t.Schema)
	key := r.PathValue("key")
	lits, err := ks.urlKey(t.Schema, key, keyPath(r))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_key", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), listQueryTimeout)
	defer cancel()
	rd := newRecordReader(t.Schema)
	query := fmt.Sprintf("SELECT %s FROM %s FINAL WHERE %s LIMIT 1",
		strings.Join(rd.exprs, ", "), s.recordsTable(t), ks.equal(lits))
	rows, err := rd.read(ctx, s.o.Conn, query)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", fmt.Sprintf("read %s: %v", t.Schema.Name, err))
		return
	}
	if len(rows) == 0 {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s row with key %q", t.Schema.Name, key))
		return
	}
	writeJSON(w, http.StatusOK, rows[0].obj)
}

// recordPage reads the rows of one page: the first limit keys above after
// (all keys when after is nil), in key order, from the type's table with
// FINAL (one row per key, its last write).
//
// It takes two queries, so that a page reads about what it returns on
// ClickHouse 18.16 as on current releases. 18.16 cannot read in key order
// for an ORDER BY ... LIMIT: the primary key skips what lies below the
// cursor, but every row above it is read and sorted, so the first page of
// a table reads all of it. FINAL, though, merges the parts in key order,
// and a LIMIT without ORDER BY stops reading once it has its rows. So the
// first query takes any limit keys above the cursor (the lowest, on
// 18.16) and their highest; the second reads the page between the cursor
// and that bound, which the primary key narrows on every version. The
// bound holds at least limit keys (keys are never deleted), so the page is
// the first limit keys above the cursor whatever the first query picked;
// on a release that picks other keys the bound is only wider.
func (s *Server) recordPage(ctx context.Context, t *Type, ks keyset, after []string, limit int) ([]listRow, error) {
	table := s.recordsTable(t)
	var where []string
	if after != nil {
		where = append(where, ks.greater(after))
	}
	n, last, err := ks.bound(ctx, s.o.Conn, table, where, limit)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	if n == limit {
		lits, err := ks.literals(last)
		if err != nil {
			return nil, fmt.Errorf("the page's last key: %w", err)
		}
		where = append(where, ks.atMost(lits))
	}
	// With fewer keys than limit above the cursor there is no bound: the
	// rest is short, and keys written since the first query are in it.
	rd := newRecordReader(t.Schema)
	query := fmt.Sprintf("SELECT %s FROM %s FINAL%s ORDER BY %s LIMIT %d",
		strings.Join(rd.exprs, ", "), table, whereClause(where), ks.orderBy(), limit)
	return rd.read(ctx, s.o.Conn, query)
}

func (s *Server) recordsTable(t *Type) string {
	return clickhouse.Table(t.Config.ClickHouse.Database, t.Schema.Name)
}

// aggregateRows answers a page of an aggregate's view in group order: its
// By columns and its result. The view sums partial results over a FINAL
// table; the page's condition on the groups is applied outside it, so every
// page reads the whole (small) table of partial results, at any depth.
func (s *Server) aggregateRows(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	t, a := s.aggregate(name)
	if a == nil {
		var names []string
		for _, t := range s.o.Types {
			for _, a := range t.Schema.Aggregates {
				names = append(names, a.Name)
			}
		}
		slices.Sort(names)
		writeError(w, http.StatusNotFound, "unknown_aggregate", fmt.Sprintf("no aggregate %q (the aggregates are %v)", name, names))
		return
	}
	q := r.URL.Query()
	limit, err := limitParam(q.Get("limit"), defaultPageRows, maxPageRows)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_limit", err.Error())
		return
	}
	ks := make(keyset, len(a.By))
	for i, b := range a.By {
		ks[i], _ = t.Schema.Column(b) // schemas.Check has made sure it is one
	}
	after, err := ks.cursor(q.Get("after"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_cursor", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), listQueryTimeout)
	defer cancel()
	rd := newAggregateReader(t.Schema, a)
	var where []string
	if after != nil {
		where = append(where, ks.greater(after))
	}
	query := fmt.Sprintf("SELECT %s FROM %s%s ORDER BY %s LIMIT %d",
		strings.Join(rd.exprs, ", "), clickhouse.Table(t.Config.ClickHouse.Database, a.Name), whereClause(where), ks.orderBy(), limit)
	rows, err := rd.read(ctx, s.o.Conn, query)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", fmt.Sprintf("read %s: %v", a.Name, err))
		return
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit))
}

// aggregate finds the aggregate whose view is called name.
func (s *Server) aggregate(name string) (*Type, *schemas.Aggregate) {
	for _, t := range s.o.Types {
		for i := range t.Schema.Aggregates {
			if a := &t.Schema.Aggregates[i]; a.Name == name {
				return t, a
			}
		}
	}
	return nil, nil
}

func pageOf(rows []listRow, limit int) pageAnswer {
	out := pageAnswer{Rows: make([]jsonObject, len(rows))}
	for i, r := range rows {
		out.Rows[i] = r.obj
	}
	if len(rows) == limit {
		out.Next = encodeCursor(rows[len(rows)-1].key)
	}
	return out
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// keyset is the columns a listing is ordered and paged by: a type's key
// (its sorting key), or an aggregate's groups. None is nullable or Float64
// (schemas.Check).
type keyset []schemas.Column

// recordKeys returns the columns of s's sorting key.
func recordKeys(s *schemas.Schema) keyset {
	if s.Identity {
		return keyset(schemas.IdentityColumns)
	}
	ks := make(keyset, len(s.Key))
	for i, k := range s.Key {
		ks[i], _ = s.Column(k) // schemas.Check has made sure it is one
	}
	return ks
}

func (ks keyset) orderBy() string {
	names := make([]string, len(ks))
	for i, c := range ks {
		names[i] = clickhouse.Ident(c.Name)
	}
	return strings.Join(names, ", ")
}

// greater is the condition that the key is above the literals, in tuple
// order. It is written out column by column, k1 >= v1 AND (k1 > v1 OR
// (k2 >= v2 AND (k2 > v2 OR ...))), rather than as (k1, k2) > (v1, v2):
// ClickHouse 18.16 compares tuples right but cannot use the primary key
// for it (a page of a test table of 500,000 events read all of it with a
// tuple comparison, 279,000 rows with this one), while the columns' own
// comparisons narrow the key range on every version.
func (ks keyset) greater(lits []string) string { return ks.compare(lits, ">", ">", ">=") }

// atMost is the condition that the key is at most the literals.
func (ks keyset) atMost(lits []string) string { return ks.compare(lits, "<=", "<", "<=") }

// compare writes a tuple comparison out: the last column compared by
// lastOp, each one before it by loose and, to decide, by strict.
func (ks keyset) compare(lits []string, lastOp, strict, loose string) string {
	col := func(i int) string { return clickhouse.Ident(ks[i].Name) }
	last := len(ks) - 1
	cond := fmt.Sprintf("%s %s %s", col(last), lastOp, lits[last])
	for i := last - 1; i >= 0; i-- {
		if i+1 < last {
			cond = "(" + cond + ")"
		}
		cond = fmt.Sprintf("%s %s %s AND (%s %s %s OR %s)", col(i), loose, lits[i], col(i), strict, lits[i], cond)
	}
	return cond
}

// equal is the condition that the key is the literals.
func (ks keyset) equal(lits []string) string {
	conds := make([]string, len(ks))
	for i, c := range ks {
		conds[i] = fmt.Sprintf("%s = %s", clickhouse.Ident(c.Name), lits[i])
	}
	return strings.Join(conds, " AND ")
}

// bound runs the first query of a page (see recordPage): how many of the
// first limit keys FINAL gives under the conditions it found (at most
// limit), and the highest of them, as text.
func (ks keyset) bound(ctx context.Context, conn clickhouse.Conn, table string, where []string, limit int) (int, []string, error) {
	names := ks.orderBy()
	texts := make([]string, len(ks))
	for i := range ks {
		texts[i] = ks[i].TextSQL(fmt.Sprintf("tupleElement(_last, %d)", i+1))
	}
	// The aliases start with _, which no column of a type may (schemas
	// reserve it), and no skuflow column is called so. A small block size
	// makes 18.16's FINAL stop reading soon after the LIMIT is reached.
	query := fmt.Sprintf("SELECT _n, %s FROM (SELECT count() AS _n, max(tuple(%s)) AS _last FROM (SELECT %s FROM %s FINAL%s LIMIT %d)) SETTINGS max_block_size = %d",
		strings.Join(texts, ", "), names, names, table, whereClause(where), limit, limit)
	var n uint64
	last := make([]string, len(ks))
	dest := []any{&n}
	for i := range last {
		dest = append(dest, &last[i])
	}
	if err := conn.QueryRow(ctx, query).Scan(dest...); err != nil {
		return 0, nil, err
	}
	return int(n), last, nil
}

// literals returns the SQL literals of key values given as the canonical
// texts of their columns (as TextSQL reads them, or another spelling the
// column accepts), or an error saying which value is not one. A number is
// parsed here, and every value goes into SQL through clickhouse.Quote.
func (ks keyset) literals(texts []string) ([]string, error) {
	if len(texts) != len(ks) {
		return nil, fmt.Errorf("%d values for %d key columns", len(texts), len(ks))
	}
	lits := make([]string, len(ks))
	for i, c := range ks {
		lit, err := keyLiteral(c, texts[i])
		if err != nil {
			return nil, err
		}
		lits[i] = lit
	}
	return lits, nil
}

// keyLiteral returns the literal of column c's value text. A String is taken
// byte for byte; any other type is read as a record's value would be
// (Column.Canonical) and written as its canonical text, converted: a
// comparison of a Date with a string would fail inside a tuple on 18.16,
// and the conversion of a constant costs nothing per row.
func keyLiteral(c schemas.Column, text string) (string, error) {
	if c.Type == schemas.String {
		return clickhouse.Quote(text), nil
	}
	quoted, _ := json.Marshal(text)
	canon, err := c.Canonical(nil, quoted)
	if err != nil {
		return "", err
	}
	q := clickhouse.Quote(string(canon))
	switch c.Type {
	case schemas.Int64:
		return "toInt64(" + q + ")", nil
	case schemas.UInt64:
		return "toUInt64(" + q + ")", nil
	case schemas.Float64:
		return "toFloat64(" + q + ")", nil
	case schemas.Bool:
		return "toUInt8(" + q + ")", nil
	case schemas.Date:
		return "toDate(" + q + ")", nil
	case schemas.DateTime:
		return "toDateTime(" + q + ", 'UTC')", nil
	}
	// Timestamp is stored as its canonical text.
	return q, nil
}

// keyPath returns the rest of r's path after /v1/records/{type}/, as it
// was escaped: a slash in a value (%2F) stays apart from the slashes
// between values.
func keyPath(r *http.Request) string {
	p := r.URL.EscapedPath()
	for range 4 { // "", v1, records, the type
		_, p, _ = strings.Cut(p, "/")
	}
	return p
}

// urlKey returns the literals of a key given in a URL (see getRecord):
// key unescaped, escaped as the request gave it.
func (ks keyset) urlKey(s *schemas.Schema, key, escaped string) ([]string, error) {
	switch {
	case key == "":
		return nil, errors.New("no key: GET /v1/records/{type}/{key}")
	case s.Identity:
		file, offset, err := schemas.ParseIdentityKey([]byte(key))
		if err != nil {
			return nil, err
		}
		return ks.literals([]string{string(file), strconv.FormatUint(offset, 10)})
	case len(ks) == 1:
		return ks.literals([]string{key})
	}
	var values []json.RawMessage
	if strings.HasPrefix(key, "[") && json.Unmarshal([]byte(key), &values) == nil && len(values) == len(ks) {
		lits := make([]string, len(ks))
		for i, c := range ks {
			canon, err := c.Canonical(nil, values[i])
			if err != nil {
				return nil, err
			}
			if lits[i], err = keyLiteral(c, string(canon)); err != nil {
				return nil, err
			}
		}
		return lits, nil
	}
	segments := strings.Split(escaped, "/")
	if len(segments) != len(ks) {
		return nil, fmt.Errorf("the key of %s is (%s): give its %d values as path segments (a slash inside one as %%2F), or as the JSON array %s",
			s.Name, strings.Join(s.Key, ", "), len(ks), exampleKey(ks))
	}
	texts := make([]string, len(ks))
	for i, seg := range segments {
		var err error
		if texts[i], err = url.PathUnescape(seg); err != nil {
			return nil, fmt.Errorf("key segment %d: %w", i+1, err)
		}
	}
	return ks.literals(texts)
}

func exampleKey(ks keyset) string {
	parts := make([]string, len(ks))
	for i, c := range ks {
		parts[i] = fmt.Sprintf("%q", c.Name)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// A cursor is the key of the last row of a page, opaque to clients: the
// base64url (no padding) of a version byte (1) and each key column's
// canonical text, in key order, as a uvarint length and the bytes. Binary
// rather than JSON: a String key may hold bytes that are not UTF-8, which a
// JSON string would change, and the walk would then repeat or skip keys.
const cursorVersion = 1

func encodeCursor(texts []string) string {
	b := []byte{cursorVersion}
	for _, t := range texts {
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// cursor reads a cursor of this keyset and returns the literals of its
// key, nil for none; an error says what is wrong with it.
func (ks keyset) cursor(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	texts, err := decodeCursor(s)
	if err != nil {
		return nil, err
	}
	lits, err := ks.literals(texts)
	if err != nil {
		return nil, fmt.Errorf("not a cursor of this listing: %w", err)
	}
	return lits, nil
}

// errCursor says that a cursor is not one a listing gave.
var errCursor = errors.New("not a cursor this API gave (pass a page's next as it is)")

func decodeCursor(s string) ([]string, error) {
	// Strict: one cursor, one spelling (the last character's unused bits
	// must be zero).
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) == 0 || b[0] != cursorVersion {
		return nil, errCursor
	}
	var texts []string
	for b = b[1:]; len(b) > 0; {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, errCursor
		}
		texts = append(texts, string(b[w:w+int(n)]))
		b = b[w+int(n):]
	}
	return texts, nil
}

// listRow is one row of a listing: its JSON object and its key's texts.
type listRow struct {
	obj jsonObject
	key []string
}

// rowReader reads the rows of a query whose columns are exprs, every one as
// text (String or Nullable(String)), into rows made by build.
type rowReader struct {
	exprs []string
	build func(vals []*string) listRow
}

func (rd *rowReader) read(ctx context.Context, conn clickhouse.Conn, query string) ([]listRow, error) {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vals := make([]*string, len(rd.exprs))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	var out []listRow
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read row %d: %w", len(out)+1, err)
		}
		out = append(out, rd.build(vals))
	}
	return out, rows.Err()
}

// newRecordReader reads rows of type s: its columns typed, its extra
// column as the JSON it holds, and _meta: the row's key as the type's
// Kafka key (what GET /v1/records/{type}/{key} takes), the job, source
// and line it came from, and for an identity type the file and offset.
//
// Every column is read as its canonical text (Column.TextSQL; 18.16 prints
// the epoch's Date as 0000-00-00), and no expression takes an alias: an
// alias named as its column would stand for the column in WHERE too.
func newRecordReader(s *schemas.Schema) *rowReader {
	var exprs []string
	for i := range s.Columns {
		exprs = append(exprs, s.Columns[i].TextSQL(clickhouse.Ident(s.Columns[i].Name)))
	}
	exprs = append(exprs, clickhouse.Ident(s.Extra), clickhouse.Ident("_job"), clickhouse.Ident("_source"), "toString(`_line`)")
	var key []int
	if s.Identity {
		key = []int{len(exprs), len(exprs) + 1}
		exprs = append(exprs, clickhouse.Ident(schemas.IdentityColumns[0].Name), "toString("+clickhouse.Ident(schemas.IdentityColumns[1].Name)+")")
	} else {
		for _, k := range s.Key {
			key = append(key, slices.IndexFunc(s.Columns, func(c schemas.Column) bool { return c.Name == k }))
		}
	}
	nc := len(s.Columns)
	return &rowReader{exprs: exprs, build: func(vals []*string) listRow {
		obj := make(jsonObject, 0, nc+2)
		for i, c := range s.Columns {
			obj = append(obj, jsonMember{c.Name, jsonValue(c.Type, vals[i])})
		}
		obj = append(obj, jsonMember{s.Extra, jsonExtra(vals[nc])})
		texts := make([]string, len(key))
		raw := make([][]byte, len(key))
		for i, at := range key {
			texts[i] = textOf(vals[at])
			raw[i] = []byte(texts[i])
		}
		meta := jsonObject{
			{"_key", string(s.AppendKeyFromTexts(nil, raw))},
			{"_job", textOf(vals[nc+1])},
			{"_source", textOf(vals[nc+2])},
			{"_line", jsonValue(schemas.UInt64, vals[nc+3])},
		}
		if s.Identity {
			meta = append(meta,
				jsonMember{schemas.IdentityColumns[0].Name, texts[0]},
				jsonMember{schemas.IdentityColumns[1].Name, jsonValue(schemas.UInt64, vals[nc+5])})
		}
		return listRow{obj: append(obj, jsonMember{"_meta", meta}), key: texts}
	}}
}

// newAggregateReader reads rows of aggregate a's view: its By columns,
// typed, then its result (a number).
func newAggregateReader(s *schemas.Schema, a *schemas.Aggregate) *rowReader {
	cols := make([]schemas.Column, len(a.By))
	var exprs []string
	for i, b := range a.By {
		cols[i], _ = s.Column(b)
		exprs = append(exprs, cols[i].TextSQL(clickhouse.Ident(b)))
	}
	exprs = append(exprs, "toString("+clickhouse.Ident(a.As)+")")
	return &rowReader{exprs: exprs, build: func(vals []*string) listRow {
		obj := make(jsonObject, 0, len(cols)+1)
		texts := make([]string, len(cols))
		for i, c := range cols {
			obj = append(obj, jsonMember{c.Name, jsonValue(c.Type, vals[i])})
			texts[i] = textOf(vals[i])
		}
		// A count is Int64, a sum Int64 or UInt64: a number either way.
		obj = append(obj, jsonMember{a.As, jsonValue(schemas.Int64, vals[len(cols)])})
		return listRow{obj: obj, key: texts}
	}}
}

// jsonValue returns the JSON value of a column of type t whose canonical
// text is v (nil for NULL): numbers as numbers (exact, whatever their
// size), a Bool as true or false, times and strings as their text.
func jsonValue(t schemas.ColumnType, v *string) any {
	if v == nil {
		return nil
	}
	switch t {
	case schemas.Int64, schemas.UInt64:
		if isInteger(*v) {
			return json.Number(*v)
		}
	case schemas.Float64:
		if f, err := strconv.ParseFloat(*v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	case schemas.Bool:
		return *v != "0"
	}
	return *v
}

// isInteger reports whether s is a decimal integer, as toString writes one.
func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// jsonExtra returns the extra column's JSON object as it is, or, should it
// not hold JSON (a row written by other means), its text.
func jsonExtra(v *string) any {
	if v == nil {
		return nil
	}
	if json.Valid([]byte(*v)) {
		return json.RawMessage(*v)
	}
	return *v
}

func textOf(v *string) string {
	if v == nil {
		return ""
	}
	return *v
}

// jsonObject is a JSON object whose members keep their order: a row's columns
// in table order, then extra and _meta.
type jsonObject []jsonMember

type jsonMember struct {
	name  string
	value any
}

func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		name, err := json.Marshal(m.name)
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(m.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		b.Write(name)
		b.WriteByte(':')
		b.Write(value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
