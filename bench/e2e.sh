#!/usr/bin/env bash
# End-to-end speed against the baseline a user without skuflow would use:
# clickhouse-client loading the same file with INSERT ... FORMAT JSONEachRow
# into a table of the same shape. Runs its own stack (free ports, data in a
# temporary folder) so that it never touches the one `make up` started.
#   BENCH_ROWS  rows of the generated file (default 500,000)
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${BENCH_ROWS:-500000}
work=$(mktemp -d "${TMPDIR:-/tmp}/skuflow-bench.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export SKUFLOW_DATA_DIR=$work/data SKUFLOW_CH_TCP_PORT=$(free_port) SKUFLOW_CH_HTTP_PORT=$(free_port) SKUFLOW_BROKER_PORT=$(free_port)
export SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:$SKUFLOW_CH_TCP_PORT SKUFLOW_KAFKA_BROKERS=127.0.0.1:$SKUFLOW_BROKER_PORT
cleanup() { deploy/stack.sh down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

deploy/stack.sh up >/dev/null
ch() { clickhouse-client --host 127.0.0.1 --port "$SKUFLOW_CH_TCP_PORT" "$@"; }
now() { date +%s.%N; }

file=$work/products.ndjson
bin/loader gen --rows "$rows" --dup-rate 0.02 --rename-rate 0.01 --seed 42 --out "$file" 2>/dev/null
size=$(stat -c %s "$file")

# The baseline: the same file straight into a table shaped like products.
ch --query "CREATE TABLE default.direct AS skuflow.products"
t0=$(now)
ch --query "INSERT INTO default.direct (sku, name, description) FORMAT JSONEachRow" <"$file"
t1=$(now)
direct=$(echo "$t1 - $t0" | bc)

# skuflow: from the start of the push until every record is in products.
t0=$(now)
bin/loader push --wait --no-progress --json "$file" >"$work/push.json"
t1=$(now)
e2e=$(echo "$t1 - $t0" | bc)

n=$(ch --query "SELECT count() FROM skuflow.products")
final=$(ch --query "SELECT count() FROM skuflow.products FINAL")
want=$(ch --query "SELECT uniqExact(sku) FROM default.direct")
python3 - "$rows" "$size" "$direct" "$e2e" "$n" "$final" "$want" <<'PY'
import sys
rows, size, direct, e2e, n, final, want = sys.argv[1:]
rows, size, direct, e2e = int(rows), int(size), float(direct), float(e2e)
print(f"file: {rows:,} rows, {size/1e6:.1f} MB NDJSON")
print(f"  direct load (clickhouse-client JSONEachRow)   {direct:7.2f} s  {rows/direct:>10,.0f} rows/s")
print(f"  skuflow end to end (loader push --wait)       {e2e:7.2f} s  {rows/e2e:>10,.0f} rows/s  {e2e/direct:.2f}x the direct load")
print(f"  rows in products: {int(n):,}; FINAL: {int(final):,}; distinct skus in the file: {int(want):,}")
if int(final) != int(want):
    sys.exit("FINAL row count differs from the file's distinct skus")
PY
