#!/usr/bin/env bash
# `make bench`, end to end: skuflow against what a user without it would do,
# on a private stack (free ports, data in a temporary folder) that never
# touches the one `make up` started. Prints a table and writes it as JSON.
#
#   BENCH_ROWS=500000    rows of the generated products file
#   BENCH_BIG=1          5,000,000 rows instead
#   BENCH_OUT=bench/results.json
#   BENCH_VS=DIR         also time DIR's processor and aggregator (another
#                        build's bin/, e.g. a worktree of an older commit)
#                        alone, interleaved with bin/'s, BENCH_ROUNDS times
#                        each (default 3), and print the ratios
#
# Phases, one after the other on the same machine, so that every figure can
# be read against the direct load measured in the same run:
#   direct      clickhouse-client INSERT ... FORMAT JSONEachRow of the file
#               into a table shaped like products
#   end to end  loader push --wait, processor and aggregator running, until
#               products and products_agg hold every record
#   no aggregate  the same, for a type declared like products without its
#               count (`bare`): the processor alone runs, and the push
#               waits for it alone; what the exact aggregate costs
#   loader      the loader alone: read, decode, validate, produce to a topic
#               nobody reads
#   processor   the processor alone on that filled topic (a new group)
#   aggregator  the aggregator alone on it (a new group)
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${BENCH_ROWS:-500000}
latency_runs=${BENCH_LATENCY_RUNS:-20}
[[ ${BENCH_BIG:-} == 1 ]] && rows=5000000
out=${BENCH_OUT:-bench/results.json}
work=$(mktemp -d "${TMPDIR:-/tmp}/skuflow-bench.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export SKUFLOW_DATA_DIR=$work/data SKUFLOW_CH_TCP_PORT=$(free_port) SKUFLOW_CH_HTTP_PORT=$(free_port) SKUFLOW_BROKER_PORT=$(free_port)
export SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:$SKUFLOW_CH_TCP_PORT SKUFLOW_KAFKA_BROKERS=127.0.0.1:$SKUFLOW_BROKER_PORT
export SKUFLOW_STACK_SERVICES=""
# Products alone, whatever ./skuflow.yaml declares: the figures compare
# with the direct load of products, and with older builds.
export SKUFLOW_CONFIG=""
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

# start NAME ENV... starts $BIN/NAME (bin/NAME by default) in the
# background with ENV added, waits for its ready line, and sets $started to
# its pid.
start() {
	local name=$1 log=$work/$1.$RANDOM.log
	shift
	env "$@" "${BIN:-bin}/$name" >"$log" 2>&1 &
	started=$! started_log=$log
	pids+=("$started")
	for _ in $(seq 300); do
		grep -qs 'msg=started' "$log" && return
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
# until_caught_up GROUP waits until GROUP has committed every record of
# $SKUFLOW_KAFKA_TOPIC (as the broker says: any build of a service).
until_caught_up() {
	"$work/caughtup" -brokers "$SKUFLOW_KAFKA_BROKERS" -topic "$SKUFLOW_KAFKA_TOPIC" -group "$1"
}

# quiet waits (600 looks, a minute and more) until ClickHouse merges
# nothing of the bench's tables: the merges of one phase's parts would
# otherwise be counted in the next. (A merge not yet scheduled is not
# seen: this narrows the overlap, it cannot rule it out.)
quiet() {
	local _
	for _ in $(seq 600); do
		[[ $(ch --query "SELECT count() FROM system.merges WHERE database != 'system'") == 0 ]] && return
		sleep 0.1
	done
	say "bench: ClickHouse still merging after 600 looks; going on"
}

go build -o "$work/caughtup" ./bench/caughtup
go build -o "$work/latency" ./bench/latency
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
# clickhouse-client parses the JSON and sends the server Native blocks:
# its CPU is part of the direct load's. Timed around the client alone.
read -r direct direct_client_cpu < <(python3 -c '
import resource, subprocess, sys, time
t0 = time.monotonic()
subprocess.run(sys.argv[1:], stdin=sys.stdin, check=True)
wall = time.monotonic() - t0
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.3f} {r.ru_utime + r.ru_stime:.2f}")
' clickhouse-client --host 127.0.0.1 --port "$SKUFLOW_CH_TCP_PORT" --query "INSERT INTO default.direct (sku, name, description) FORMAT JSONEachRow" <"$file")
[[ -n $direct ]] || { echo "bench: the direct load failed" >&2; exit 1; }
direct_cpu=$(echo "$(cpu "$ch_pid") - $ch0" | bc)
distinct=$(ch --query "SELECT uniqExact(sku) FROM default.direct")

quiet
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

# Latency, on the running stack (both groups caught up): one record by
# `loader push --wait`, and by POST /v1/records until it is in FINAL, each
# after 300 ms of quiet; and POSTs back to back, which the services write
# flush_interval/10 apart.
say "bench: latency of one record (push --wait, POST /v1/records), $latency_runs runs each"
start api SKUFLOW_API_ADDR=127.0.0.1:0
api_pid=$started
api_url=$(sed -nE 's/.*msg=started.* addr=(http[^ ]*).*/\1/p' "$started_log" | head -1)
"$work/latency" -loader bin/loader -api "$api_url" -clickhouse "http://127.0.0.1:$SKUFLOW_CH_HTTP_PORT" \
	-runs "$latency_runs" -dir "$work" >"$work/latency.json"
stop "$api_pid"
stop "$proc_pid"; proc_e2e_rss=$peak
stop "$agg_pid"; agg_e2e_rss=$peak

# The same file as a type without an aggregate: the processor runs alone
# and the push waits for it alone. Against the end to end above, this is
# what keeping the exact count costs.
quiet
say "bench: end to end, a type without an aggregate"
cat >"$work/bare.yaml" <<'YAML'
types:
  bare:
    key: [sku]
    columns:
      - {name: sku, type: String, required: true}
      - {name: name, type: String}
      - {name: description, type: String}
    extra: extra
YAML
start processor SKUFLOW_CONFIG="$work/bare.yaml"
bare_pid=$started
ch0=$(cpu "$ch_pid") broker0=$(cpu "$broker_pid") proc0=$(cpu "$bare_pid")
t0=$(now)
SKUFLOW_CONFIG="$work/bare.yaml" bin/loader push --type bare --wait --no-progress --json "$file" >"$work/bare.json"
bare=$(since "$t0")
bare_ch_cpu=$(echo "$(cpu "$ch_pid") - $ch0" | bc) bare_broker_cpu=$(echo "$(cpu "$broker_pid") - $broker0" | bc)
bare_proc_cpu=$(echo "$(cpu "$bare_pid") - $proc0" | bc)
bare_final=$(ch --query "SELECT count() FROM skuflow.bare FINAL")
stop "$bare_pid"

quiet
say "bench: the loader alone"
export SKUFLOW_KAFKA_TOPIC=bench_alone SKUFLOW_CLICKHOUSE_DATABASE=bench_alone
export SKUFLOW_PROCESSOR_GROUP=bench-processor SKUFLOW_AGGREGATOR_GROUP=bench-aggregator
t0=$(now)
bin/loader push --force --no-progress --json "$file" >"$work/loader.json"
loader_wall=$(since "$t0")

# alone NAME [TAG] times $BIN/NAME, in a new group (bench-NAME, TAG added),
# until it has caught up with the loader's job; sets $took, $peak and $used.
# With a TAG it writes to a database of its own, so that every run starts
# on empty tables.
alone() {
	quiet
	say "bench: the $1 alone${2:+ ($2)}"
	local t0 pid tag=${2:+_$2} var
	var=SKUFLOW_${1^^}_GROUP
	local -x "$var=bench-$1${tag//_/-}"
	local ch0 broker0
	ch0=$(cpu "$ch_pid") broker0=$(cpu "$broker_pid")
	t0=$(now)
	start "$1" ${tag:+SKUFLOW_CLICKHOUSE_DATABASE=bench_alone$tag}
	pid=$started
	until_caught_up "${!var}"
	took=$(since "$t0")
	stop "$pid"
	# What the service cost the others while it ran (ClickHouse's
	# background merges that outlast the run are left out).
	alone_cpu="{\"$1\": $used, \"broker\": $(echo "$(cpu "$broker_pid") - $broker0" | bc), \"clickhouse\": $(echo "$(cpu "$ch_pid") - $ch0" | bc)}"
}
# The aggregator first: it loads its state from the records table when it
# starts, and must find it empty to read the whole topic, as it does when
# it runs beside the processor from the start.
alone aggregator
agg_alone=$took agg_rss=$peak agg_alone_cpu=$alone_cpu
alone processor
proc_alone=$took proc_rss=$peak proc_alone_cpu=$alone_cpu

# BENCH_VS: the same phases with this build and the other, in turns (the
# order swapped every round, so that a drift of the machine favours
# neither), each on a database of its own.
if [[ -n ${BENCH_VS:-} ]]; then
	vs=$work/vs.tsv
	for r in $(seq "${BENCH_ROUNDS:-3}"); do
		sides=(this other)
		((r % 2 == 0)) && sides=(other this)
		for name in aggregator processor; do
			for side in "${sides[@]}"; do
				BIN=bin
				[[ $side == other ]] && BIN=$BENCH_VS
				alone "$name" "${side}_$r"
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$side" "$r" "$took" "$used" "$peak" >>"$vs"
			done
		done
	done
	BIN=bin
	python3 - "$vs" "$BENCH_VS" <<'PY'
import statistics, sys
runs = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
print(f"this build against {sys.argv[2]}, alone on the filled topic, {max(int(r[2]) for r in runs)} rounds interleaved:")
print()
print("| service | seconds this/other per round | median | CPU s this/other per round | median | peak RSS this/other |")
print("|---|---|---:|---|---:|---:|")
for name in ("processor", "aggregator"):
    by = {(r[1], r[2]): r for r in runs if r[0] == name}
    rounds = sorted({r[2] for r in runs if r[0] == name}, key=int)
    ratio = lambda i: [float(by["this", k][i]) / float(by["other", k][i]) for k in rounds]
    show = lambda xs: ", ".join(f"{x:.3f}" for x in xs)
    med = lambda side, i: statistics.median(float(by[side, k][i]) for k in rounds)
    print(f"| {name} | {show(ratio(3))} | {statistics.median(ratio(3)):.3f} | "
          f"{show(ratio(4))} | {statistics.median(ratio(4)):.3f} | {med('this', 5) / med('other', 5):.3f} |")
print()
PY
fi

# kcat, a Kafka client nobody here wrote, producing the same keyed records
# (key, tab, the record as in the file) with the same compression (the
# loader's kafka.compression, snappy), to the loader's topic once every
# phase reading it is done; timed as the loader's push: the whole command.
# Twice: with the key and value alone, and with the loader's provenance
# header as well (kafka.Provenance: the job, a line, the file), that of a
# record from the middle of the file, as kcat gives every record one value:
# the same records the loader produces, byte for byte but the line number.
say "bench: kcat -P of the same keyed records (snappy), without and with the provenance header"
prov=$(kcat -C -b "$SKUFLOW_KAFKA_BROKERS" -t "$SKUFLOW_KAFKA_TOPIC" -p 0 -o beginning -c 1 -e -q -f '%h')
prov=${prov#skuflow=}
read -r prov_job _ prov_source <<<"$prov"
[[ -n $prov_job && -n $prov_source ]] || { echo "bench: no provenance header on the loader's records: ${prov:-none}" >&2; exit 1; }
header="skuflow=$prov_job $((rows / 2)) $prov_source"
python3 -c '
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        out.write(json.loads(line)["sku"] + "\t" + line)
' "$file" "$work/keyed.tsv"
t0=$(now)
kcat -P -b "$SKUFLOW_KAFKA_BROKERS" -t "$SKUFLOW_KAFKA_TOPIC" -K $'\t' -z snappy -l "$work/keyed.tsv"
kcat_s=$(since "$t0")
t0=$(now)
kcat -P -b "$SKUFLOW_KAFKA_BROKERS" -t "$SKUFLOW_KAFKA_TOPIC" -K $'\t' -z snappy -H "$header" -l "$work/keyed.tsv"
kcat_h_s=$(since "$t0")
last=$(kcat -C -b "$SKUFLOW_KAFKA_BROKERS" -t "$SKUFLOW_KAFKA_TOPIC" -p 0 -o -1 -c 1 -e -q -f '%h')
[[ $last == "$header" ]] || { echo "bench: kcat's records carry no provenance header: ${last:-none}" >&2; exit 1; }

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
    "direct": {"seconds": direct, "rows_per_s": rows / direct, "clickhouse_cpu_seconds": $direct_cpu,
               "client_cpu_seconds": $direct_client_cpu},
    "end_to_end": {"seconds": e2e_s, "rows_per_s": rows / e2e_s, "ratio_to_direct": e2e_s / direct,
                   "products_final": $final, "products_agg_total": $agg_total, "exact": $final == $distinct == $agg_total},
    "end_to_end_no_aggregate": {"seconds": $bare, "rows_per_s": rows / $bare, "ratio_to_direct": $bare / direct,
                                "final": $bare_final, "exact": $bare_final == $distinct,
                                "cpu_seconds": {"loader": json.load(open(f"{work}/bare.json"))["cpu_seconds"],
                                                "broker": $bare_broker_cpu, "processor": $bare_proc_cpu,
                                                "clickhouse": $bare_ch_cpu}},
    "loader": {"seconds": lr["produce_seconds"], "mb_per_s": size / 1e6 / lr["produce_seconds"],
               "rows_per_s": rows / lr["produce_seconds"], "peak_rss_bytes": loader["peak_rss_bytes"],
               "command_seconds": $loader_wall},
    "kcat_produce": {"seconds": $kcat_s, "rows_per_s": rows / $kcat_s, "loader_command_to_kcat": $loader_wall / $kcat_s},
    "kcat_produce_with_header": {"seconds": $kcat_h_s, "rows_per_s": rows / $kcat_h_s, "loader_command_to_kcat": $loader_wall / $kcat_h_s},
    "latency_ms": json.load(open(f"{work}/latency.json")),
    "processor": {"seconds": $proc_alone, "rows_per_s": rows / $proc_alone, "peak_rss_bytes": $proc_rss,
                  "cpu_seconds": $proc_alone_cpu},
    "aggregator": {"seconds": $agg_alone, "rows_per_s": rows / $agg_alone, "peak_rss_bytes": $agg_rss,
                   "cpu_seconds": $agg_alone_cpu},
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
row("end to end, a type without an aggregate", $bare, ratio=f"{$bare / direct:.2f}x")
row("loader alone (read, validate, produce)", lr["produce_seconds"], mib(loader["peak_rss_bytes"]), f"{lr['produce_seconds'] / direct:.2f}x")
row("processor alone (filled topic -> products)", $proc_alone, mib($proc_rss), f"{$proc_alone / direct:.2f}x")
row("aggregator alone (filled topic -> counts)", $agg_alone, mib($agg_rss), f"{$agg_alone / direct:.2f}x")
row("loader push, the whole command", $loader_wall, ratio=f"{$loader_wall / direct:.2f}x")
row("kcat -P of the same keys and values (snappy)", $kcat_s, ratio=f"{$kcat_s / direct:.2f}x")
row("kcat -P, and the provenance header", $kcat_h_s, ratio=f"{$kcat_h_s / direct:.2f}x")
print()
print(f"end to end peak RSS: loader {mib(e2e['peak_rss_bytes'])}, processor {mib($proc_e2e_rss)}, aggregator {mib($agg_e2e_rss)}")
c = r["end_to_end_cpu_seconds"]
total = sum(c.values())
print(f"direct load CPU seconds: clickhouse {$direct_cpu:.2f}, clickhouse-client {$direct_client_cpu:.2f}; "
      f"{$direct_cpu + $direct_client_cpu:.2f} in all, {($direct_cpu + $direct_client_cpu) / direct:.2f} of {os.cpu_count()} cores busy")
print(f"end to end CPU seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in c.items()) +
      f"; {total:.2f} in all, {total / e2e_s:.2f} of {os.cpu_count()} cores busy for {e2e_s:.2f} s")
c = r["end_to_end_no_aggregate"]["cpu_seconds"]
print(f"end to end without an aggregate, CPU seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in c.items()) +
      f"; {sum(c.values()):.2f} in all")
for name in ("processor", "aggregator"):
    c = r[name]["cpu_seconds"]
    print(f"{name} alone CPU seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in c.items()) +
          f"; {sum(c.values()):.2f} in all, {sum(c.values()) / r[name]['seconds']:.2f} of {os.cpu_count()} cores busy")
print(f"loader against kcat -P, the same keyed records and compression: {$loader_wall / $kcat_s:.2f}x kcat's time "
      f"without the provenance header, {$loader_wall / $kcat_h_s:.2f}x with it")
lat = r["latency_ms"]
for way, what in (("push", "loader push --wait of one record"), ("api", "POST /v1/records to visible in FINAL"),
                  ("api_back_to_back", "POST /v1/records to visible in FINAL, back to back")):
    if way in lat:
        print(f"latency, {what}: p50 {lat[way]['p50_ms']:.0f} ms, p99 {lat[way]['p99_ms']:.0f} ms ({len(lat[way]['runs_ms'])} runs)")
print(f"exact: products FINAL {$final:,}, products_agg total {$agg_total:,}, distinct skus {$distinct:,}: {'yes' if r['end_to_end']['exact'] else 'NO'}")
print(f"written to {out}")
if not r["end_to_end"]["exact"]:
    sys.exit("the end-to-end result is not exact")
if not r["end_to_end_no_aggregate"]["exact"]:
    sys.exit(f"the end-to-end result without an aggregate is not exact: bare FINAL {$bare_final:,}, distinct skus {$distinct:,}")
PY
