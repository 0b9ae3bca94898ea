#!/usr/bin/env bash
# `make demo`: push a sample products file to the local stack and show what
# reached the topic. `make up` has started the stack already.
set -euo pipefail
cd "$(dirname "$0")/.."

BROKER="127.0.0.1:${SKUFLOW_BROKER_PORT:-19092}"
SAMPLE=../shared/testdata/external/products-2000.csv
if [[ ! -f $SAMPLE ]]; then
  SAMPLE=.data/sample-products.csv
  bin/loader gen --rows 2000 --dup-rate 0.01 --rename-rate 0.01 --out "$SAMPLE"
fi

echo "== loader push $SAMPLE"
bin/loader push --brokers "$BROKER" "$SAMPLE"

echo
echo "== the topic, read back with kcat (a Kafka client nobody here wrote)"
kcat -C -b "$BROKER" -t products -e -q -f '%p\n' | sort -n | uniq -c |
  awk '{printf "  partition %s: %s records\n", $2, $1}'
echo
echo "== three records (partition, offset, key, value)"
kcat -C -b "$BROKER" -t products -p 0 -o beginning -c 3 -e -q -f '  %p/%o  %k  %s\n' | cut -c1-160
echo
echo "The processor (next issue) will load these into ClickHouse; 'make down' stops the stack."
