package clickhouse_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// oldProducts creates, by hand, a database as an older release left it: a
// products table without the extra column and the view over it.
func oldProducts(t *testing.T, ch *testenv.ClickHouseServer, db string) {
	t.Helper()
	ch.Query(t, "CREATE DATABASE "+db)
	ch.Query(t, "CREATE TABLE "+db+".products (sku String, name String, description String, _job String, _source String, "+
		"_line UInt64, _partition UInt32, _offset UInt64, _ingested_at DateTime) ENGINE = ReplacingMergeTree(_offset) ORDER BY (sku)")
	ch.Query(t, "CREATE VIEW "+db+".products_final AS SELECT sku, name, description, _job, _source, _line, _partition, _offset, _ingested_at FROM "+db+".products FINAL")
}

func viewColumns(t *testing.T, ch *testenv.ClickHouseServer, db, view string) string {
	t.Helper()
	return ch.Query(t, fmt.Sprintf("SELECT name FROM system.columns WHERE database = '%s' AND table = '%s' FORMAT TSV", db, view))
}

// A view follows its table: after migration adds a column to products,
// products_final shows it (18.16 has no CREATE OR REPLACE VIEW, and
// CREATE VIEW IF NOT EXISTS keeps the old one).
func TestMigrateViewFollowsTable(t *testing.T) {
	ch, conn, ctx := server(t)

	oldProducts(t, ch, "skuflow")
	ch.Query(t, "INSERT INTO skuflow.products (sku, name, _offset) VALUES ('a', 'old', 1)\n")
	if err := clickhouse.Migrate(ctx, conn, "skuflow", schemas.Products); err != nil {
		t.Fatal(err)
	}
	want := "sku\nname\ndescription\nextra\n_job\n_source\n_line\n_partition\n_offset\n_version\n_ingested_at"
	if got := viewColumns(t, ch, "skuflow", "products_final"); got != want {
		t.Fatalf("products_final has columns\n%s\nwant\n%s", got, want)
	}
	if got := ch.Query(t, "SELECT sku, name, extra FROM skuflow.products_final"); got != "a\told\t" {
		t.Fatalf("products_final: %q", got)
	}
	// Up to date, the view is left alone.
	before := ch.Query(t, "SELECT metadata_modification_time FROM system.tables WHERE database = 'skuflow' AND name = 'products_final'")
	time.Sleep(1100 * time.Millisecond)
	if err := clickhouse.Migrate(ctx, conn, "skuflow", schemas.Products); err != nil {
		t.Fatal(err)
	}
	after := ch.Query(t, "SELECT metadata_modification_time FROM system.tables WHERE database = 'skuflow' AND name = 'products_final'")
	if before != after {
		t.Fatalf("an up-to-date view was recreated: %s then %s", before, after)
	}
}

// Two services migrating the same old database at once both succeed:
// neither fails on a column, table or view the other has just made.
func TestMigrateConcurrently(t *testing.T) {
	ch := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var conns [2]clickhouse.Conn
	for i := range conns {
		c, err := clickhouse.Open(config.ClickHouse{Addr: ch.TCPAddr, Username: "default", DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	const rounds = 12
	for round := range rounds {
		db := fmt.Sprintf("race%d", round)
		if round%2 == 0 {
			oldProducts(t, ch, db) // half start old, half from nothing
		}
		var wg sync.WaitGroup
		errs := make([]error, len(conns))
		for i, c := range conns {
			wg.Go(func() { errs[i] = clickhouse.Migrate(ctx, c, db, schemas.Products) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, migration %d: %v", round, i, err)
			}
		}
		if got := viewColumns(t, ch, db, "products_final"); !strings.Contains(got, "extra") {
			t.Fatalf("round %d: products_final lacks extra: %q", round, got)
		}
	}
}
