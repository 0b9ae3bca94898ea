package testenv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"skuflow/internal/testenv"
)

// TestClickHouseGoDriver pins that clickhouse-go v2 works against the
// stack's ClickHouse 18.16 over the native protocol: open, ping, DDL, a
// batch insert, a select. (Its HTTP protocol does not: the client sends the
// setting client_protocol_version, which 18.16 rejects with "Code: 115 ...
// Unknown setting client_protocol_version".)
func TestClickHouseGoDriver(t *testing.T) {
	t.Parallel()
	ch := testenv.ClickHouse(t)
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{ch.TCPAddr},
		Protocol:    clickhouse.Native,
		DialTimeout: 5 * time.Second,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	v, err := conn.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server %s", v)

	if err := conn.Exec(ctx, `CREATE TABLE p (sku String, v UInt64, at DateTime) ENGINE = ReplacingMergeTree(v) ORDER BY sku`); err != nil {
		t.Fatalf("create: %v", err)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO p (sku, v, at)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	for i := range 1000 {
		if err := batch.Append(fmt.Sprintf("sku-%03d", i%100), uint64(i), at); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send: %v", err)
	}

	// Columnar appends, as the processor's batches will do.
	batch, err = conn.PrepareBatch(ctx, "INSERT INTO p (sku, v, at)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	if err := batch.Column(0).Append([]string{"sku-000", "sku-new"}); err != nil {
		t.Fatal(err)
	}
	if err := batch.Column(1).Append([]uint64{5000, 1}); err != nil {
		t.Fatal(err)
	}
	if err := batch.Column(2).Append([]time.Time{at, at}); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send columns: %v", err)
	}

	var rows, maxV uint64
	if err := conn.QueryRow(ctx, "SELECT count(), max(v) FROM p FINAL").Scan(&rows, &maxV); err != nil {
		t.Fatalf("select: %v", err)
	}
	if rows != 101 || maxV != 5000 {
		t.Fatalf("count, max(v) = %d, %d; want 101, 5000", rows, maxV)
	}
	var sku string
	var got time.Time
	if err := conn.QueryRow(ctx, "SELECT sku, at FROM p FINAL WHERE v = 999").Scan(&sku, &got); err != nil {
		t.Fatalf("select row: %v", err)
	}
	if sku != "sku-099" || !got.Equal(at) {
		t.Fatalf("row = %s %s, want sku-099 %s", sku, got, at)
	}
}
