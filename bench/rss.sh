#!/usr/bin/env bash
# Measures the loader's peak memory while it pushes a large generated file
# (about 2 GB by default) to a private stack (ClickHouse for the job rows
# and a broker, on free loopback ports), and does the same for a file a
# tenth of the size: the loader streams, so the two peaks should be about
# equal.
#   RSS_ROWS   rows of the large file (default 11,000,000: about 2 GB of NDJSON)
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${RSS_ROWS:-11000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/skuflow-rss.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export SKUFLOW_DATA_DIR=$work/data SKUFLOW_CH_TCP_PORT=$(free_port) SKUFLOW_CH_HTTP_PORT=$(free_port) SKUFLOW_BROKER_PORT=$(free_port)
export SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:$SKUFLOW_CH_TCP_PORT SKUFLOW_KAFKA_BROKERS=127.0.0.1:$SKUFLOW_BROKER_PORT
export SKUFLOW_STACK_SERVICES=""
cleanup() { deploy/stack.sh down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
deploy/stack.sh up >/dev/null

measure() { # rows
  local file="$work/products-$1.ndjson"
  bin/loader gen --rows "$1" --dup-rate 0.02 --rename-rate 0.01 --seed "$1" --out "$file" 2>/dev/null
  local size; size=$(stat -c %s "$file")
  bin/loader push --no-progress --json "$file" >"$work/summary.json"
  python3 - "$work/summary.json" "$size" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); r = s["results"][0]; size = int(sys.argv[2])
print(f"  {size/1e9:6.2f} GB  {r['records_produced']:>11,} records  {r['produce_seconds']:7.1f} s  "
      f"{size/1e6/r['produce_seconds']:6.1f} MB/s  peak RSS {s['peak_rss_bytes']/2**20:6.1f} MiB  ok={s['ok']}")
PY
  rm -f "$file"
}

echo "loader peak memory (NDJSON, pushed to a local broker):"
measure $((rows / 10))
measure "$rows"
