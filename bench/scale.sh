#!/usr/bin/env bash
# `make bench-scale`: how the processor and the aggregator scale with the
# number of instances in one consumer group, on a private stack (free
# ports, data in a temporary folder) like bench/run.sh's.
#
#   BENCH_ROWS=4000000        rows of the generated products file
#   BENCH_PARTITIONS=12       partitions of the topic
#   BENCH_INSTANCES="1 2 4"   instance counts to run
#   BENCH_ROUNDS=3            rounds; the order of the counts is reversed
#                             every other round, so that a drift of the
#                             machine favours none
#   BENCH_SERVICES="aggregator processor"
#   BENCH_GOMAXPROCS=N        run the instances (only) with GOMAXPROCS=N
#   BENCH_CLUSTER=1           ClickHouse as a cluster of 2 shards x 2
#                             replicas on ZooKeeper (deploy/stack.sh
#                             up-cluster on free ports, clickhouse.cluster
#                             skuflow): the services write through the
#                             Distributed tables; ClickHouse's CPU is the
#                             four servers' and ZooKeeper's
#   BENCH_OUT=bench/scale.json
#
# The file is pushed once (`loader push`, nobody reading) to fill the
# topic. Then every run starts N instances of one service at once, in a new
# consumer group and on a new database (so every run starts on empty
# tables and an empty aggregator state), and is timed until the group has
# committed the whole topic (bench/caughtup). Per instance it reads the
# records handled (the service's metrics endpoint), its CPU seconds
# (/proc/PID/stat) and peak RSS (VmHWM); around the run, the CPU seconds
# of ClickHouse, of the broker and of the whole machine (/proc/stat, so
# that what other programs took shows). Each run ends with the exactness
# check: products FINAL (processor) or the sum of products_agg
# (aggregator) equals the file's distinct skus. The database is then
# dropped, so that its merges do not run into the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${BENCH_ROWS:-4000000}
partitions=${BENCH_PARTITIONS:-12}
read -ra counts <<<"${BENCH_INSTANCES:-1 2 4}"
read -ra services <<<"${BENCH_SERVICES:-aggregator processor}"
rounds=${BENCH_ROUNDS:-3}
out=${BENCH_OUT:-bench/scale.json}
work=$(mktemp -d "${TMPDIR:-/tmp}/skuflow-scale.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cluster=${BENCH_CLUSTER:-}
# free_ports N prints the first of N free consecutive ports (the cluster's
# servers take a run of them).
free_ports() {
	python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(1000):
    base = random.randrange(20000, 60000)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(base); break
PY
}
export SKUFLOW_DATA_DIR=$work/data SKUFLOW_BROKER_PORT=$(free_port)
if [[ -n $cluster ]]; then
	# Native ports base..base+3, interserver base+9..base+12 (stack.sh).
	base=$(free_ports 13)
	export SKUFLOW_CH_TCP_PORT=$base SKUFLOW_CH_HTTP_PORT=$(free_ports 4) SKUFLOW_ZK_PORT=$(free_port)
	export SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))
	export SKUFLOW_CLICKHOUSE_CLUSTER=skuflow
else
	export SKUFLOW_CH_TCP_PORT=$(free_port) SKUFLOW_CH_HTTP_PORT=$(free_port)
	export SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:$SKUFLOW_CH_TCP_PORT
fi
export SKUFLOW_KAFKA_BROKERS=127.0.0.1:$SKUFLOW_BROKER_PORT
export SKUFLOW_STACK_SERVICES=""
# Products alone, whatever ./skuflow.yaml declares.
export SKUFLOW_CONFIG=""
export SKUFLOW_KAFKA_TOPIC=scale SKUFLOW_KAFKA_PARTITIONS=$partitions SKUFLOW_CLICKHOUSE_DATABASE=scale_fill
# Any free port for every instance's metrics; each logs the one it got.
export SKUFLOW_PROCESSOR_METRICS_ADDR=127.0.0.1:0 SKUFLOW_AGGREGATOR_METRICS_ADDR=127.0.0.1:0
# The binaries are copied, so that a `make build` meanwhile (of a tree
# being edited) changes nothing in the middle of the runs.
mkdir -p "$work/bin"
cp bin/processor bin/aggregator bin/loader "$work/bin/"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	SKUFLOW_BIN=$work/bin deploy/stack.sh down >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
ch() { clickhouse-client --host 127.0.0.1 --port "$SKUFLOW_CH_TCP_PORT" "$@"; }
hz=$(getconf CLK_TCK)
# cpu PID prints the CPU seconds (user + system) process PID has used.
cpu() { awk -v hz="$hz" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# machine prints the CPU seconds all cores have been busy since boot.
machine() { awk -v hz="$hz" '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz}' /proc/stat; }
load() { cut -d' ' -f1 /proc/loadavg; }
# metric PORT NAME prints the value of NAME{type="products"} on an
# instance's metrics endpoint.
metric() {
	curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m "{type=\"products\"}" {printf "%d", $2}'
}

go build -o "$work/caughtup" ./bench/caughtup
say "scale: starting ClickHouse and the broker ($partitions partitions) in $work"
SKUFLOW_BIN=$work/bin deploy/stack.sh "up${cluster:+-cluster}" >/dev/null
if [[ -n $cluster ]]; then
	ch_pids=()
	for n in ch-1-1 ch-1-2 ch-2-1 ch-2-2 zookeeper; do ch_pids+=("$(cat "$SKUFLOW_DATA_DIR/run/$n.pid")"); done
	on_cluster=" ON CLUSTER skuflow"
	parts_from="remote('$SKUFLOW_CLICKHOUSE_ADDR', system.parts)" parts_table=products_local
else
	parts_from=system.parts parts_table=products
	ch_pids=("$(cat "$SKUFLOW_DATA_DIR/run/clickhouse.pid")")
	on_cluster=""
fi
# ch_cpu prints the CPU seconds of ClickHouse: every server (and ZooKeeper).
ch_cpu() {
	local p sum=0
	for p in "${ch_pids[@]}"; do sum=$(echo "$sum + $(cpu "$p")" | bc); done
	echo "$sum"
}
broker_pid=$(cat "$SKUFLOW_DATA_DIR/run/broker.pid")
file=$work/products.ndjson
say "scale: generating $rows rows"
"$work/bin/loader" gen --rows "$rows" --dup-rate 0.02 --rename-rate 0.01 --seed 42 --out "$file" 2>/dev/null
size=$(stat -c %s "$file")
ch --query "CREATE TABLE default.skus (sku String) ENGINE = Log"
ch --input_format_skip_unknown_fields=1 --query "INSERT INTO default.skus FORMAT JSONEachRow" <"$file"
distinct=$(ch --query "SELECT uniqExact(sku) FROM default.skus")
ch --query "DROP TABLE default.skus"

say "scale: filling the topic"
broker0=$(cpu "$broker_pid")
"$work/bin/loader" push --force --no-progress --json "$file" >"$work/fill.json"
fill_broker=$(echo "$(cpu "$broker_pid") - $broker0" | bc)
# What the topic takes on the broker's disk (record batches as produced:
# snappy, keys and headers included).
topic_bytes=$(du -sb "$SKUFLOW_DATA_DIR/broker/partitions" | cut -f1)

runs=$work/runs.tsv
# run SERVICE N ROUND starts N instances of SERVICE at once and times them
# until their group has committed the whole topic; appends one line per
# instance to $runs.
run() {
	local svc=$1 n=$2 r=$3 db=scale_$1_$2_$3 group=scale-$1-$2-$3 i t0 took final_s logs=() ports=() ipids=() handled consumed rss used inserts insert_s
	local -x SKUFLOW_CLICKHOUSE_DATABASE=$db "SKUFLOW_${svc^^}_GROUP=$group"
	say "scale: round $r, $n $svc instance(s)"
	local ch0 broker0 m0 load0
	ch0=$(ch_cpu) broker0=$(cpu "$broker_pid") m0=$(machine) load0=$(load)
	t0=$(now)
	for ((i = 0; i < n; i++)); do
		logs+=("$work/$svc.$n.$r.$i.log")
		env ${BENCH_GOMAXPROCS:+GOMAXPROCS=$BENCH_GOMAXPROCS} "$work/bin/$svc" >"${logs[i]}" 2>&1 &
		ipids+=($!)
		pids+=($!)
	done
	"$work/caughtup" -brokers "$SKUFLOW_KAFKA_BROKERS" -topic "$SKUFLOW_KAFKA_TOPIC" -group "$group"
	took=$(since "$t0")
	local ch_cpu broker_cpu machine_cpu
	ch_cpu=$(echo "$(ch_cpu) - $ch0" | bc) broker_cpu=$(echo "$(cpu "$broker_pid") - $broker0" | bc)
	machine_cpu=$(echo "$(machine) - $m0" | bc)
	for ((i = 0; i < n; i++)); do
		ports+=("$(grep -m1 -oE 'metrics listening.*127\.0\.0\.1:[0-9]+' "${logs[i]}" | grep -oE '[0-9]+$')")
	done
	local name=skuflow_records_inserted_total
	[[ $svc == aggregator ]] && name=skuflow_records_consumed_total
	for ((i = 0; i < n; i++)); do
		handled=$(metric "${ports[i]}" "$name")
		consumed=$(metric "${ports[i]}" skuflow_records_consumed_total)
		# The processor's INSERTs: how many, and their seconds in all.
		inserts=$(metric "${ports[i]}" skuflow_insert_duration_seconds_count)
		insert_s=$(curl -fsS "http://127.0.0.1:${ports[i]}/metrics" | awk '$1 == "skuflow_insert_duration_seconds_sum{type=\"products\"}" {print $2}')
		rss=$(awk '/^VmHWM:/ {print $2 * 1024}' "/proc/${ipids[i]}/status")
		used=$(cpu "${ipids[i]}")
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$svc" "$n" "$r" "$i" "$took" "$handled" "$consumed" "$used" "$rss" \
			"$ch_cpu" "$broker_cpu" "$machine_cpu" "$load0" "${inserts:-0}" "${insert_s:-0}" >>"$work/instances.tsv"
	done
	for ((i = 0; i < n; i++)); do kill "${ipids[i]}"; done
	for ((i = 0; i < n; i++)); do wait "${ipids[i]}" || { cat "${logs[i]}" >&2; exit 1; }; done
	local got parts
	if [[ $svc == processor ]]; then
		local t1
		t1=$(now)
		got=$(ch --query "SELECT count() FROM $db.products FINAL")
		final_s=$(since "$t1")
		# On a cluster, the parts of the shard-local tables of every server
		# (each shard counted once per replica).
		parts=$(ch --query "SELECT sum(data_compressed_bytes), sum(data_uncompressed_bytes), sum(rows), count() FROM $parts_from WHERE database = '$db' AND table = '$parts_table' AND active" | tr '\t' ' ')
	else
		got=$(ch --query "SELECT sum(no_of_products) FROM $db.products_agg")
		parts="0 0 0 0" final_s=0
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$svc" "$n" "$r" "$took" "$got" "$parts" "$(load)" "$final_s" >>"$runs"
	[[ $got == "$distinct" ]] || { say "scale: NOT EXACT: $db has $got, the file $distinct distinct skus"; exit 1; }
	# The last processor run's database stays for idle (below).
	[[ $db == "$keep_db" ]] || ch --query "DROP DATABASE $db$on_cluster" >/dev/null
}

# The database and group of the last processor run (the counts run in
# reverse order in even rounds).
last=${counts[-1]}
((rounds % 2 == 0)) && last=${counts[0]}
keep_db=scale_processor_${last}_$rounds keep_group=scale-processor-$last-$rounds
say "scale: load before: $(cat /proc/loadavg)"
load_before=$(load)
for r in $(seq "$rounds"); do
	order=("${counts[@]}")
	if ((r % 2 == 0)); then
		order=()
		for ((k = ${#counts[@]} - 1; k >= 0; k--)); do order+=("${counts[k]}"); done
	fi
	for svc in "${services[@]}"; do
		for n in "${order[@]}"; do run "$svc" "$n" "$r"; done
	done
done
# idle: what a processor costs that does not grow with the records: its
# start-up (configuration, ClickHouse checks, joining the group) until 1 s
# after its started line, then 5 s with nothing to read (heartbeats, the
# lag asked of the broker every second), in the group and database of the
# last processor run, which has committed the whole topic and holds its
# rows (a processor on an empty database would read the topic again).
idle() {
	local log=$work/processor.idle.log pid c0
	local -x SKUFLOW_CLICKHOUSE_DATABASE=$keep_db SKUFLOW_PROCESSOR_GROUP=$keep_group
	env ${BENCH_GOMAXPROCS:+GOMAXPROCS=$BENCH_GOMAXPROCS} "$work/bin/processor" >"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 300); do grep -q 'msg=started' "$log" && break; sleep 0.05; done
	sleep 1
	c0=$(cpu "$pid")
	sleep 5
	printf '%s\t%s\n' "$c0" "$(echo "($(cpu "$pid") - $c0) / 5" | bc -l)" >"$work/idle.tsv"
	kill "$pid"
	wait "$pid" || { cat "$log" >&2; exit 1; }
	ch --query "DROP DATABASE $keep_db$on_cluster" >/dev/null
}
[[ " ${services[*]} " == *" processor "* ]] && idle
say "scale: load after: $(cat /proc/loadavg)"
load_after=$(load)

python3 - "$out" "$work" <<PY
import json, os, statistics, subprocess, sys, datetime
out, work = sys.argv[1], sys.argv[2]
rows, size, distinct, partitions = $rows, $size, $distinct, $partitions
fill = json.load(open(f"{work}/fill.json"))
cluster = "$cluster" != ""
replicas = 2 if cluster else 1
inst = [l.split("\t") for l in open(f"{work}/instances.tsv").read().splitlines()]
runs = [l.split("\t") for l in open(f"{work}/runs.tsv").read().splitlines()]
med = statistics.median
table = []
for svc in dict.fromkeys(i[0] for i in inst):
    for n in sorted({int(i[1]) for i in inst if i[0] == svc}):
        per = {}
        for i in inst:
            if i[0] == svc and int(i[1]) == n:
                per.setdefault(i[2], []).append(i)
        rs = []
        for rnd, xs in sorted(per.items()):
            x = xs[0]
            secs = float(x[4])
            svc_cpu = sum(float(y[7]) for y in xs)
            ch_cpu, br_cpu, mach = float(x[9]), float(x[10]), float(x[11])
            rs.append({
                "round": int(rnd), "seconds": secs, "rows_per_s": rows / secs,
                "handled": [int(y[5] or 0) for y in xs], "consumed": [int(y[6] or 0) for y in xs],
                "cpu_seconds": [float(y[7]) for y in xs], "peak_rss_bytes": [int(y[8]) for y in xs],
                "clickhouse_cpu_seconds": ch_cpu, "broker_cpu_seconds": br_cpu, "machine_cpu_seconds": mach,
                "load_before": float(x[12]),
                "inserts": sum(int(y[13] or 0) for y in xs), "insert_seconds": sum(float(y[14] or 0) for y in xs),
                "service_cpu_s_per_mrows": svc_cpu / rows * 1e6,
                "clickhouse_cpu_s_per_mrows": ch_cpu / rows * 1e6,
                "broker_cpu_s_per_mrows": br_cpu / rows * 1e6,
                "ours_busy_cores": (svc_cpu + ch_cpu + br_cpu) / secs,
                "machine_busy_cores": mach / secs,
            })
        m = lambda k: med(r[k] for r in rs)
        table.append({
            "service": svc, "instances": n, "rounds": rs,
            "seconds": m("seconds"), "rows_per_s": rows / m("seconds"),
            "rows_per_s_per_instance": rows / m("seconds") / n,
            "seconds_per_round": [r["seconds"] for r in rs],
            "service_cpu_s_per_mrows": m("service_cpu_s_per_mrows"),
            "clickhouse_cpu_s_per_mrows": m("clickhouse_cpu_s_per_mrows"),
            "broker_cpu_s_per_mrows": m("broker_cpu_s_per_mrows"),
            "peak_rss_bytes": med(max(r["peak_rss_bytes"]) for r in rs),
            "ours_busy_cores": m("ours_busy_cores"), "machine_busy_cores": m("machine_busy_cores"),
            # records handled by the least and the busiest instance, as a
            # share of an even split (1.00 each when perfectly even)
            "handled_share": (min(min(r["handled"]) for r in rs) / rows * n, max(max(r["handled"]) for r in rs) / rows * n),
            "consumed_over_rows": med(sum(r["consumed"]) / rows for r in rs),
        })
        if svc == "processor":
            # Each processor keeps one INSERT in flight: its rate is bounded
            # by rows per INSERT / seconds per INSERT.
            table[-1]["rows_per_insert"] = med(rows / r["inserts"] for r in rs if r["inserts"])
            table[-1]["seconds_per_insert"] = med(r["insert_seconds"] / r["inserts"] for r in rs if r["inserts"])
fits = {}
for t in table:
    # Each instance's CPU against the records it handled, over every
    # instance of every run of the service (least squares): the slope is
    # the CPU a record costs, the intercept what an instance costs
    # whatever it handles (start-up, group join, idling, and contention
    # with the other processes).
    f = fits.setdefault(t["service"], ([], []))
    for r in t["rounds"]:
        f[0].extend(r["handled"])
        f[1].extend(r["cpu_seconds"])
for svc, (xs, ys) in list(fits.items()):
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0
    fits[svc] = {"cpu_s_per_mrows": a * 1e6, "cpu_s_per_instance": my - a * mx}
idle = None
if os.path.exists(f"{work}/idle.tsv"):
    start, per_s = map(float, open(f"{work}/idle.tsv").read().split())
    idle = {"startup_cpu_seconds": start, "idle_cpu_per_s": per_s}
parts = [p for p in runs if p[0] == "processor"]
comp = sum(int(p[5].split()[0]) for p in parts) if parts else 0
unc = sum(int(p[5].split()[1]) for p in parts) if parts else 0
res = {
    "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "clickhouse": "2 shards x 2 replicas" if cluster else "one server",
    "machine": {"cpus": os.cpu_count(), "gomaxprocs": "${BENCH_GOMAXPROCS:-}", "load_before": $load_before, "load_after": $load_after},
    "file": {"rows": rows, "bytes": size, "bytes_per_row": size / rows, "distinct_skus": distinct, "partitions": partitions},
    "fill": {"seconds": fill["results"][0]["produce_seconds"], "loader_cpu_seconds": fill.get("cpu_seconds"),
             "loader_peak_rss_bytes": fill.get("peak_rss_bytes"), "broker_cpu_seconds": $fill_broker},
    "topic": {"bytes": $topic_bytes, "bytes_per_record": $topic_bytes / rows},
    "products_parts": {"compressed_bytes": comp, "uncompressed_bytes": unc,
                       "ratio": unc / comp if comp else None,
                       # per row and replica (a cluster's parts are counted on each of its 2 replicas)
                       "compressed_bytes_per_row": comp / len(parts) / rows / replicas if parts else None,
                       "uncompressed_bytes_per_row": unc / len(parts) / rows / replicas if parts else None,
                       # SELECT count() FROM products FINAL after each processor run
                       "final_count_seconds": med(float(p[7]) for p in parts) if parts else None},
    "runs": [{"service": p[0], "instances": int(p[1]), "round": int(p[2]), "seconds": float(p[3]), "exact": int(p[4]) == distinct} for p in runs],
    "table": table,
    "per_instance_fit": fits,
    "processor_idle": idle,
}
json.dump(res, open(out, "w"), indent=2)
open(out, "a").write("\n")
mib = lambda b: f"{b / 2**20:.0f} MiB"
gmp = ", instances with GOMAXPROCS=${BENCH_GOMAXPROCS:-}" if "${BENCH_GOMAXPROCS:-}" else ""
gmp += ", ClickHouse: 2 shards x 2 replicas" if cluster else ""
print(f"skuflow scaling bench: {rows:,} rows, {size / 1e6:.1f} MB NDJSON ({size / rows:.0f} B a record), "
      f"{distinct:,} distinct skus, {partitions} partitions ({res['commit']}, {os.cpu_count()} cores{gmp}), "
      f"medians of {$rounds} rounds; load average {$load_before} before, {$load_after} after")
print()
print("| service | instances | seconds per round | rows/s total | rows/s per instance | service CPU s/M rows | ClickHouse CPU s/M rows | broker CPU s/M rows | peak RSS per instance | our busy cores | machine busy cores |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for t in table:
    print(f"| {t['service']} | {t['instances']} | {', '.join(f'{s:.2f}' for s in t['seconds_per_round'])} | "
          f"{t['rows_per_s']:,.0f} | {t['rows_per_s_per_instance']:,.0f} | {t['service_cpu_s_per_mrows']:.2f} | "
          f"{t['clickhouse_cpu_s_per_mrows']:.2f} | {t['broker_cpu_s_per_mrows']:.2f} | {mib(t['peak_rss_bytes'])} | "
          f"{t['ours_busy_cores']:.2f} | {t['machine_busy_cores']:.2f} |")
print()
for t in table:
    lo, hi = t["handled_share"]
    print(f"{t['service']} x{t['instances']}: records handled per instance {lo:.2f}-{hi:.2f} of an even share; "
          f"consumed {t['consumed_over_rows']:.3f}x the rows in all" +
          (f"; {t['rows_per_insert']:,.0f} rows an INSERT, {t['seconds_per_insert'] * 1000:.0f} ms each" if "rows_per_insert" in t else ""))
for svc, f in fits.items():
    print(f"{svc}: CPU of an instance = {f['cpu_s_per_mrows']:.2f} s per million records handled + {f['cpu_s_per_instance']:.2f} s (least squares over every instance)")
if idle:
    print(f"an idle processor: {idle['startup_cpu_seconds']:.2f} CPU s to start and join, then {idle['idle_cpu_per_s'] * 1000:.1f} CPU ms a second")
f = res["fill"]
print(f"fill (loader push, nobody reading): {f['seconds']:.2f} s, loader {f['loader_cpu_seconds']} CPU s, broker {f['broker_cpu_seconds']:.2f} CPU s")
p = res["products_parts"]
print(f"the topic on the broker's disk: {res['topic']['bytes'] / 1e6:.1f} MB, {res['topic']['bytes_per_record']:.1f} B a record (snappy)")
if p["ratio"]:
    print(f"products on disk: {p['compressed_bytes_per_row']:.1f} compressed bytes a row{' a replica' if cluster else ''} ({p['uncompressed_bytes_per_row']:.1f} uncompressed, "
          f"{p['ratio']:.2f}x); count() FINAL of {distinct:,} rows: {p['final_count_seconds']:.2f} s (median)")
print(f"exact: every run ({len(runs)}): yes")
print(f"written to {out}")
PY
