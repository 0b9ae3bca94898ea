package aggregator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/kafka"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// Against a real ClickHouse (18.16 in the local stack), for each test
// type: what the aggregator writes (typed By columns through
// schemas.Vector, one INSERT per aggregate) equals the aggregate of the
// records table FINAL; a state loaded back (toString of every column it
// needs) agrees with the stored results, so nothing is written again; and
// a stored row made wrong is found and written right. The tables are
// created here from the schemas' columns, not by migration: this pins
// the aggregator's own SQL and the canonical texts of every column type
// (Date, Bool, Timestamp, UInt64 past the largest Int64, strings with
// quotes and control bytes) as ClickHouse reads them back.
func TestLoadAndWriteAgainstClickHouse(t *testing.T) {
	ch := testenv.ClickHouse(t)
	cfg := config.Default()
	cfg.ClickHouse.Addr = ch.TCPAddr
	cfg.Kafka.Partitions = 3
	conn, err := clickhouse.Open(cfg.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := cfg.ClickHouse.Database
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, s := range []*schemas.Schema{schemas.Products, orders, plays} {
		t.Run(s.Name, func(t *testing.T) {
			for _, stmt := range testTables(db, s) {
				if err := conn.Exec(ctx, stmt); err != nil {
					t.Fatalf("%v\n%s", err, stmt)
				}
			}
			a := New(cfg, s, conn, log)
			a.inc = 1
			rng := rand.New(rand.NewPCG(7, 7))
			var recs []trec
			for len(recs) < 400 {
				if r := genRecord(rng, s, a.plan, cfg.Kafka.Partitions); r.valid {
					recs = append(recs, r)
				}
			}
			insertRecords(t, ctx, conn, db, s, recs)
			for i, r := range recs {
				a.Add(&kgo.Record{Key: r.key, Value: r.value, Partition: r.partition, Offset: int64(i)})
			}
			if a.stats.Applied != int64(len(recs)) {
				t.Fatalf("%d of %d records applied", a.stats.Applied, len(recs))
			}
			if _, err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			checkAggregates(t, ch, db, s)

			// Loaded back, the state agrees with what is stored.
			parts := []int32{0, 1, 2}
			b := New(cfg, s, conn, log)
			b.inc = 1
			got, err := b.loadFromClickHouse(ctx, parts)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range parts {
				st := got[p].state
				want := ch.Query(t, fmt.Sprintf("SELECT count(), max(_offset) + 1 FROM %s.%s FINAL WHERE _partition = %d", db, s.Name, p))
				if have := fmt.Sprintf("%d\t%d", st.keys.len(), got[p].from); have != want {
					t.Errorf("partition %d: %s keys and read from, want %s", p, have, want)
				}
				for i := range st.aggs {
					if n := len(st.aggs[i].dirty); n > 0 {
						t.Errorf("partition %d, %s: %d groups differ from what was written", p, s.Aggregates[i].Name, n)
					}
				}
			}

			// A stored row made wrong (at a version above all) is found and
			// written right.
			ag := &s.Aggregates[0]
			var names, exprs []string
			for _, c := range s.AggregateColumns(ag) {
				names, exprs = append(names, c.Name), append(exprs, c.Name)
				switch c.Name {
				case "count":
					exprs[len(exprs)-1] = "count + 5"
				case "version":
					exprs[len(exprs)-1] = "version + 1000000"
				}
			}
			if err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s FINAL LIMIT 1",
				db, ag.Table, strings.Join(names, ", "), strings.Join(exprs, ", "), db, ag.Table)); err != nil {
				t.Fatal(err)
			}
			c := New(cfg, s, conn, log)
			c.inc = 1
			if _, err := c.Assigned(ctx, map[int32]kgo.Offset{0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(0), 2: kgo.NewOffset().At(0)}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if c.stats.Written != 1 {
				t.Errorf("%d rows written after one was made wrong, want 1", c.stats.Written)
			}
			checkAggregates(t, ch, db, s)
		})
	}
}

// testTables returns the statements that create s's records table and
// its aggregates' tables, from the schema alone.
func testTables(db string, s *schemas.Schema) []string {
	stmts := s.DDL(db)
	for i := range s.Aggregates {
		a := &s.Aggregates[i]
		var cols []string
		for _, c := range s.AggregateColumns(a) {
			cols = append(cols, c.Name+" "+c.Type)
		}
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s.%s (%s) ENGINE = ReplacingMergeTree(version) ORDER BY (partition, %s)",
			db, a.Table, strings.Join(cols, ", "), strings.Join(a.By, ", ")))
	}
	return stmts
}

// insertRecords inserts the records as the processor does: typed columns,
// the row version from the offset.
func insertRecords(t *testing.T, ctx context.Context, conn clickhouse.Conn, db string, s *schemas.Schema, recs []trec) {
	t.Helper()
	cols := s.Columns
	if s.Identity {
		cols = append(append([]schemas.Column{}, cols...), schemas.IdentityColumns...)
	}
	var names []string
	var values []any
	for _, c := range cols {
		v := schemas.NewVector(c)
		for _, r := range recs {
			if err := v.Append([]byte(r.texts[c.Name])); err != nil {
				t.Fatal(err)
			}
		}
		names = append(names, c.Name)
		values = append(values, v.Values())
	}
	parts, offsets, versions := make([]uint32, len(recs)), make([]uint64, len(recs)), make([]uint64, len(recs))
	for i, r := range recs {
		parts[i], offsets[i], versions[i] = uint32(r.partition), uint64(i), kafka.Version(1, int64(i))
	}
	names = append(names, "_partition", "_offset", "_version")
	values = append(values, parts, offsets, versions)
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", db, s.Name, strings.Join(names, ", ")))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if err := b.Column(i).Append(v); err != nil {
			t.Fatalf("column %s: %v", names[i], err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// checkAggregates compares each aggregate's partial results, summed as
// its view sums them, with the same aggregate of the records FINAL.
func checkAggregates(t *testing.T, ch *testenv.ClickHouseServer, db string, s *schemas.Schema) {
	t.Helper()
	for _, a := range s.Aggregates {
		by := strings.Join(a.By, ", ")
		total, sum := "0", "0"
		if !a.Counts() {
			total, sum = "toUInt64(sum(total))", "toUInt64(sum("+a.Sum+"))"
		}
		got := ch.Query(t, fmt.Sprintf("SELECT %s, sum(count), %s FROM %s.%s FINAL GROUP BY %s HAVING sum(count) > 0 ORDER BY %s FORMAT TSV", by, total, db, a.Table, by, by))
		want := ch.Query(t, fmt.Sprintf("SELECT %s, count(), %s FROM %s.%s FINAL GROUP BY %s ORDER BY %s FORMAT TSV", by, sum, db, s.Name, by, by))
		if got != want || want == "" {
			t.Errorf("%s: partial results summed\n%s\nFINAL grouped\n%s", a.Name, got, want)
		}
	}
}
