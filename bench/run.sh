#!/usr/bin/env bash
# `make bench`, end to end: skuflow against what a user without it would do,
# on a private stack (free ports, data in a temporary folder) that never
# touches the one `make up` started. Prints a table and writes it as JSON.
#
#   BENCH_ROWS=500000    rows of the generated products file
#   BENCH_BIG=1          5,000,000 rows instead
#   BENCH_OUT=bench/results.json
#
# Phases, one after the other on the same machine, so that every figure can
# be read against the direct load measured in the same run:
#   direct      clickhouse-client INSERT ... FORMAT JSONEachRow of the file
#               into a table shaped like products
#   end to end  loader push --wait, processor and aggregator running, until
#               products and products_agg hold every record
#   loader      the loader alone: read, decode, validate, produce to a topic
#               nobody reads
#   processor   the processor alone on that filled topic (a new group)
#   aggregator  the aggregator alone on it (a new group)
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${BENCH_ROWS:-500000}
[[ ${BENCH_BIG:-} == 1 ]] && rows=5000000
out=${BENCH_OUT:-bench/results.json}
work=$(mktemp -d "${TMPDIR:-/tmp}/skuflow-bench.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export SKUFLOW_DATA_DIR=$work/data SKUFLOW_CH_TCP_PORT=$(free_port) SKUFLOW_CH_HTTP_PORT=$(free_port) SKUFLOW_BROKER_PORT=$(free_port)
export SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:$SKUFLOW_CH_TCP_PORT SKUFLOW_KAFKA_BROKERS=127.0.0.1:$SKUFLOW_BROKER_PORT
export SKUFLOW_STACK_SERVICES=""
# Any free port for the services' metrics: beside a running `make up`, and
# with two processors at once.
export SKUFLOW_PROCESSOR_METRICS_ADDR=127.0.0.1:0 SKUFLOW_AGGREGATOR_METRICS_ADDR=127.0.0.1:0 SKUFLOW_WATCH_METRICS_ADDR=127.0.0.1:0
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	deploy/stack.sh down >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
ch() { clickhouse-client --host 127.0.0.1 --port "$SKUFLOW_CH_TCP_PORT" "$@"; }

# start NAME ENV... starts bin/NAME in the background with ENV added, waits
# for its ready line, and sets $started to its pid.
start() {
	local name=$1 log=$work/$1.$RANDOM.log
	shift
	env "$@" "bin/$name" >"$log" 2>&1 &
	started=$!
	pids+=("$started")
	for _ in $(seq 300); do
		grep -q 'msg=started' "$log" && return
		kill -0 "$started" 2>/dev/null || break
		sleep 0.05
	done
	cat "$log" >&2
	exit 1
}
# cpu PID prints the CPU seconds (user + system) process PID has used.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# stop PID stops a service started by start, after reading its peak RSS
# and CPU time.
stop() {
	peak=$(awk '/^VmHWM:/ {print $2 * 1024}' "/proc/$1/status")
	used=$(cpu "$1")
	kill "$1"
	wait "$1" || true
}
# behind JOB GROUP prints how many records GROUP is behind JOB's end.
behind() {
	bin/loader status --json "$1" | python3 -c '
import json, sys
s = json.load(sys.stdin)
if s["state"] == "done":
    print(0)
else:
    print(sum(g["records_behind"] for g in s.get("progress", []) if g["group"] == sys.argv[1]) if s.get("progress") else -1)
' "$2"
}
# until_caught_up JOB GROUP waits until GROUP has committed past JOB.
until_caught_up() {
	while [[ $(behind "$1" "$2") != 0 ]]; do sleep 0.05; done
}

say "bench: starting ClickHouse and the broker in $work"
deploy/stack.sh up >/dev/null
file=$work/products.ndjson
say "bench: generating $rows rows"
bin/loader gen --rows "$rows" --dup-rate 0.02 --rename-rate 0.01 --seed 42 --out "$file" 2>/dev/null
size=$(stat -c %s "$file")

# The services that run during the end-to-end phase; they create the tables.
start processor
proc_pid=$started
start aggregator
agg_pid=$started

say "bench: direct load"
ch --query "CREATE TABLE default.direct AS skuflow.products"
ch_pid=$(cat "$SKUFLOW_DATA_DIR/run/clickhouse.pid")
ch0=$(cpu "$ch_pid")
t0=$(now)
ch --query "INSERT INTO default.direct (sku, name, description) FORMAT JSONEachRow" <"$file"
direct=$(since "$t0")
direct_cpu=$(echo "$(cpu "$ch_pid") - $ch0" | bc)
distinct=$(ch --query "SELECT uniqExact(sku) FROM default.direct")

say "bench: skuflow end to end"
broker_pid=$(cat "$SKUFLOW_DATA_DIR/run/broker.pid")
ch0=$(cpu "$ch_pid") broker0=$(cpu "$broker_pid") proc0=$(cpu "$proc_pid") agg0=$(cpu "$agg_pid")
t0=$(now)
bin/loader push --wait --no-progress --json "$file" >"$work/e2e.json"
e2e=$(since "$t0")
ch_cpu=$(echo "$(cpu "$ch_pid") - $ch0" | bc) broker_cpu=$(echo "$(cpu "$broker_pid") - $broker0" | bc)
proc_cpu=$(echo "$(cpu "$proc_pid") - $proc0" | bc) agg_cpu=$(echo "$(cpu "$agg_pid") - $agg0" | bc)
final=$(ch --query "SELECT count() FROM skuflow.products FINAL")
agg_total=$(ch --query "SELECT sum(no_of_products) FROM skuflow.products_agg")
stop "$proc_pid"; proc_e2e_rss=$peak
stop "$agg_pid"; agg_e2e_rss=$peak

say "bench: the loader alone"
export SKUFLOW_KAFKA_TOPIC=bench_alone SKUFLOW_CLICKHOUSE_DATABASE=bench_alone
export SKUFLOW_PROCESSOR_GROUP=bench-processor SKUFLOW_AGGREGATOR_GROUP=bench-aggregator
bin/loader push --force --no-progress --json "$file" >"$work/loader.json"
job=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["id"])' "$work/loader.json")

# alone NAME times bin/NAME, in a new group, until it has caught up with the
# loader's job; sets $took and $peak.
alone() {
	say "bench: the $1 alone"
	local t0 pid
	t0=$(now)
	start "$1"
	pid=$started
	until_caught_up "$job" "bench-$1"
	took=$(since "$t0")
	stop "$pid"
}
# The aggregator first: it loads its state from the records table when it
# starts, and must find it empty to read the whole topic, as it does when
# it runs beside the processor from the start.
alone aggregator
agg_alone=$took agg_rss=$peak
alone processor
proc_alone=$took proc_rss=$peak

python3 - "$out" "$work" <<PY
import json, sys, platform, os, subprocess, datetime
out, work = sys.argv[1], sys.argv[2]
e2e = json.load(open(f"{work}/e2e.json"))
loader = json.load(open(f"{work}/loader.json"))
lr = loader["results"][0]
rows, size = $rows, $size
direct, e2e_s = $direct, $e2e
r = {
    "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "file": {"rows": rows, "bytes": size, "format": "ndjson", "distinct_skus": $distinct},
    "direct": {"seconds": direct, "rows_per_s": rows / direct, "clickhouse_cpu_seconds": $direct_cpu},
    "end_to_end": {"seconds": e2e_s, "rows_per_s": rows / e2e_s, "ratio_to_direct": e2e_s / direct,
                   "products_final": $final, "products_agg_total": $agg_total, "exact": $final == $distinct == $agg_total},
    "loader": {"seconds": lr["produce_seconds"], "mb_per_s": size / 1e6 / lr["produce_seconds"],
               "rows_per_s": rows / lr["produce_seconds"], "peak_rss_bytes": loader["peak_rss_bytes"]},
    "processor": {"seconds": $proc_alone, "rows_per_s": rows / $proc_alone, "peak_rss_bytes": $proc_rss},
    "aggregator": {"seconds": $agg_alone, "rows_per_s": rows / $agg_alone, "peak_rss_bytes": $agg_rss},
    "end_to_end_peak_rss_bytes": {"loader": e2e["peak_rss_bytes"], "processor": $proc_e2e_rss, "aggregator": $agg_e2e_rss},
    "end_to_end_cpu_seconds": {"loader": e2e["cpu_seconds"], "broker": $broker_cpu, "processor": $proc_cpu,
                               "aggregator": $agg_cpu, "clickhouse": $ch_cpu},
}
json.dump(r, open(out, "w"), indent=2)
open(out, "a").write("\n")
mib = lambda b: f"{b / 2**20:.0f} MiB"
print(f"skuflow bench: {rows:,} rows, {size / 1e6:.1f} MB NDJSON, {r['file']['distinct_skus']:,} distinct skus ({r['commit']}, {os.cpu_count()} cores)")
print()
print(f"| {'what':<46} | {'seconds':>7} | {'rows/s':>9} | {'MB/s':>6} | {'vs direct':>9} | {'peak RSS':>8} |")
print(f"|{'-' * 48}|{'-' * 9}:|{'-' * 10}:|{'-' * 7}:|{'-' * 10}:|{'-' * 9}:|")
def row(what, s, rss="", ratio=""):
    print(f"| {what:<46} | {s:7.2f} | {rows / s:9,.0f} | {size / 1e6 / s:6.1f} | {ratio:>9} | {rss:>8} |")
row("direct: clickhouse-client INSERT JSONEachRow", direct, ratio="1.00x")
row("skuflow end to end: loader push --wait", e2e_s, ratio=f"{e2e_s / direct:.2f}x",
    rss=mib(max(e2e['peak_rss_bytes'], $proc_e2e_rss, $agg_e2e_rss)))
row("loader alone (read, validate, produce)", lr["produce_seconds"], mib(loader["peak_rss_bytes"]), f"{lr['produce_seconds'] / direct:.2f}x")
row("processor alone (filled topic -> products)", $proc_alone, mib($proc_rss), f"{$proc_alone / direct:.2f}x")
row("aggregator alone (filled topic -> counts)", $agg_alone, mib($agg_rss), f"{$agg_alone / direct:.2f}x")
print()
print(f"end to end peak RSS: loader {mib(e2e['peak_rss_bytes'])}, processor {mib($proc_e2e_rss)}, aggregator {mib($agg_e2e_rss)}")
c = r["end_to_end_cpu_seconds"]
total = sum(c.values())
print(f"direct load CPU seconds: clickhouse {$direct_cpu:.2f}")
print(f"end to end CPU seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in c.items()) +
      f"; {total:.2f} in all, {total / e2e_s:.2f} of {os.cpu_count()} cores busy for {e2e_s:.2f} s")
print(f"exact: products FINAL {$final:,}, products_agg total {$agg_total:,}, distinct skus {$distinct:,}: {'yes' if r['end_to_end']['exact'] else 'NO'}")
print(f"written to {out}")
if not r["end_to_end"]["exact"]:
    sys.exit("the end-to-end result is not exact")
PY
