#!/usr/bin/env bash
# `make demo`: push sample files (products, and the shipped types events
# and plays) through the local stack (which `make up` has started) and show
# what ClickHouse holds.
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

step "drop a file into the inbox: the watcher pushes it and files it in inbox/done/"
INBOX=${SKUFLOW_INBOX:-inbox}
DROP=demo-$(date +%Y%m%d-%H%M%S).ndjson.gz
# Written beside the inbox and renamed in, so the watcher takes it at once;
# a new seed each run, so that it is new content and not refused.
bin/loader gen --rows 5000 --rename-rate 0.05 --seed "$(date +%s)" --out ".data/$DROP" 2>/dev/null
mv ".data/$DROP" "$INBOX/$DROP"
for _ in $(seq 1 600); do
  [[ -f $INBOX/done/$DROP.job.json || -f $INBOX/failed/$DROP.error.txt ]] && break
  sleep 0.1
done
if [[ -f $INBOX/done/$DROP.job.json ]]; then
  printf '  %s/done/%s (job %s)\n' "$INBOX" "$DROP" "$(sed -n 's/.*"id": "\(.*\)".*/\1/p' "$INBOX/done/$DROP.job.json")"
else
  printf '  not done after 60 s; see %s/failed/ and .data/logs/watcher.log\n' "$INBOX" >&2
fi

step "loader jobs: every push is a job"
bin/loader jobs --limit 5

step "the topic is ordinary Kafka: kcat counts its records per partition"
kcat -C -b "127.0.0.1:${SKUFLOW_BROKER_PORT:-19092}" -t products -e -q -f '%p\n' | sort -n | uniq -c |
  awk '{printf "  partition %s: %s records\n", $2, $1}'

step "what ClickHouse holds (products_final: the last write per sku; products_agg: products per name)"
sql "SELECT count() AS products, uniqExact(name) AS names FROM products_final"
sql "SELECT sku, name, substring(description, 1, 50) AS description FROM products_final ORDER BY sku LIMIT 5"
sql "SELECT name, no_of_products FROM products_agg ORDER BY no_of_products DESC, name LIMIT 5"
sql "SELECT stage, count() AS records FROM ingest_errors GROUP BY stage"

step "record types (skuflow.yaml): events keyed by (id, ts), plays summed by (song, date)"
bin/loader gen --type events --rows 2000 --dup-rate 0.05 --update-rate 0.05 --out .data/sample-events.json 2>/dev/null
bin/loader gen --type plays --rows 5000 --songs 50 --out .data/sample-plays.csv 2>/dev/null
bin/loader push --type events --wait .data/sample-events.json
bin/loader push --type plays --wait .data/sample-plays.csv
sql "SELECT count() AS events, uniqExact(id) AS ids, min(ts) AS first, max(ts) AS last FROM events_final"
sql "SELECT id, ts, data FROM events_final ORDER BY id, ts LIMIT 5"
sql "SELECT song, date, plays FROM plays_by_song_date ORDER BY plays DESC, song, date LIMIT 5"
sql "SELECT count() AS lines, sum(plays) AS plays FROM plays_final"

step "loader check: every aggregate against the same count or sum over its type's rows FINAL"
# Records still on their way are a difference: wait for them (30 s at most),
# then show the check; a difference left fails the demo.
for _ in $(seq 60); do bin/loader check >/dev/null 2>&1 && break; sleep 0.5; done
bin/loader check

API=http://${SKUFLOW_API_ADDR:-127.0.0.1:18080}
step "the HTTP API (bin/api): a record POSTed is acknowledged by Kafka, with where it went"
printf '$ curl -X POST --data-binary %s %s/v1/records/products\n' "'{\"sku\":\"demo-api-1\",\"name\":\"Posted Over HTTP\"}'" "$API"
curl -s -X POST --data-binary '{"sku":"demo-api-1","name":"Posted Over HTTP"}' "$API/v1/records/products"
printf '\nThe operations page: %s/ (jobs, uploads, the live feed, aggregates)\n' "$API"

printf '\nQuery it yourself: bin/loader sql "SELECT ..." or clickhouse-client --port %s. Stop with: make down\n' \
  "${SKUFLOW_CH_TCP_PORT:-19000}"
