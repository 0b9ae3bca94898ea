package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
	"skuflow/jobs"
	"skuflow/schemas"
)

// newStore migrates a fresh ClickHouse 18.16 and returns a Store on it.
func newStore(t *testing.T) (*jobs.Store, clickhouse.Conn, *testenv.ClickHouseServer) {
	t.Helper()
	ch := testenv.ClickHouse(t)
	conn, err := clickhouse.Open(config.ClickHouse{Addr: ch.TCPAddr, Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := clickhouse.Migrate(ctx, conn, "skuflow", schemas.Products); err != nil {
		t.Fatal(err)
	}
	return jobs.NewStore(conn, "skuflow"), conn, ch
}

// job returns a producing job started at start.
func job(start time.Time, sha string) *jobs.Job {
	return &jobs.Job{ID: jobs.NewID(start), Source: "in/" + sha + ".ndjson", Size: 100, SHA256: sha, Format: "ndjson",
		Type: "products", Topic: "products", Origin: "push", State: jobs.Producing, Started: start}
}

func save(t *testing.T, s *jobs.Store, j *jobs.Job) {
	t.Helper()
	if err := s.Save(context.Background(), j); err != nil {
		t.Fatal(err)
	}
}

// The store against the real ClickHouse 18.16: reads see a job's newest
// version, Loaded only a job that put its whole input on the topic,
// Recent the newest jobs first, Errors a job's rejected records in input
// order.
func TestStore(t *testing.T) {
	s, _, ch := newStore(t)
	ctx := context.Background()
	// Three jobs started within one second, as one loader's pushes are.
	base := time.Now().UTC().Truncate(time.Second).Add(100 * time.Millisecond)

	a := job(base, "aaa")
	save(t, s, a)
	a.Read = 5 // a heartbeat
	save(t, s, a)
	a.Read, a.Produced, a.Rejected = 7, 6, 1
	a.State, a.ProducedAt, a.ProduceSeconds = jobs.Produced, base.Add(time.Second), 1.25
	a.EndOffsets = map[int32]int64{0: 4, 3: 9}
	save(t, s, a)

	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != jobs.Produced || got.Read != 7 || got.Produced != 6 || got.Rejected != 1 || got.Size != 100 ||
		got.SHA256 != "aaa" || got.Type != "products" || got.Source != a.Source || got.Format != "ndjson" || got.Origin != "push" ||
		!maps.Equal(got.EndOffsets, a.EndOffsets) || got.ProduceSeconds != 1.25 ||
		!got.Started.Equal(base.Truncate(time.Second)) || !got.ProducedAt.Equal(a.ProducedAt.Truncate(time.Second)) ||
		!got.FinishedAt.IsZero() {
		t.Fatalf("Get: %+v, saved %+v", got, a)
	}
	if n := ch.Query(t, "SELECT count() FROM skuflow.ingest_jobs WHERE id = '"+a.ID+"'"); n != "3" && n != "1" {
		t.Fatalf("%s rows for 3 saves", n)
	}

	// Loaded: only produced or done, and only by the newest version.
	if l, err := s.Loaded(ctx, "aaa", "products"); err != nil || l == nil || l.ID != a.ID {
		t.Fatalf("Loaded(aaa) = %+v, %v; want job %s", l, err, a.ID)
	}
	// The same content loaded onto another type's topic is not loaded here.
	if l, err := s.Loaded(ctx, "aaa", "events"); err != nil || l != nil {
		t.Fatalf("Loaded(aaa) on events = %+v, %v; want none", l, err)
	}
	b := job(base.Add(100*time.Millisecond), "bbb")
	save(t, s, b)
	if l, err := s.Loaded(ctx, "bbb", "products"); err != nil || l != nil {
		t.Fatalf("Loaded of a producing job: %+v, %v", l, err)
	}
	b.State, b.Error, b.FinishedAt = jobs.Failed, "broken", base.Add(2*time.Second)
	save(t, s, b)
	if l, err := s.Loaded(ctx, "bbb", "products"); err != nil || l != nil {
		t.Fatalf("Loaded of a failed job: %+v, %v", l, err)
	}
	// A version that stops a job blocking is the one that counts: a
	// produced job recorded as failed afterwards no longer refuses.
	d := job(base.Add(150*time.Millisecond), "ddd")
	d.State = jobs.Produced
	save(t, s, d)
	d.State, d.Error = jobs.Failed, "recorded as failed later"
	save(t, s, d)
	if l, err := s.Loaded(ctx, "ddd", "products"); err != nil || l != nil {
		t.Fatalf("Loaded found an older version of job %s: %+v, %v", d.ID, l, err)
	}

	// Another Store (another loader) marks a done: its version wins, and
	// the newest of two loading jobs of the same content is the one named.
	c := job(base.Add(200*time.Millisecond), "aaa")
	c.State = jobs.Produced
	save(t, s, c)
	if err := jobs.NewStore(s2conn(t, ch), "skuflow").MarkDone(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, a.ID); err != nil || got.State != jobs.Done || got.FinishedAt.IsZero() || got.LoadSeconds <= 0 {
		t.Fatalf("after MarkDone: %+v, %v", got, err)
	}
	if l, err := s.Loaded(ctx, "aaa", "products"); err != nil || l == nil || l.ID != c.ID {
		t.Fatalf("Loaded(aaa) = %+v, %v; want the newest job %s", l, err, c.ID)
	}

	// Recent: newest first, within the same second too.
	list, err := s.Recent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, j := range list {
		order = append(order, j.SHA256+":"+string(j.State))
	}
	if want := "aaa:produced ddd:failed bbb:failed aaa:done"; strings.Join(order, " ") != want {
		t.Fatalf("Recent: %s, want %s", strings.Join(order, " "), want)
	}
	if list, err := s.Recent(ctx, 2); err != nil || len(list) != 2 || list[0].ID != c.ID || list[1].ID != d.ID {
		t.Fatalf("Recent(2): %v, %v", list, err)
	}

	if _, err := s.Get(ctx, "20200101T000000Z-000000000000"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Get of a missing job: %v", err)
	}
}

// s2conn opens a second connection pool to ch.
func s2conn(t *testing.T, ch *testenv.ClickHouseServer) clickhouse.Conn {
	t.Helper()
	conn, err := clickhouse.Open(config.ClickHouse{Addr: ch.TCPAddr, Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Errors returns a job's rows in input order (line, then place), with the
// total, and nobody else's; raw records are cut to MaxRawBytes.
func TestStoreErrors(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	huge := strings.Repeat("r", clickhouse.MaxRawBytes+100)
	rows := []clickhouse.ErrorRow{
		{Job: "j1", Source: "f", Line: 7, Stage: "validate", Reason: "seven", Raw: []byte("{7}"), Offset: 70},
		{Job: "j1", Source: "f", Line: 2, Stage: "decode", Reason: "two, second", Raw: []byte("{2b}"), Offset: 25},
		{Job: "j2", Source: "g", Line: 1, Stage: "decode", Reason: "other job", Raw: []byte("{}"), Offset: 0},
		{Job: "j1", Source: "f", Line: 2, Stage: "decode", Reason: "two, first", Raw: []byte("{2a}"), Offset: 20},
		{Job: "j1", Source: "f", Line: 5, Stage: "validate", Reason: "huge", Raw: []byte(huge), Offset: 50},
	}
	if err := s.SaveErrors(ctx, rows[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveErrors(ctx, rows[2:]); err != nil {
		t.Fatal(err)
	}
	got, total, err := s.Errors(ctx, "j1", 100)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range got {
		reasons = append(reasons, fmt.Sprintf("%d@%d:%s", e.Line, e.Offset, e.Reason))
		if e.Job != "j1" || e.Source != "f" || e.Topic != "" {
			t.Errorf("row %+.50v", e)
		}
	}
	if want := "2@20:two, first 2@25:two, second 5@50:huge 7@70:seven"; total != 4 || strings.Join(reasons, " ") != want {
		t.Fatalf("Errors(j1): %d in all, %s; want 4, %s", total, strings.Join(reasons, " "), want)
	}
	if string(got[0].Raw) != "{2a}" || got[2].Stage != "validate" || string(got[2].Raw) != huge[:clickhouse.MaxRawBytes] {
		t.Fatalf("raw records: %q, %d bytes", got[0].Raw, len(got[2].Raw))
	}
	if got, total, err := s.Errors(ctx, "j1", 2); err != nil || total != 4 || len(got) != 2 || got[1].Reason != "two, second" {
		t.Fatalf("Errors(j1, 2): %+.40v, %d, %v", got, total, err)
	}
	if got, total, err := s.Errors(ctx, "nobody", 10); err != nil || total != 0 || len(got) != 0 {
		t.Fatalf("Errors of a job without any: %v, %d, %v", got, total, err)
	}
}

// Settle marks a produced job done only when every group's committed
// offset has passed the job's last offset in every partition.
func TestSettle(t *testing.T) {
	s, _, _ := newStore(t)
	br := testenv.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	commit := func(group string, at map[int32]int64) {
		t.Helper()
		offs := kadm.Offsets{}
		for p, o := range at {
			offs.Add(kadm.Offset{Topic: br.Topic, Partition: p, At: o, LeaderEpoch: -1})
		}
		resp, err := adm.CommitOffsets(ctx, group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %v for %s: %v", at, group, err)
		}
	}

	j := job(time.Now(), "sss")
	j.State, j.EndOffsets = jobs.Produced, map[int32]int64{0: 4, 2: 9}
	save(t, s, j)
	groups := []string{"proc", "agg"}
	settle := func() ([]jobs.GroupProgress, jobs.State) {
		t.Helper()
		c, err := jobs.FetchCommitted(ctx, cl, groups, br.Topic)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := s.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Settle(ctx, c, cur)
		if err != nil {
			t.Fatal(err)
		}
		after, err := s.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		return p, after.State
	}
	// Nothing committed: every record up to the ends is behind.
	if p, st := settle(); st != jobs.Produced || p[0].Behind != 5+10 || p[1].Behind != 5+10 {
		t.Fatalf("nothing committed: %+v, %s", p, st)
	}
	// proc has passed partition 0 and is one short on 2; agg is past both
	// but a group behind keeps the job from done.
	commit("proc", map[int32]int64{0: 5, 2: 9})
	commit("agg", map[int32]int64{0: 7, 2: 12})
	if p, st := settle(); st != jobs.Produced || p[0].Behind != 1 || p[1].Behind != 0 {
		t.Fatalf("one short: %+v, %s", p, st)
	}
	commit("proc", map[int32]int64{2: 10})
	if p, st := settle(); st != jobs.Done || p[0].Behind != 0 || p[1].Behind != 0 {
		t.Fatalf("both past: %+v, %s", p, st)
	}

	// A job produced to another incarnation of the topic (another topic
	// ID) is never done by this topic's offsets, however far they are: it
	// fails, saying why.
	old := job(time.Now(), "ttt")
	old.State, old.EndOffsets, old.TopicID = jobs.Produced, map[int32]int64{0: 1}, "an-older-topic-id"
	save(t, s, old)
	j = old
	if _, st := settle(); st != jobs.Failed {
		t.Fatalf("a job of a recreated topic: %s", st)
	}
	if got, _ := s.Get(ctx, old.ID); !strings.Contains(got.Error, "recreated") {
		t.Fatalf("its error: %q", got.Error)
	}
}

// A job's state only moves forward, whatever the clocks: a `done` written
// by a host whose clock is an hour behind the loader's still hides the
// `produced` before it (and a `failed` the `producing`).
func TestStateMovesForwardWhateverTheClocks(t *testing.T) {
	store, conn, ch := newStore(t)
	behind := jobs.NewStore(conn, "skuflow")
	jobs.SetClock(behind, func() time.Time { return time.Now().Add(-time.Hour) })
	ctx := context.Background()
	// A row of an earlier release, versioned by the clock in nanoseconds:
	// a state written now still hides it.
	legacy := job(time.Now(), "legacy")
	legacy.State = jobs.Produced
	save(t, store, legacy)
	ch.Query(t, fmt.Sprintf("INSERT INTO skuflow.ingest_jobs (id, started_at, state, version) VALUES ('%s', now(), 'produced', %d)",
		legacy.ID, time.Now().Add(time.Hour).UnixNano()))
	if err := store.MarkDone(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Get(ctx, legacy.ID); got.State != jobs.Done {
		t.Errorf("done after a row of an earlier release: the job reads %s", got.State)
	}
	for _, c := range []struct{ first, then jobs.State }{
		{jobs.Produced, jobs.Done},
		{jobs.Producing, jobs.Failed},
		{jobs.Producing, jobs.Produced},
	} {
		j := &jobs.Job{ID: jobs.NewID(time.Now()), Source: "clock.ndjson", Started: time.Now(), State: c.first}
		if err := store.Save(ctx, j); err != nil {
			t.Fatal(err)
		}
		j.State = c.then
		if err := behind.Save(ctx, j); err != nil {
			t.Fatal(err)
		}
		got, err := store.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != c.then {
			t.Errorf("%s then %s from a host an hour behind: the job reads %s", c.first, c.then, got.State)
		}
	}
}
