package synth

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

type eventRecord struct {
	ID   string `json:"id"`
	Data string `json:"data"`
	TS   string `json:"ts"`
}

// decodeEvents reads back what WriteEvents wrote, with the standard
// library's decoders.
func decodeEvents(t *testing.T, format string, data []byte) []eventRecord {
	t.Helper()
	var out []eventRecord
	switch format {
	case "json":
		var file struct {
			Records []eventRecord `json:"records"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			t.Fatalf("json: %v", err)
		}
		out = file.Records
	case "ndjson":
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var e eventRecord
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("ndjson line %q: %v", sc.Text(), err)
			}
			out = append(out, e)
		}
	case "csv":
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatalf("csv: %v", err)
		}
		if strings.Join(rows[0], ",") != "id,data,ts" {
			t.Fatalf("csv header %v", rows[0])
		}
		for _, r := range rows[1:] {
			out = append(out, eventRecord{r[0], r[1], r[2]})
		}
	}
	return out
}

// eventCounts recomputes EventStats from the records: a key seen before
// with the same data is a repeat, with other data an update.
func eventCounts(events []eventRecord) (st EventStats, ids int) {
	type key struct{ id, ts string }
	last := map[key]string{}
	idSet := map[string]bool{}
	for _, e := range events {
		k := key{e.ID, e.TS}
		prev, seen := last[k]
		switch {
		case !seen:
			st.Keys++
		case prev == e.Data:
			st.Dups++
		default:
			st.Updates++
		}
		last[k] = e.Data
		idSet[e.ID] = true
		st.Rows++
	}
	return st, len(idSet)
}

func checkEvent(t *testing.T, e eventRecord) {
	t.Helper()
	if e.ID == "" || strings.Trim(e.ID, "0123456789") != "" {
		t.Fatalf("id %q is not a string of digits", e.ID)
	}
	if len(e.Data) < 3 || len(e.Data) > 6 || strings.Trim(e.Data, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		t.Fatalf("data %q is not a short string of capitals", e.Data)
	}
	ts, err := time.Parse(time.RFC3339Nano, e.TS)
	if err != nil || len(e.TS) != len("2019-04-23T17:25:43.111Z") || !strings.HasSuffix(e.TS, "Z") {
		t.Fatalf("ts %q is not an RFC 3339 UTC time with milliseconds: %v", e.TS, err)
	}
	if ts.Year() < 2019 || ts.Year() > 2030 {
		t.Fatalf("ts %q is out of the expected years", e.TS)
	}
}

func TestSynthEventsFormatsAgree(t *testing.T) {
	var first []eventRecord
	for _, format := range []string{"json", "ndjson", "csv"} {
		var buf bytes.Buffer
		st, err := WriteEvents(&buf, EventOptions{Rows: 3000, Format: format, DupRate: 0.1, UpdateRate: 0.1, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		got := decodeEvents(t, format, buf.Bytes())
		if int64(len(got)) != st.Rows || st.Rows != 3000 || st.Bytes != int64(buf.Len()) {
			t.Fatalf("%s: decoded %d rows, stats %+v, %d bytes", format, len(got), st, buf.Len())
		}
		for _, e := range got {
			checkEvent(t, e)
		}
		if first == nil {
			first = got
			continue
		}
		for i := range got {
			if got[i] != first[i] {
				t.Fatalf("%s row %d = %+v, json gave %+v", format, i, got[i], first[i])
			}
		}
	}
}

func TestSynthEventsJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if _, err := WriteEvents(&buf, EventOptions{Rows: 3, Format: "json", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 5 || lines[0] != `{"records":[` || lines[4] != "]}" {
		t.Fatalf("want {\"records\":[ then one record a line, got\n%s", buf.String())
	}
	for _, rows := range []int64{0, 1} {
		buf.Reset()
		if _, err := WriteEvents(&buf, EventOptions{Rows: rows, Format: "json", Seed: 1}); err != nil {
			t.Fatal(err)
		}
		if got := decodeEvents(t, "json", buf.Bytes()); int64(len(got)) != rows {
			t.Fatalf("%d rows: decoded %d", rows, len(got))
		}
	}
}

func TestSynthEventsStats(t *testing.T) {
	const rows = 20000
	var buf bytes.Buffer
	st, err := WriteEvents(&buf, EventOptions{Rows: rows, Format: "ndjson", DupRate: 0.2, UpdateRate: 0.1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, ids := eventCounts(decodeEvents(t, "ndjson", buf.Bytes()))
	got.Bytes = st.Bytes
	if got != st {
		t.Fatalf("recomputed %+v, stats say %+v", got, st)
	}
	// Some keys share an id with another time: the id alone is no key.
	if share := 1 - float64(ids)/float64(st.Keys); share < 0.15 || share > 0.35 {
		t.Errorf("%d ids for %d keys: %.2f of keys reuse an id, want about %.2f", ids, st.Keys, share, sameIDShare)
	}
	for name, rate := range map[string]float64{"dup": float64(got.Dups) / rows, "update": float64(got.Updates) / rows} {
		want := map[string]float64{"dup": 0.2, "update": 0.1}[name]
		if rate < want-0.02 || rate > want+0.02 {
			t.Errorf("%s rate %.3f, want about %.2f", name, rate, want)
		}
	}
}

type playRecord struct {
	Song  string `json:"song"`
	Date  string `json:"date"`
	Plays int64  `json:"plays"`
}

// decodePlays reads back what WritePlays wrote, with the standard library's
// decoders.
func decodePlays(t *testing.T, format string, data []byte) []playRecord {
	t.Helper()
	var out []playRecord
	switch format {
	case "json":
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil {
			t.Fatalf("json: %v", err)
		}
	case "ndjson":
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var p playRecord
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatalf("ndjson line %q: %v", sc.Text(), err)
			}
			out = append(out, p)
		}
	case "csv":
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = 3
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatalf("csv: %v", err)
		}
		if strings.Join(rows[0], ",") != "song,date,plays" {
			t.Fatalf("csv header %v", rows[0])
		}
		for _, row := range rows[1:] {
			var p playRecord
			if err := json.Unmarshal([]byte(row[2]), &p.Plays); err != nil {
				t.Fatalf("csv plays %q: %v", row[2], err)
			}
			p.Song, p.Date = row[0], row[1]
			out = append(out, p)
		}
	}
	return out
}

// playSums is the aggregate: plays per (song, date).
func playSums(plays []playRecord) map[[2]string]int64 {
	sums := map[[2]string]int64{}
	for _, p := range plays {
		sums[[2]string{p.Song, p.Date}] += p.Plays
	}
	return sums
}

func TestSynthPlaysFormatsAgree(t *testing.T) {
	var first []playRecord
	for _, format := range []string{"csv", "ndjson", "json"} {
		var buf bytes.Buffer
		st, err := WritePlays(&buf, PlayOptions{Rows: 5000, Format: format, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		got := decodePlays(t, format, buf.Bytes())
		if int64(len(got)) != st.Rows || st.Rows != 5000 || st.Bytes != int64(buf.Len()) {
			t.Fatalf("%s: decoded %d rows, stats %+v, %d bytes", format, len(got), st, buf.Len())
		}
		var total int64
		for _, p := range got {
			if p.Plays < 0 {
				t.Fatalf("negative plays %+v", p)
			}
			total += p.Plays
		}
		if sums := playSums(got); int64(len(sums)) != st.Groups || total != st.Plays {
			t.Fatalf("%s: parsed %d groups and %d plays, stats %+v", format, len(sums), total, st)
		}
		if first == nil {
			first = got
			continue
		}
		for i := range got {
			if got[i] != first[i] {
				t.Fatalf("%s row %d = %+v, csv gave %+v", format, i, got[i], first[i])
			}
		}
	}
}

func TestSynthPlaysShape(t *testing.T) {
	var buf bytes.Buffer
	st, err := WritePlays(&buf, PlayOptions{Rows: 20000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "song,date,plays\n") {
		t.Fatal("csv is the default format")
	}
	// Quoting is exercised: some titles hold commas, some quotes.
	if !strings.Contains(buf.String(), `"Oh, `) || !strings.Contains(buf.String(), `""`) {
		t.Error("no quoted title with a comma or a quote in 20000 rows")
	}
	plays := decodePlays(t, "csv", buf.Bytes())
	songs, dates := map[string]bool{}, map[string]bool{}
	for _, p := range plays {
		songs[p.Song] = true
		dates[p.Date] = true
	}
	// Defaults: rows/20 songs and 7 dates, all present with this many rows,
	// so every (song, date) group is there and each on several lines.
	if len(songs) != 1000 || len(dates) != 7 || st.Groups != 7000 {
		t.Fatalf("%d songs, %d dates, %d groups; want 1000, 7, 7000", len(songs), len(dates), st.Groups)
	}
	var sorted []string
	for d := range dates {
		sorted = append(sorted, d)
	}
	slices.Sort(sorted)
	lo, err1 := time.Parse(time.DateOnly, sorted[0])
	hi, err2 := time.Parse(time.DateOnly, sorted[len(sorted)-1])
	if err1 != nil || err2 != nil || hi.Sub(lo) != 6*24*time.Hour {
		t.Fatalf("dates %v are not 7 consecutive days (%v, %v)", sorted, err1, err2)
	}
	// The aggregate has work to do: the busiest group is on many lines.
	lines := map[[2]string]int{}
	busiest := 0
	for _, p := range plays {
		k := [2]string{p.Song, p.Date}
		lines[k]++
		busiest = max(busiest, lines[k])
	}
	if busiest < 5 {
		t.Errorf("the busiest (song, date) is on %d lines, want several", busiest)
	}
}

// TestSynthPlaysGroups checks the group count with explicit songs and days,
// with more rows than groups (all appear) and fewer (each row a new one).
func TestSynthPlaysGroups(t *testing.T) {
	for _, c := range []struct {
		o    PlayOptions
		want int64
	}{
		{PlayOptions{Rows: 1000, Songs: 30, Days: 3}, 90},
		{PlayOptions{Rows: 50, Songs: 30, Days: 3}, 50},
		{PlayOptions{Rows: 500, Songs: 1, Days: 1}, 1},
		{PlayOptions{Rows: 0}, 0},
		{PlayOptions{Rows: 100}, 70}, // default 10 songs at least, 7 days
	} {
		var buf bytes.Buffer
		c.o.Format, c.o.Seed = "ndjson", 5
		st, err := WritePlays(&buf, c.o)
		if err != nil {
			t.Fatal(err)
		}
		sums := playSums(decodePlays(t, "ndjson", buf.Bytes()))
		if st.Groups != c.want || int64(len(sums)) != st.Groups {
			t.Errorf("%+v: stats say %d groups, file has %d, want %d", c.o, st.Groups, len(sums), c.want)
		}
	}
}

// TestSynthSongTitlesDistinct checks that song numbers map to distinct
// titles, past the point where adjective and noun pairs run out.
func TestSynthSongTitlesDistinct(t *testing.T) {
	n := uint64(3 * len(songAdjectives) * len(songNouns))
	for _, seed := range []uint64{0, 1, 977, 1 << 63, math.MaxUint64} {
		seen := map[string]uint64{}
		for i := range n {
			title := string(appendTitle(nil, i, seed))
			if j, dup := seen[title]; dup {
				t.Fatalf("seed %d: songs %d and %d are both %q", seed, j, i, title)
			}
			seen[title] = i
		}
	}
}

func TestSynthTypesAreReproducible(t *testing.T) {
	events := func(seed uint64) []byte {
		var b bytes.Buffer
		WriteEvents(&b, EventOptions{Rows: 500, Format: "csv", Seed: seed, DupRate: 0.2, UpdateRate: 0.2})
		return b.Bytes()
	}
	plays := func(seed uint64) []byte {
		var b bytes.Buffer
		WritePlays(&b, PlayOptions{Rows: 500, Format: "csv", Seed: seed})
		return b.Bytes()
	}
	for name, gen := range map[string]func(uint64) []byte{"events": events, "plays": plays} {
		if !bytes.Equal(gen(3), gen(3)) || bytes.Equal(gen(3), gen(4)) {
			t.Errorf("%s: same seed must give the same file, another seed another", name)
		}
	}
}

func TestSynthTypesRejectBadOptions(t *testing.T) {
	for _, o := range []EventOptions{{Format: "xml"}, {Format: ""}, {Format: "csv", DupRate: 0.7, UpdateRate: 0.5}, {Format: "csv", Rows: -1}, {Format: "csv", UpdateRate: -0.1}} {
		if _, err := WriteEvents(&bytes.Buffer{}, o); err == nil {
			t.Errorf("WriteEvents(%+v) gave no error", o)
		}
	}
	for _, o := range []PlayOptions{{Format: "xml"}, {Rows: -1}, {Songs: -1}, {Days: -1}, {Days: maxDays + 1}} {
		if _, err := WritePlays(&bytes.Buffer{}, o); err == nil {
			t.Errorf("WritePlays(%+v) gave no error", o)
		}
	}
}

// TestSynthTypesConstantMemory checks that the allocations do not grow with
// the rows: ten times the rows, about the same number of allocations.
func TestSynthTypesConstantMemory(t *testing.T) {
	allocs := func(write func(rows int64)) (small, big float64) {
		small = testing.AllocsPerRun(2, func() { write(20_000) })
		big = testing.AllocsPerRun(2, func() { write(200_000) })
		return small, big
	}
	for name, write := range map[string]func(int64){
		"events": func(rows int64) {
			WriteEvents(io.Discard, EventOptions{Rows: rows, Format: "ndjson", DupRate: 0.1, UpdateRate: 0.1, Seed: 1})
		},
		"plays": func(rows int64) {
			WritePlays(io.Discard, PlayOptions{Rows: rows, Format: "csv", Seed: 1})
		},
	} {
		if small, big := allocs(write); big > small+10 {
			t.Errorf("%s: %.0f allocations for 20000 rows, %.0f for 200000", name, small, big)
		}
	}
}

func BenchmarkWriteEvents(b *testing.B) {
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		st, _ := WriteEvents(io.Discard, EventOptions{Rows: 100_000, Format: "ndjson", DupRate: 0.1, UpdateRate: 0.1, Seed: 1})
		n = st.Bytes
	}
	b.SetBytes(n)
}

func BenchmarkWritePlays(b *testing.B) {
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		st, _ := WritePlays(io.Discard, PlayOptions{Rows: 100_000, Format: "csv", Seed: 1})
		n = st.Bytes
	}
	b.SetBytes(n)
}

// TestSynthGroupOrderIsAPermutation checks that the order of groups visits
// each of 0..n-1 once, for sizes on both sides of powers of two.
func TestSynthGroupOrderIsAPermutation(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 7, 64, 65, 1000, 4096} {
		p := newGroupOrder(n, rand.New(rand.NewPCG(n, 1)))
		seen := make([]bool, n)
		for x := range n {
			g := p.at(x)
			if g >= n || seen[g] {
				t.Fatalf("n=%d: at(%d) = %d, out of range or seen before", n, x, g)
			}
			seen[g] = true
		}
	}
}
