package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/testenv"
	"skuflow/schemas"
)

// loader export streams: exporting 5,000,000 products as Parquet keeps the
// loader's peak RSS within 20% of exporting 500,000, and DuckDB reads every
// row back. The export's rows/s is logged beside clickhouse-client's
// TabSeparated of the same query, the floor of any export.
func TestExportMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("exports 5,000,000 rows")
	}
	ch := testenv.ClickHouse(t)
	conn, err := clickhouse.Open(config.ClickHouse{Addr: ch.TCPAddr, Username: "default", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := clickhouse.Migrate(context.Background(), conn, "skuflow", schemas.Products); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// fill adds products [from, to) as the processor would write them:
	// names and descriptions of a real product's size, 8 partitions.
	fill := func(from, to int) {
		ch.Query(t, fmt.Sprintf(`INSERT INTO skuflow.products (sku, name, description, extra, _partition, _offset, _version)
			SELECT concat('sku-', toString(number)), concat('name ', toString(number %% 5000)),
			       concat('A description of product ', toString(number), ', long enough to be one: it sells, it ships, it is kept in a warehouse.'),
			       '{}', number %% 8, intDiv(number, 8), intDiv(number, 8)
			FROM system.numbers WHERE number >= %d LIMIT %d`, from, to-from))
	}
	export := func(rows int) (peakMiB int64, seconds float64) {
		out := filepath.Join(dir, fmt.Sprintf("products-%d.parquet", rows))
		cmd := loaderCmd(t, []string{"SKUFLOW_CLICKHOUSE_ADDR=" + ch.TCPAddr}, "export", "products", "--out", out, "--json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		peak := samplePeak(cmd.Process.Pid)
		// Until it has exited: a zombie's status has no VmHWM.
		for vmHWM(cmd.Process.Pid) != 0 {
			time.Sleep(20 * time.Millisecond)
		}
		kb := peak()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("loader export: %v\n%s", err, stderr.String())
		}
		var sum struct {
			Rows    int64   `json:"rows"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Rows != int64(rows) {
			t.Fatalf("export summary %q (%v): want %d rows", stdout.String(), err, rows)
		}
		got := testenv.DuckDB(t, fmt.Sprintf("SELECT count(*) AS n, count(DISTINCT sku) AS skus FROM '%s'", out))[0][0]
		if fmt.Sprint(got["n"]) != fmt.Sprint(rows) || fmt.Sprint(got["skus"]) != fmt.Sprint(rows) {
			t.Fatalf("DuckDB reads %v rows, %v skus; want %d", got["n"], got["skus"], rows)
		}
		return kb >> 10, sum.Seconds
	}
	// tsv times clickhouse-client writing the same query's rows.
	tsv := func() float64 {
		start := time.Now()
		cmd := ch.ClientCmd("--query", "SELECT sku, name, description, extra, _version FROM skuflow.products FINAL ORDER BY sku FORMAT TabSeparated")
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("clickhouse-client: %v %s", err, stderr.String())
		}
		return time.Since(start).Seconds()
	}

	fill(0, 500_000)
	small, smallS := export(500_000)
	fill(500_000, 5_000_000)
	big, bigS := export(5_000_000)
	direct := tsv()
	t.Logf("loader export products (Parquet, zstd): 500,000 rows: peak RSS %d MiB, %.2f s; 5,000,000 rows: peak RSS %d MiB, %.2f s (%.0f rows/s); clickhouse-client FORMAT TabSeparated of the same 5,000,000: %.2f s (%.0f rows/s), export/TSV %.2fx",
		small, smallS, big, bigS, 5e6/bigS, direct, 5e6/direct, bigS/direct)
	if float64(big) > 1.2*float64(small) {
		t.Fatalf("peak RSS %d MiB for 5,000,000 rows against %d MiB for 500,000: more than 20%% higher, the export holds rows", big, small)
	}
}
