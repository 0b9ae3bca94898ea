package synth

import (
	"bufio"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"time"
)

// This file writes the two declared record types that ship with skuflow
// besides products: events, keyed by (id, ts), and plays, which have no key
// and are summed per (song, date). Like Write, both are reproducible from a
// seed and run in constant memory whatever the number of rows.

// EventOptions say what events file to generate.
type EventOptions struct {
	Rows int64
	// Format is json (the wrapped {"records": [...]} shape real event
	// files have, one record a line), ndjson or csv (header id,data,ts).
	Format string
	// DupRate is the share of rows that repeat an earlier (id, ts)
	// unchanged (a replayed record).
	DupRate float64
	// UpdateRate is the share of rows that repeat an earlier (id, ts) with
	// new data (a correction: the later data wins).
	UpdateRate float64
	Seed       uint64
}

// EventStats say what was written.
type EventStats struct {
	Rows    int64 `json:"rows"`
	Keys    int64 `json:"distinct_keys"`
	Dups    int64 `json:"repeated_rows"`
	Updates int64 `json:"updated_rows"`
	Bytes   int64 `json:"bytes"`
}

// sameIDShare is the share of new keys that take the id of a recent event
// at a later time. Without them every id would have one ts and the id alone
// would pass for the key; with them a loader that keys on id only is wrong.
const sameIDShare = 0.25

// eventsStart is where event times begin; the seed moves it up to a year on.
var eventsStart = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)

// tsLayout is RFC 3339 with milliseconds; times are UTC, so it ends in Z.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

type event struct {
	id   int64
	ts   int64 // Unix milliseconds
	data eventData
}

// eventData is a short string of capital letters, held by value so that a
// ring of events is one fixed block of memory and two can be compared.
type eventData struct {
	n int
	b [6]byte
}

func newEventData(rng *rand.Rand) eventData {
	d := eventData{n: 3 + rng.IntN(4)}
	for i := range d.n {
		d.b[i] = byte('A' + rng.IntN(26))
	}
	return d
}

// WriteEvents writes an events file to w.
//
// Every new key takes a time later than all before it, so (id, ts) is
// unique by construction and nothing needs to remember the keys written;
// repeats and updates pick from the last recent new keys, as Write does.
func WriteEvents(w io.Writer, o EventOptions) (EventStats, error) {
	switch o.Format {
	case "json", "ndjson", "csv":
	default:
		return EventStats{}, fmt.Errorf("unknown format %q: want json, ndjson or csv", o.Format)
	}
	if o.Rows < 0 || o.DupRate < 0 || o.UpdateRate < 0 || o.DupRate+o.UpdateRate > 1 {
		return EventStats{}, fmt.Errorf("rows must be >= 0 and dup-rate + update-rate between 0 and 1")
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x2545f4914f6cdd1d))
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	var (
		st     EventStats
		ring   recentRing[event]
		buf    []byte
		first  = true
		lastID = int64(10000)
		now    = eventsStart.UnixMilli() + int64(o.Seed%365)*86_400_000 + rng.Int64N(86_400_000)
	)
	switch o.Format {
	case "json":
		bw.WriteString("{\"records\":[\n")
	case "csv":
		bw.WriteString("id,data,ts\n")
	}
	for range o.Rows {
		var e event
		roll := rng.Float64()
		switch {
		case ring.len() > 0 && roll < o.DupRate:
			e = *ring.pick(rng)
			st.Dups++
		case ring.len() > 0 && roll < o.DupRate+o.UpdateRate:
			r := ring.pick(rng)
			// Draw until the data differs, so that an update is never a
			// replay in disguise and the stats can be checked from the file.
			d := newEventData(rng)
			for d == r.data {
				d = newEventData(rng)
			}
			r.data = d
			e = *r
			st.Updates++
		default:
			// Up to two seconds after the last new key, at least 1 ms.
			now += 1 + rng.Int64N(2000)
			if ring.len() > 0 && rng.Float64() < sameIDShare {
				e.id = ring.pick(rng).id
			} else {
				// Ids grow with gaps, so they look issued, not counted.
				lastID += 1 + rng.Int64N(50)
				e.id = lastID
			}
			e.ts = now
			e.data = newEventData(rng)
			st.Keys++
			ring.add(e)
		}
		st.Rows++
		buf = appendEvent(buf[:0], o.Format, e, first)
		first = false
		if _, err := bw.Write(buf); err != nil {
			return st, err
		}
	}
	if o.Format == "json" {
		bw.WriteString("\n]}\n")
	}
	err := bw.Flush()
	st.Bytes = cw.n
	return st, err
}

func appendEvent(b []byte, format string, e event, first bool) []byte {
	ts := time.UnixMilli(e.ts).UTC()
	if format == "csv" {
		b = strconv.AppendInt(b, e.id, 10)
		b = append(b, ',')
		b = append(b, e.data.b[:e.data.n]...)
		b = append(b, ',')
		b = ts.AppendFormat(b, tsLayout)
		return append(b, '\n')
	}
	if format == "json" && !first {
		b = append(b, ",\n"...)
	}
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, e.id, 10)
	b = append(b, `","data":"`...)
	b = append(b, e.data.b[:e.data.n]...)
	b = append(b, `","ts":"`...)
	b = ts.AppendFormat(b, tsLayout)
	b = append(b, `"}`...)
	if format == "ndjson" {
		b = append(b, '\n')
	}
	return b
}

// PlayOptions say what plays file to generate.
type PlayOptions struct {
	Rows int64
	// Format is csv (header song,date,plays; the default when empty),
	// ndjson or json (an array), with plays a JSON number.
	Format string
	// Songs is how many distinct songs there are; 0 means one per twenty
	// rows, at least 10, so that a song has plays on several lines.
	Songs int
	// Days is how many consecutive dates plays fall on; 0 means 7, a week
	// of charts.
	Days int
	Seed uint64
}

// PlayStats say what was written.
type PlayStats struct {
	Rows int64 `json:"rows"`
	// Groups is the number of distinct (song, date) pairs: the rows of the
	// aggregate.
	Groups int64 `json:"distinct_groups"`
	// Plays is the sum of plays over all rows.
	Plays int64 `json:"total_plays"`
	Bytes int64 `json:"bytes"`
}

// Bounds that keep songs × days, and the dates, in range.
const (
	maxSongs = 1_000_000_000
	maxDays  = 36_500
)

// playsStart is the first date of plays; the seed moves it up to two years
// on.
var playsStart = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)

// WritePlays writes a plays file to w.
//
// Each line is a (song, date) group and a number of plays. The groups are
// numbered 0..songs×days-1, and groupOrder fixes the order in which they
// first appear; a line either brings in the next group in that order or
// repeats one of those already in, so the groups written so far are always
// the first `used` of the order. That counter is all the state there is.
func WritePlays(w io.Writer, o PlayOptions) (PlayStats, error) {
	if o.Format == "" {
		o.Format = "csv"
	}
	switch o.Format {
	case "json", "ndjson", "csv":
	default:
		return PlayStats{}, fmt.Errorf("unknown format %q: want csv, ndjson or json", o.Format)
	}
	if o.Rows < 0 || o.Songs < 0 || o.Songs > maxSongs || o.Days < 0 || o.Days > maxDays {
		return PlayStats{}, fmt.Errorf("rows must be >= 0, songs between 0 and %d and days between 0 and %d", maxSongs, maxDays)
	}
	songs := o.Songs
	if songs == 0 {
		songs = int(max(o.Rows/20, 10))
	}
	days := o.Days
	if days == 0 {
		days = 7
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	start := playsStart.AddDate(0, 0, int(o.Seed%730))
	groups := uint64(songs) * uint64(days)
	order := newGroupOrder(groups, rng)

	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	var (
		st    PlayStats
		used  uint64 // groups written so far: order.at(0..used-1)
		buf   []byte
		title []byte
		first = true
	)
	switch o.Format {
	case "json":
		bw.WriteString("[\n")
	case "csv":
		bw.WriteString("song,date,plays\n")
	}
	for range o.Rows {
		// Bring in a new group with the chance that spreads the groups
		// still to come evenly over the rows still to write: every group
		// appears once the rows are at least as many as the groups.
		left := uint64(o.Rows - st.Rows)
		var g uint64
		if fresh := groups - used; used == 0 || fresh > 0 && rng.Uint64N(left) < fresh {
			g = order.at(used)
			used++
		} else {
			g = order.at(rng.Uint64N(used))
		}
		song, day := g/uint64(days), int(g%uint64(days))
		// One song in ten is a hit, played a hundred times as much.
		plays := rng.Int64N(20)
		if songHash(song, o.Seed)%10 == 0 {
			plays = rng.Int64N(2000)
		}
		st.Rows++
		st.Plays += plays
		title = appendTitle(title[:0], song, o.Seed)
		buf = appendPlay(buf[:0], o.Format, title, start.AddDate(0, 0, day), plays, first)
		first = false
		if _, err := bw.Write(buf); err != nil {
			st.Groups = int64(used)
			return st, err
		}
	}
	if o.Format == "json" {
		bw.WriteString("\n]\n")
	}
	st.Groups = int64(used)
	err := bw.Flush()
	st.Bytes = cw.n
	return st, err
}

// groupOrder is a shuffle of 0..n-1 that needs no memory. mix is a
// bijection on the numbers of w bits (adding a key, multiplying by an odd
// number and xor-ing with the high half can each be undone, mod 2^w), and
// applying it again until the result falls below n (cycle walking) makes a
// bijection on 0..n-1; n is over half of 2^w, so that is two steps on
// average. An affine order (a·x + b mod n) would do with less, but writes
// dates and songs in plain view stepping one by one.
type groupOrder struct {
	n, mask, key uint64
	shift        int
}

func newGroupOrder(n uint64, rng *rand.Rand) groupOrder {
	w := max(bits.Len64(n-1), 1)
	return groupOrder{n: n, mask: 1<<w - 1, shift: (w + 1) / 2, key: rng.Uint64()}
}

func (p groupOrder) mix(x uint64) uint64 {
	for range 3 {
		x = (x + p.key) & p.mask
		x = x * 0x9e3779b97f4a7c15 & p.mask
		x ^= x >> p.shift
	}
	return x
}

// at is the x-th group to appear.
func (p groupOrder) at(x uint64) uint64 {
	x = p.mix(x)
	for x >= p.n {
		x = p.mix(x)
	}
	return x
}

func songHash(song, seed uint64) uint64 {
	return (song ^ seed) * 0x9e3779b97f4a7c15 >> 32
}

func appendPlay(b []byte, format string, title []byte, date time.Time, plays int64, first bool) []byte {
	if format == "csv" {
		b = appendCSVField(b, title)
		b = append(b, ',')
		b = date.AppendFormat(b, time.DateOnly)
		b = append(b, ',')
		b = strconv.AppendInt(b, plays, 10)
		return append(b, '\n')
	}
	if format == "json" && !first {
		b = append(b, ",\n"...)
	}
	b = append(b, `{"song":`...)
	b = appendJSONString(b, title)
	b = append(b, `,"date":"`...)
	b = date.AppendFormat(b, time.DateOnly)
	b = append(b, `","plays":`...)
	b = strconv.AppendInt(b, plays, 10)
	b = append(b, '}')
	if format == "ndjson" {
		b = append(b, '\n')
	}
	return b
}

// appendTitle writes the title of song i: an adjective and a noun, then a
// number once the pairs run out, so that every song has its own title. The
// seed shifts the word lists. One title in ten is dressed as real ones are
// ("Oh, ...", a featured artist, a word in quotes); the dressings cannot be
// mistaken for one another or for a bare title, so titles stay distinct.
func appendTitle(b []byte, i, seed uint64) []byte {
	na, nn := uint64(len(songAdjectives)), uint64(len(songNouns))
	dress := songHash(i, seed>>1) % 30
	switch dress {
	case 0, 1:
		b = append(b, "Oh, "...)
	case 2:
		b = append(b, `Say "`...)
	}
	// The noun moves with the adjective, so that a few songs do not all
	// share one noun; from the adjective and the noun, i/na mod nn is
	// known again, so i ↦ (adjective, noun, number) stays one-to-one.
	adj := (i%na + seed%na) % na
	b = append(b, songAdjectives[adj]...)
	b = append(b, ' ')
	b = append(b, songNouns[(adj+i/na%nn+(seed>>8)%nn)%nn]...)
	if k := i / (na * nn); k > 0 {
		b = append(b, ' ')
		b = strconv.AppendUint(b, k+1, 10)
	}
	switch dress {
	case 2:
		b = append(b, '"')
	case 3:
		h := songHash(i, seed)
		b = append(b, " (feat. "...)
		b = append(b, firstNames[h%uint64(len(firstNames))]...)
		b = append(b, ' ')
		b = append(b, lastNames[(h>>16)%uint64(len(lastNames))]...)
		b = append(b, ')')
	}
	return b
}

// appendCSVField writes s as one CSV field, quoted when it holds a comma or
// a quote (titles hold no line breaks).
func appendCSVField(b, s []byte) []byte {
	quote := false
	for _, c := range s {
		if c == ',' || c == '"' {
			quote = true
			break
		}
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for _, c := range s {
		if c == '"' {
			b = append(b, '"')
		}
		b = append(b, c)
	}
	return append(b, '"')
}

// appendJSONString writes s as a JSON string; titles are printable ASCII,
// so only quotes and backslashes need escaping.
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}

var songAdjectives = []string{
	"Midnight", "Golden", "Broken", "Electric", "Summer", "Lonely", "Wild", "Silver", "Neon", "Velvet",
	"Crimson", "Paper", "Hollow", "Sweet", "Blue", "Burning", "Silent", "Falling", "Endless", "Lucky",
	"Restless", "Sunday", "Cherry", "Fading", "Little", "Dancing", "Lost", "Northern", "Glass", "Wicked",
	"Secret", "Tender", "Frozen", "Runnin'", "Diamond", "Borrowed", "Painted", "Sleepless", "Heavy", "Easy",
}

var songNouns = []string{
	"Heart", "Highway", "Rain", "Dreams", "Fire", "Lights", "River", "Sky", "Road", "Kiss",
	"Nights", "Love", "Girl", "Eyes", "Moon", "Waves", "Ghost", "Train", "Morning", "Letters",
	"Shadows", "Thunder", "Garden", "Stars", "Radio", "Heartbeat", "Lullaby", "Hometown", "Skin", "Rodeo",
	"Feelin'", "Daydream", "Wire", "Echoes", "Satellite", "Summertime", "Avenue", "Blues", "Parade", "Tears",
}
