package clickhouse_test

import (
	"context"
	"testing"
	"time"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
)

// server starts a ClickHouse 18.16 for the test and returns it with a
// connection and a context of a minute, all ended with the test.
func server(t *testing.T) (*testenv.ClickHouseServer, clickhouse.Conn, context.Context) {
	t.Helper()
	ch := testenv.ClickHouse(t)
	conn, err := clickhouse.Open(config.ClickHouse{Addr: ch.TCPAddr, Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ch, conn, ctx
}
