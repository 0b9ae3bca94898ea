package clickhouse

import (
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"skuflow/config"
)

func TestCompression(t *testing.T) {
	for _, c := range []struct {
		addr, setting string
		want          ch.CompressionMethod // 0: none
	}{
		{"127.0.0.1:19000", "auto", 0},
		{"localhost:9000", "auto", 0},
		{"[::1]:9000", "auto", 0},
		{"clickhouse.internal:9000", "auto", ch.CompressionLZ4},
		{"10.0.0.7:9000", "auto", ch.CompressionLZ4},
		{"127.0.0.1:19000", "lz4", ch.CompressionLZ4},
		{"10.0.0.7:9000", "none", 0},
		{"10.0.0.7:9000", "zstd", ch.CompressionZSTD},
	} {
		got := compression(config.ClickHouse{Addr: c.addr, Compression: c.setting})
		switch {
		case c.want == 0 && got != nil:
			t.Errorf("%s %s: %v, want none", c.addr, c.setting, got.Method)
		case c.want != 0 && (got == nil || got.Method != c.want):
			t.Errorf("%s %s: %v, want %v", c.addr, c.setting, got, c.want)
		}
	}
}
