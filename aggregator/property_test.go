package aggregator

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/schemas"
)

// The record types the property test drives: products (one count), an
// events-like type keyed by (id, ts) with counts and sums over composite
// groups (a key column among them, signed values and UInt64 values past
// the largest Int64), and plays, whose identity is its source.
var (
	orders = &schemas.Schema{
		Name: "orders", Topic: "orders", Key: []string{"id", "ts"}, Extra: "extra",
		Columns: []schemas.Column{
			{Name: "id", Type: schemas.String, Required: true},
			{Name: "ts", Type: schemas.Timestamp, Required: true},
			{Name: "status", Type: schemas.String},
			{Name: "day", Type: schemas.Date},
			{Name: "qty", Type: schemas.Int64},
			{Name: "ok", Type: schemas.Bool},
			{Name: "big", Type: schemas.UInt64},
		},
		Aggregates: []schemas.Aggregate{
			{Name: "orders_by_status", Table: "orders_by_status_state", By: []string{"status"}, As: "count"},
			{Name: "orders_by_id_day", Table: "orders_by_id_day_state", By: []string{"id", "day"}, As: "count"},
			{Name: "qty_by_status_ok", Table: "qty_by_status_ok_state", By: []string{"status", "ok"}, Sum: "qty", As: "qty"},
			{Name: "big_by_day", Table: "big_by_day_state", By: []string{"day"}, Sum: "big", As: "big"},
		},
	}
	plays = mustDecl("plays", schemas.Decl{
		Identity: schemas.IdentitySource,
		Columns: []schemas.ColDecl{
			{Name: "song", Type: "String", Required: true},
			{Name: "date", Type: "Date", Required: true},
			{Name: "plays", Type: "UInt64", Required: true},
		},
		Aggs: []schemas.AggDecl{{Name: "plays_by_song_date", Sum: "plays", By: []string{"song", "date"}, As: "plays", Table: "plays_by_song_date_state"}},
	})
	events = mustDecl("events", schemas.Decl{
		Key: []string{"id", "ts"},
		Columns: []schemas.ColDecl{
			{Name: "id", Type: "String", Required: true},
			{Name: "data", Type: "String"},
			{Name: "ts", Type: "Timestamp", Required: true},
		},
	})
)

func mustDecl(name string, d schemas.Decl) *schemas.Schema {
	s, ps := d.Schema(name)
	if len(ps) > 0 {
		panic(fmt.Sprint(ps))
	}
	return s
}

// domains gives the canonical texts each column of the test types takes:
// few, so that keys are updated and groups shared, and some awkward
// (quotes, escapes, a text that reads like a length, the largest UInt64).
var domains = map[string][]string{
	"sku":         {"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12"},
	"name":        {"", "A", "B", "C", `q"uote`, "\x01A", "é"},
	"id":          {"1", "2", "10", "11", "a\\b"},
	"ts":          {"2019-04-23 17:25:43.111", "2019-04-23 17:25:43.112", "1999-12-31 23:59:59.999"},
	"status":      {"", "new", "paid", "\x02new", "a\"b"},
	"day":         {"1970-01-01", "2019-04-23", "2024-02-29"},
	"qty":         {"-5", "0", "3", "9223372036854775807", "-9223372036854775808"},
	"ok":          {"0", "1"},
	"big":         {"0", "1", "18446744073709551615", "9223372036854775809"},
	"song":        {"a", "a\x01", "\x01a", "Song 12", "b"},
	"date":        {"2023-01-01", "2023-01-02"},
	"plays":       {"0", "1", "7", "18446744073709551615"},
	"data":        {"", "x"},
	"description": {"", "d"},
}

// files are the sources of plays, as hex SHA-256.
var files = []string{strings.Repeat("ab", 32), strings.Repeat("0f", 32), strings.Repeat("e1", 32)}

// trec is one record on the simulated topic, with what the model knows of
// it without the aggregator's help.
type trec struct {
	key       []byte // Kafka key
	partition int32
	value     []byte
	// valid: the processor loads it (and the aggregator must count it);
	// an invalid one is set aside by both.
	valid bool
	id    string            // the key's identity in the model
	texts map[string]string // every column's text as toString reads it
}

// genRecord makes a record of s: mostly valid, sometimes one that does not
// fit the schema or is not where its key belongs.
func genRecord(rng *rand.Rand, s *schemas.Schema, pl *plan, nParts int) trec {
	r := trec{texts: map[string]string{}, valid: true}
	fields := map[string]string{}
	for _, c := range s.Columns {
		if !c.Required && rng.IntN(8) == 0 { // missing: the type's default
			r.texts[c.Name] = string(missingText(c.Type))
			if rng.IntN(2) == 0 {
				fields[c.Name] = "null"
			}
			continue
		}
		text := domains[c.Name][rng.IntN(len(domains[c.Name]))]
		r.texts[c.Name] = text
		fields[c.Name] = spell(rng, c, text)
	}
	if s.Identity {
		file, off := files[rng.IntN(len(files))], strconv.Itoa(rng.IntN(20))
		r.texts["_file_sha256"], r.texts["_file_offset"] = file, off
		r.key = []byte(file + "/" + off)
	}
	var keyTexts [][]byte
	for _, c := range pl.load[:pl.nKey] {
		keyTexts = append(keyTexts, []byte(r.texts[c.Name]))
	}
	if !s.Identity {
		r.key = s.AppendKeyFromTexts(nil, keyTexts)
	}
	r.id = string(s.AppendKeyFromTexts(nil, keyTexts))
	r.partition = kafka.PartitionOf(r.key, nParts)
	if rng.IntN(15) == 0 {
		r.valid = false
		switch k := rng.IntN(4); {
		case k == 0: // a required field missing
			for _, c := range s.Columns {
				if c.Required {
					delete(fields, c.Name)
					break
				}
			}
		case k == 1 && nParts > 1: // on another partition than its key's
			r.partition = (r.partition + 1 + rng.Int32N(int32(nParts-1))) % int32(nParts)
		case k == 2: // another Kafka key
			r.key = append(r.key, 'x')
			r.partition = kafka.PartitionOf(r.key, nParts)
		default: // a value that does not fit its column
			c := s.Columns[rng.IntN(len(s.Columns))]
			if c.Type == schemas.String {
				fields[c.Name] = "12"
			} else {
				fields[c.Name] = `"no"`
			}
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	names := slices.Sorted(maps.Keys(fields))
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", n, fields[n])
	}
	b.WriteByte('}')
	r.value = []byte(b.String())
	return r
}

// spell writes a canonical text as one of the JSON values that mean it.
func spell(rng *rand.Rand, c schemas.Column, text string) string {
	switch c.Type {
	case schemas.String:
		v, _ := json.Marshal(text)
		if rng.IntN(2) == 0 { // an escape the aggregator must undo
			return strings.ReplaceAll(string(v), "a", `\u0061`)
		}
		return string(v)
	case schemas.Int64, schemas.UInt64:
		if rng.IntN(2) == 0 {
			return `"` + text + `"` // as a CSV cell gives it
		}
		return text
	case schemas.Bool:
		return [][]string{{"false", "0", `"false"`, `"0"`}, {"true", "1", `"true"`, `"1"`}}[text[0]-'0'][rng.IntN(4)]
	case schemas.Timestamp:
		t, err := time.Parse("2006-01-02 15:04:05.000", text)
		if err != nil {
			panic(err)
		}
		switch rng.IntN(3) {
		case 0:
			return `"` + t.Format("2006-01-02T15:04:05.000Z07:00") + `"`
		case 1:
			return `"` + t.In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000000Z07:00") + `"`
		}
	}
	return `"` + text + `"`
}

// modelRow is a row of the records table: its texts and version.
type modelRow struct {
	texts map[string]string
	ver   uint64
}

type groupRow struct {
	agg       int
	partition int32
	group     string
}

// aggTable models the aggregates' tables: a ReplacingMergeTree keeps, per
// key, the row with the highest version. Among rows of one version it
// keeps the first here, the opposite of what ClickHouse does in practice:
// the aggregator must never write two different rows of one version.
type aggTable map[groupRow]change

func (tb aggTable) insert(agg int, c change) {
	k := groupRow{agg, c.Partition, string(c.Group)}
	old, ok := tb[k]
	if ok && c.Version == old.Version && (c.Count != old.Count || c.Total != old.Total) {
		panic(fmt.Sprintf("two rows of aggregate %d, group %q in partition %d at version %d: %d/%d and %d/%d",
			agg, c.Group, c.Partition, c.Version, old.Count, old.Total, c.Count, c.Total))
	}
	if !ok || c.Version > old.Version {
		tb[k] = c
	}
}

// sum is a group's result: keys in it, and their sum (wrapping, as
// ClickHouse's sums do).
type sum struct{ count, total int64 }

// view models an aggregate's view: sums over partitions, groups with no
// key hidden. Groups are their texts joined by \xff (which no canonical
// text holds), so that an encoding that mixed two groups up would show.
func (tb aggTable) view(pl *plan, agg int) map[string]sum {
	out := map[string]sum{}
	n := len(pl.aggs[agg].by)
	for k, c := range tb {
		if k.agg != agg {
			continue
		}
		var texts []string
		for _, t := range splitGroup(c.Group, n, nil) {
			texts = append(texts, string(t))
		}
		g := strings.Join(texts, "\xff")
		s := out[g]
		s.count += c.Count
		s.total += c.Total
		out[g] = s
	}
	for g, s := range out {
		if s.count == 0 {
			delete(out, g)
		}
	}
	return out
}

// expected computes every aggregate from the texts of the rows FINAL (by
// key), as `SELECT by..., count(), sum(x) FROM t FINAL GROUP BY by...` does.
func expected(pl *plan, final map[string]map[string]string) []map[string]sum {
	out := make([]map[string]sum, len(pl.aggs))
	for a := range pl.aggs {
		ap := &pl.aggs[a]
		out[a] = map[string]sum{}
		for _, texts := range final {
			var by []string
			for _, c := range ap.by {
				by = append(by, texts[c.Name])
			}
			g := strings.Join(by, "\xff")
			s := out[a][g]
			s.count++
			if ap.sums() {
				v, err := parseSum(ap.sum.Type, []byte(texts[ap.sum.Name]))
				if err != nil {
					panic(err)
				}
				s.total += v
			} else {
				s.total = 0
			}
			out[a][g] = s
		}
	}
	return out
}

// TestPropertyAggregatesEqualFinalRows drives an aggregator of each test
// type through random records (updates of few keys, invalid ones, values
// spelt many ways), with a model of the processor (the records table,
// FINAL) running ahead or behind, redeliveries of old offsets to both,
// crashes at any point (the state lost, a write after the last commit
// possibly half done), compaction of the topic and the topic recreated.
// A crashed state is loaded as Assigned loads it: from the model's rows
// and stored partial results. At the end every aggregate's modelled view
// equals the aggregate computed from the rows FINAL once the processor has
// caught up (the last valid record of each key, unless compaction took it
// before the processor read it: then neither has it).
func TestPropertyAggregatesEqualFinalRows(t *testing.T) {
	seeds := uint64(300)
	if testing.Short() {
		seeds = 50
	}
	for _, s := range []*schemas.Schema{schemas.Products, orders, plays} {
		t.Run(s.Name, func(t *testing.T) {
			for seed := range seeds {
				if err := runProperty(s, seed); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}

func runProperty(s *schemas.Schema, seed uint64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	type entry struct {
		trec
		off  int64
		gone bool // removed by compaction
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	nParts := 1 + rng.IntN(4)
	cfg := config.Default()
	cfg.Kafka.Partitions = nParts
	a := New(cfg, s, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pl := a.plan
	a.inc = 1
	logs := make([][]entry, nParts)
	rows := make([]map[string]modelRow, nParts) // the records table, FINAL
	procNext := make([]int, nParts)             // index in logs of the processor's next record
	aggNext := make([]int64, nParts)            // offset the aggregator reads next
	tb := aggTable{}
	for p := range nParts {
		rows[p] = map[string]modelRow{}
	}
	process := func(p int, e entry) {
		if !e.valid || e.gone {
			return
		}
		v := kafka.Version(a.inc, e.off)
		if old, ok := rows[p][e.id]; !ok || v > old.ver {
			rows[p][e.id] = modelRow{e.texts, v}
		}
	}
	load := func(p int) {
		st := pl.newPartition()
		rl := rowLoader{plan: pl}
		texts := make([][]byte, len(pl.load))
		for _, r := range rows[p] {
			for i, c := range pl.load {
				texts[i] = []byte(r.texts[c.Name])
			}
			if err := rl.apply(st, texts, r.ver); err != nil {
				panic(err)
			}
		}
		kept := make([]map[string]stored, len(pl.aggs))
		for i := range kept {
			kept[i] = map[string]stored{}
		}
		var top uint64
		for k, c := range tb {
			if k.partition == int32(p) {
				kept[k.agg][k.group] = stored{c.Count, c.Total}
				top = max(top, c.Version)
			}
		}
		l := &loaded{state: st}
		a.finish(l, kept, top)
		a.parts[int32(p)] = l.state
		aggNext[p] = l.from
	}
	flush := func(p int, partial bool) {
		dst := make([][]change, len(pl.aggs))
		a.parts[int32(p)].changes(int32(p), dst)
		type row struct {
			agg int
			change
		}
		var all []row
		for i, cs := range dst {
			for _, c := range cs {
				all = append(all, row{i, c})
			}
		}
		if partial && len(all) > 0 {
			all = all[:rng.IntN(len(all))] // a crash mid-write
		}
		for _, r := range all {
			tb.insert(r.agg, r.change)
		}
	}
	add := func(p int, e entry) {
		a.Add(&kgo.Record{Key: e.key, Value: e.value, Partition: int32(p), Offset: e.off})
		aggNext[p] = e.off + 1
	}
	for p := range nParts {
		load(p)
	}
	for range 100 + rng.IntN(400) {
		p := rng.IntN(nParts)
		switch op := rng.Float64(); {
		case op < 0.4: // produce a record
			r := genRecord(rng, s, pl, nParts)
			q := int(r.partition)
			logs[q] = append(logs[q], entry{trec: r, off: int64(len(logs[q]))})
		case op < 0.55: // the processor loads some records
			for k := rng.IntN(6); k >= 0 && procNext[p] < len(logs[p]); k-- {
				process(p, logs[p][procNext[p]])
				procNext[p]++
			}
		case op < 0.58: // the processor reads some again
			procNext[p] = rng.IntN(procNext[p] + 1)
		case op < 0.75: // the aggregator applies some records
			for _, e := range logs[p] {
				if e.off < aggNext[p] || e.gone {
					continue
				}
				if rng.IntN(4) == 0 {
					break
				}
				add(p, e)
			}
		case op < 0.78: // the aggregator is given a run of old records again
			from := rng.Int64N(aggNext[p] + 1)
			to := from + rng.Int64N(aggNext[p]-from+1)
			for _, e := range logs[p] {
				if e.off >= from && e.off < to && !e.gone {
					a.Add(&kgo.Record{Key: e.key, Value: e.value, Partition: int32(p), Offset: e.off})
				}
			}
		case op < 0.86: // flush (and commit)
			flush(p, false)
		case op < 0.92: // crash, perhaps mid-flush: the state is loaded again
			if rng.IntN(2) == 0 {
				flush(p, true)
			}
			load(p)
		case op < 0.97: // compaction: a Kafka key's older records go.
			// One that only records set aside follow goes once both the
			// processor and the aggregator have read it: before, one of
			// them would never see it, and the table and the aggregates
			// would disagree on it (a limit of two groups reading one
			// compacted topic; see doc.go).
			lastOff, lastValid := map[string]int64{}, map[string]int64{}
			for _, e := range logs[p] {
				if !e.gone {
					lastOff[string(e.key)] = e.off
					if e.valid {
						lastValid[string(e.key)] = e.off
					}
				}
			}
			for i := range logs[p] {
				e := &logs[p][i]
				k := string(e.key)
				if lastOff[k] == e.off {
					continue
				}
				if v, ok := lastValid[k]; ok && v > e.off || i < procNext[p] && e.off < aggNext[p] {
					e.gone = true
				}
			}
		default: // the topic is recreated: every partition starts again
			// after the services drained what they held.
			for q := range nParts {
				for ; procNext[q] < len(logs[q]); procNext[q]++ {
					process(q, logs[q][procNext[q]])
				}
			}
			a.inc++
			for q := range nParts {
				logs[q], procNext[q] = nil, 0
			}
			for q := range nParts {
				load(q)
			}
		}
	}
	// Everything caught up; perhaps a last restart.
	for p := range nParts {
		for ; procNext[p] < len(logs[p]); procNext[p]++ {
			process(p, logs[p][procNext[p]])
		}
		for _, e := range logs[p] {
			if e.off >= aggNext[p] && !e.gone {
				add(p, e)
			}
		}
		flush(p, false)
		if rng.IntN(4) == 0 {
			load(p)
			flush(p, false)
		}
	}
	final := map[string]map[string]string{}
	for p := range rows {
		for id, r := range rows[p] {
			final[id] = r.texts
		}
	}
	want := expected(pl, final)
	for i := range pl.aggs {
		got := tb.view(pl, i)
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			return fmt.Errorf("%s: view %q, computed from the rows FINAL %q", pl.aggs[i].Name, fmt.Sprint(got), fmt.Sprint(want[i]))
		}
	}
	return nil
}

// The text the aggregator takes for a missing By value is what the
// processor stores for it (schemas.Vector), for every type a By column
// can have.
func TestMissingTextIsWhatTheTableHolds(t *testing.T) {
	for _, ct := range schemas.ColumnTypes {
		if ct == schemas.Float64 { // never a By column
			continue
		}
		c := schemas.Column{Name: "c", Type: ct}
		missing, text := schemas.NewVector(c), schemas.NewVector(c)
		if err := missing.Append(nil); err != nil {
			t.Fatal(err)
		}
		if err := text.Append(missingText(ct)); err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		if fmt.Sprint(missing.Values()) != fmt.Sprint(text.Values()) {
			t.Errorf("%s: a missing value is stored as %v, the aggregator counts it as %q (%v)", ct, missing.Values(), missingText(ct), text.Values())
		}
	}
}

// Groups of several texts never run together, whatever bytes they hold.
func TestGroupEncoding(t *testing.T) {
	lists := [][]string{{"a", "b"}, {"ab", ""}, {"", "ab"}, {"\x01a", "b"}, {"\x01", "ab"}, {"a\x01", "b"}, {strings.Repeat("x", 300), "y"}, {"a", "b", "c"}, {"a", "bc", ""}}
	seen := map[string][]string{}
	for _, l := range lists {
		var g []byte
		for i, s := range l {
			g = appendGroupText(g, i, len(l), []byte(s))
		}
		var back []string
		for _, b := range splitGroup(g, len(l), nil) {
			back = append(back, string(b))
		}
		if !slices.Equal(back, l) {
			t.Errorf("%q: read back as %q", l, back)
		}
		if other, ok := seen[string(g)+strconv.Itoa(len(l))]; ok {
			t.Errorf("%q and %q are one group", l, other)
		}
		seen[string(g)+strconv.Itoa(len(l))] = l
	}
}
