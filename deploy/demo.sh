#!/usr/bin/env bash
# `make demo`: push a sample products file through the local stack (which
# `make up` has started) and show what ClickHouse holds.
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLE=../shared/testdata/external/products-2000.csv
if [[ ! -f $SAMPLE ]]; then
  SAMPLE=.data/sample-products.csv
  bin/loader gen --rows 2000 --dup-rate 0.01 --rename-rate 0.01 --out "$SAMPLE"
fi

step() { printf '\n== %s\n' "$*"; }
sql() { printf '\n$ loader sql "%s"\n' "$1"; bin/loader sql "$1"; }

step "loader push --wait $SAMPLE"
bin/loader push --wait "$SAMPLE"

step "the topic is ordinary Kafka: kcat counts its records per partition"
kcat -C -b "127.0.0.1:${SKUFLOW_BROKER_PORT:-19092}" -t products -e -q -f '%p\n' | sort -n | uniq -c |
  awk '{printf "  partition %s: %s records\n", $2, $1}'

step "what ClickHouse holds (products_final: the last write per sku; products_agg: products per name)"
sql "SELECT count() AS products, uniqExact(name) AS names FROM products_final"
sql "SELECT sku, name, substring(description, 1, 50) AS description FROM products_final ORDER BY sku LIMIT 5"
sql "SELECT name, no_of_products FROM products_agg ORDER BY no_of_products DESC, name LIMIT 5"
sql "SELECT stage, count() AS records FROM ingest_errors GROUP BY stage"

printf '\nQuery it yourself: bin/loader sql "SELECT ..." or clickhouse-client --port %s. Stop with: make down\n' \
  "${SKUFLOW_CH_TCP_PORT:-19000}"
