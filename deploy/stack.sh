#!/usr/bin/env bash
# The local stack without Docker: Debian's ClickHouse server and the embedded
# Kafka broker (cmd/broker), as background processes of this user with their
# data, logs and pid files under .data/.
#
#   deploy/stack.sh install   install clickhouse-server, clickhouse-client, kcat, zstd, chromium, prometheus, docker-compose if missing
#   deploy/stack.sh up        install if needed, build bin/broker if stale, start what is stopped
#   deploy/stack.sh up-cluster  the same on a ClickHouse cluster: ZooKeeper and 2 shards x 2
#                             replicas on 19000-19003 (clickhouse.cluster "skuflow"), for trying it by hand
#   deploy/stack.sh down      stop what up started
#   deploy/stack.sh status    one line per service
#
# Settings (environment, with defaults):
#   SKUFLOW_CH_TCP_PORT=19000    ClickHouse native port (a system server keeps 9000)
#   SKUFLOW_CH_HTTP_PORT=18123   ClickHouse HTTP port (a system server keeps 8123)
#   SKUFLOW_BROKER_PORT=19092    broker port; also the broker's own broker.port key
#   SKUFLOW_DATA_DIR=.data       data, logs and pid files (relative to the repository)
#   SKUFLOW_BIN=bin              where `make build` puts the binaries
#   SKUFLOW_INBOX=inbox          the folder the watcher pushes files from (relative to the repository)
#   SKUFLOW_STACK_SERVICES="processor aggregator watcher api"
#                                what up starts after ClickHouse and the broker (benchmarks start their own)
#   SKUFLOW_START_TIMEOUT=60     seconds a service may take to answer
#   SKUFLOW_STOP_TIMEOUT=20      seconds a service may take to stop before SIGKILL
#
# A service is started with `start_service NAME CMD...`; if a function
# ready_NAME exists, up waits until it succeeds. Its pid is in
# $DATA/run/NAME.pid and its command line in $DATA/run/NAME.cmdline, which
# is compared with /proc/PID/cmdline so that a stale pid reused by another
# program is never taken for the service.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }

DATA=$(abs "${SKUFLOW_DATA_DIR:-.data}")
BIN=$(abs "${SKUFLOW_BIN:-bin}")
CH_TCP_PORT=${SKUFLOW_CH_TCP_PORT:-19000}
CH_HTTP_PORT=${SKUFLOW_CH_HTTP_PORT:-18123}
BROKER_PORT=${SKUFLOW_BROKER_PORT:-19092}
START_TIMEOUT=${SKUFLOW_START_TIMEOUT:-60}
STOP_TIMEOUT=${SKUFLOW_STOP_TIMEOUT:-20}
RUN=$DATA/run
LOGS=$DATA/logs
CH_DIR=$DATA/clickhouse
INBOX=$(abs "${SKUFLOW_INBOX:-inbox}")

# Infrastructure, in start order. Other services (processor, aggregator,
# watcher) are stopped before these, in any order.
# The cluster's (up-cluster) come first, and are listed only when started.
CLUSTER_INFRA=(zookeeper ch-1-1 ch-1-2 ch-2-1 ch-2-2)
INFRA=("${CLUSTER_INFRA[@]}" clickhouse broker)
ZK_PORT=${SKUFLOW_ZK_PORT:-12181}
# Ports each service listens on, checked before it starts.
declare -A PORTS=([clickhouse]="$CH_TCP_PORT $CH_HTTP_PORT" [broker]="$BROKER_PORT")
PACKAGES=(clickhouse-server clickhouse-client kcat zstd chromium prometheus docker-compose zookeeper)

# Services started by up see the stack's addresses when the ports were moved
# (an explicit SKUFLOW_CLICKHOUSE_ADDR or SKUFLOW_KAFKA_BROKERS still wins;
# otherwise skuflow.yaml or config.Default() applies).
if [[ -n ${SKUFLOW_CH_TCP_PORT:-} && -z ${SKUFLOW_CLICKHOUSE_ADDR:-} ]]; then
	export SKUFLOW_CLICKHOUSE_ADDR=127.0.0.1:$CH_TCP_PORT
fi
if [[ -n ${SKUFLOW_BROKER_PORT:-} && -z ${SKUFLOW_KAFKA_BROKERS:-} ]]; then
	export SKUFLOW_KAFKA_BROKERS=127.0.0.1:$BROKER_PORT
fi

say() { printf '%s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

# --- install ----------------------------------------------------------------

missing_packages() {
	local p
	for p in "${PACKAGES[@]}"; do
		if command -v dpkg-query >/dev/null; then
			[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || printf '%s\n' "$p"
		else
			find_program "$p" >/dev/null || printf '%s\n' "$p"
		fi
	done
}

cmd_install() {
	install_packages
	install_duckdb
}

# install_duckdb installs DuckDB's Node.js client from the npm registry
# into deploy/duckdb (the versions in its package-lock.json): the tests
# read exported Parquet files with it.
install_duckdb() {
	local dir=$ROOT/deploy/duckdb
	[[ -d $dir/node_modules/@duckdb/node-api ]] && return
	command -v npm >/dev/null || die "install: npm is needed for DuckDB (deploy/duckdb): install Node.js and npm"
	mkdir -p "$LOGS"
	local log=$LOGS/install-duckdb.log
	say "install: npm ci in deploy/duckdb (log in $log)"
	if ! npm ci --prefix "$dir" --no-audit --no-fund >"$log" 2>&1; then
		tail -n 20 "$log" | sed 's/^/    /' >&2
		die "install: npm ci in deploy/duckdb failed; see $log"
	fi
}

install_packages() {
	local missing
	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]} == 0)); then
		say "install: ${PACKAGES[*]} already installed"
		return
	fi
	command -v apt-get >/dev/null ||
		die "missing ${missing[*]} and no apt-get: install them with this system's package manager"
	local sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null ||
			die "missing ${missing[*]}: installing needs root; run 'deploy/stack.sh install' as root or install sudo"
		sudo=(sudo)
	fi
	mkdir -p "$LOGS"
	local log=$LOGS/install.log began=$SECONDS
	say "install: apt-get update && apt-get install ${missing[*]} (log in $log)"
	# The server package may start a system ClickHouse on 9000/8123; the
	# stack does not use it and does not clash with it.
	if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		tail -n 20 "$log" | sed 's/^/    /' >&2
		die "install: apt-get failed; see $log"
	fi
	say "install: done in $((SECONDS - began)) s"
}

# find_program NAME prints the path of a system program, also where Debian
# puts servers (/usr/sbin, not on a non-root PATH).
find_program() {
	local p
	if p=$(command -v "$1"); then
		printf '%s\n' "$p"
		return
	fi
	for p in /usr/sbin/"$1" /usr/bin/"$1"; do
		[[ -x $p ]] && { printf '%s\n' "$p"; return; }
	done
	return 1
}

# --- processes --------------------------------------------------------------

# running_pid NAME prints the pid of NAME if it runs: its pid file names a
# live process whose command line is the one up started.
running_pid() {
	local pidfile=$RUN/$1.pid pid
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# Through a pipe: given the file, cmp -s trusts /proc's size of 0 and says
	# "differ" unread. A zombie's cmdline is empty, so it never matches.
	# shellcheck disable=SC2002
	cat "/proc/$pid/cmdline" 2>/dev/null | cmp -s - "$RUN/$1.cmdline" || return 1
	printf '%s\n' "$pid"
}

# alive PID: the process exists and is not a zombie (field 3 of stat, after
# the parenthesised name).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# log_files NAME lists the logs worth showing when NAME fails.
log_files() {
	printf '%s\n' "$LOGS/$1.log"
	case $1 in
	clickhouse) printf '%s\n' "$CH_DIR/log/clickhouse-server.err.log" "$CH_DIR/log/clickhouse-server.log" ;;
	esac
}

# show_logs NAME prints what NAME wrote since it was started (LOG_OFFSET)
# and the end of its other logs.
show_logs() {
	local f
	while read -r f; do
		[[ -s $f ]] || continue
		printf '%s: last lines of %s:\n' "$1" "$f" >&2
		if [[ $f == "$LOGS/$1.log" ]]; then
			tail -c "+$((LOG_OFFSET + 1))" "$f" | tail -n 25
		else
			tail -n 12 "$f"
		fi | sed 's/^/    /' >&2
	done < <(log_files "$1")
}

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_service NAME CMD... starts CMD in the background, in its own session
# so that it outlives this shell and ^C, with its output appended to
# $LOGS/NAME.log, and waits for ready_NAME if that function exists. A NAME
# that already runs is left alone.
start_service() {
	local name=$1 pid
	shift
	if pid=$(running_pid "$name"); then
		say "$name: already running (pid $pid)"
		return
	fi
	local port
	for port in ${PORTS[$name]:-}; do
		port_in_use "$port" &&
			die "$name: 127.0.0.1:$port is in use by another program (see the port settings in deploy/stack.sh)"
	done
	mkdir -p "$RUN" "$LOGS"
	local log=$LOGS/$name.log
	printf '=== %s %s\n' "$(date '+%F %T')" "$*" >>"$log"
	# ready_NAME functions read the log from here on.
	LOG_OFFSET=$(stat -c %s "$log")
	# The subshell is not a process group leader, so setsid does not fork
	# and $! is the service itself once exec'd.
	(cd "$ROOT" && exec setsid "$@" </dev/null >>"$log" 2>&1) &
	pid=$!
	printf '%s\0' "$@" >"$RUN/$name.cmdline"
	printf '%s\n' "$pid" >"$RUN/$name.pid"

	local began=${EPOCHREALTIME//[.,]/} detail=""
	if declare -F "ready_$name" >/dev/null; then
		until detail=$("ready_$name"); do
			if ! alive "$pid"; then
				say "$name: exited during start" >&2
				rm -f "$RUN/$name.pid" "$RUN/$name.cmdline"
				show_logs "$name"
				exit 1
			fi
			if ((${EPOCHREALTIME//[.,]/} - began >= START_TIMEOUT * 1000000)); then
				say "$name: not answering after $START_TIMEOUT s; stopping it" >&2
				show_logs "$name"
				stop_service "$name" >/dev/null
				exit 1
			fi
			sleep 0.2
		done
	else
		sleep 1
		alive "$pid" || { say "$name: exited during start" >&2; show_logs "$name"; exit 1; }
	fi
	local ms=$(((${EPOCHREALTIME//[.,]/} - began) / 1000))
	say "$name: started (pid $pid)${detail:+, $detail} in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s"
}

# stop_service NAME sends SIGTERM, waits STOP_TIMEOUT, then SIGKILL.
stop_service() {
	local name=$1 pid
	if ! pid=$(running_pid "$name"); then
		if [[ -f $RUN/$name.pid ]]; then
			say "$name: not running (stale pid file removed)"
		else
			say "$name: stopped"
		fi
		rm -f "$RUN/$name.pid" "$RUN/$name.cmdline"
		return
	fi
	if ! kill -TERM "$pid" 2>/dev/null && alive "$pid"; then
		die "$name: cannot signal pid $pid (started by another user?)"
	fi
	local waited=0
	while alive "$pid" && ((waited < STOP_TIMEOUT * 10)); do
		sleep 0.1
		waited=$((waited + 1))
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		waited=0
		while alive "$pid" && ((waited < 50)); do
			sleep 0.1
			waited=$((waited + 1))
		done
		alive "$pid" && die "$name: pid $pid survives SIGKILL"
		say "$name: killed (pid $pid) after $STOP_TIMEOUT s without stopping"
	else
		say "$name: stopped (pid $pid)"
	fi
	rm -f "$RUN/$name.pid" "$RUN/$name.cmdline"
}

# services lists the infrastructure and every other service with a pid file.
services() {
	local s f
	for s in "${INFRA[@]}"; do
		[[ " ${CLUSTER_INFRA[*]} " == *" $s "* && ! -e $RUN/$s.pid ]] || printf '%s\n' "$s"
	done
	for f in "$RUN"/*.pid; do
		[[ -e $f ]] || continue
		s=$(basename "$f" .pid)
		[[ " ${INFRA[*]} " == *" $s "* ]] || printf '%s\n' "$s"
	done
}

# build_if_stale NAME brings $BIN/NAME up to date with `go build`, which
# knows best what is stale; with nothing changed it costs well under a
# second (`make build` may have built it). Without go, an existing binary
# is used as it is.
build_if_stale() {
	local name=$1 out=$BIN/$1 before=none
	if ! command -v go >/dev/null; then
		[[ -x $out ]] || die "$out is missing and go is not on PATH to build it"
		return
	fi
	[[ -e $out ]] && before=$(cksum <"$out")
	(cd "$ROOT" && go build -o "$out" "./cmd/$name") || die "$name: go build ./cmd/$name failed"
	[[ $(cksum <"$out") == "$before" ]] || say "$name: built $out"
}

# --- services ---------------------------------------------------------------

start_clickhouse() {
	local server
	server=$(find_program clickhouse-server) || die "clickhouse-server is not installed: run 'deploy/stack.sh install'"
	mkdir -p "$CH_DIR/log"
	# Everything after the lone -- replaces the config file's element of that
	# name (ClickHouse 18.16 and later), so the checked-in config stays as is.
	start_service clickhouse "$server" \
		--config-file="$ROOT/deploy/clickhouse/config.xml" -- \
		--tcp_port="$CH_TCP_PORT" \
		--http_port="$CH_HTTP_PORT" \
		--path="$CH_DIR/data/" \
		--tmp_path="$CH_DIR/tmp/" \
		--user_files_path="$CH_DIR/user_files/" \
		--format_schema_path="$CH_DIR/format_schemas/" \
		--logger.log="$CH_DIR/log/clickhouse-server.log" \
		--logger.errorlog="$CH_DIR/log/clickhouse-server.err.log"
}

ready_clickhouse() {
	local client
	client=$(find_program clickhouse-client) || return 1
	timeout 5 "$client" --host 127.0.0.1 --port "$CH_TCP_PORT" --query 'SELECT 1' >/dev/null 2>&1 || return 1
	printf 'answering on 127.0.0.1:%s (http 127.0.0.1:%s)' "$CH_TCP_PORT" "$CH_HTTP_PORT"
}

start_broker() {
	build_if_stale broker
	# The working directory is the repository, so a skuflow.yaml there (topic,
	# partitions, log format) applies; the flags set port and data.
	start_service broker "$BIN/broker" --port "$BROKER_PORT" --data-dir "$DATA/broker"
}

ready_broker() {
	# Not `tail | grep -q`: grep's early exit would fail the pipe (pipefail).
	grep -qE 'msg=ready|"msg":"ready"' < <(tail -c "+$((LOG_OFFSET + 1))" "$LOGS/broker.log") || return 1
	printf 'ready on 127.0.0.1:%s' "$BROKER_PORT"
}

start_processor() {
	build_if_stale processor
	start_service processor "$BIN/processor"
}

ready_processor() {
	grep -qE 'msg=started|"msg":"started"' < <(tail -c "+$((LOG_OFFSET + 1))" "$LOGS/processor.log") || return 1
	printf 'loading the topic into ClickHouse'
}

start_aggregator() {
	build_if_stale aggregator
	start_service aggregator "$BIN/aggregator"
}

ready_aggregator() {
	grep -qE 'msg=started|"msg":"started"' < <(tail -c "+$((LOG_OFFSET + 1))" "$LOGS/aggregator.log") || return 1
	printf 'keeping products_agg'
}

start_api() {
	build_if_stale api
	start_service api "$BIN/api"
}

ready_api() {
	grep -qE 'msg=started|"msg":"started"' < <(tail -c "+$((LOG_OFFSET + 1))" "$LOGS/api.log") || return 1
	printf 'serving the API and the operations page on %s' "$(sed -nE 's/.*addr=(http[^ ]*).*/\1/p' "$LOGS/api.log" | tail -1)"
}

start_watcher() {
	build_if_stale loader
	mkdir -p "$INBOX"
	start_service watcher "$BIN/loader" watch "$INBOX"
}

ready_watcher() {
	grep -qE 'msg=started|"msg":"started"' < <(tail -c "+$((LOG_OFFSET + 1))" "$LOGS/watcher.log") || return 1
	printf 'pushing every file dropped into %s' "$INBOX"
}

# --- a cluster (up-cluster) ---------------------------------------------------

# cluster_node S R prints shard S replica R's ports: native, http,
# interserver.
cluster_node() {
	local i=$(((($1 - 1) * 2) + $2 - 1))
	printf '%s %s %s\n' "$((CH_TCP_PORT + i))" "$((CH_HTTP_PORT + i))" "$((CH_TCP_PORT + 9 + i))"
}

cluster_addrs() {
	local s r out=()
	for s in 1 2; do for r in 1 2; do
		read -r tcp _ _ < <(cluster_node "$s" "$r")
		out+=("127.0.0.1:$tcp")
	done; done
	local IFS=,
	printf '%s\n' "${out[*]}"
}

start_zookeeper() {
	local java dir=$DATA/cluster/zookeeper
	java=$(find_program java) || die "java is not installed: run 'deploy/stack.sh install' (zookeeper)"
	[[ -f /usr/share/java/zookeeper.jar ]] || die "zookeeper is not installed: run 'deploy/stack.sh install'"
	mkdir -p "$dir/data"
	cat >"$dir/zoo.cfg" <<CFG
tickTime=500
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr
CFG
	PORTS[zookeeper]=$ZK_PORT
	start_service zookeeper "$java" -Xmx256m -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
		org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg"
}

# ZooKeeper serves once srvr tells its mode (ruok answers earlier, and a
# ClickHouse 18.16 that finds no session crashes on DDL ON CLUSTER).
ready_zookeeper() {
	local out
	out=$(exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null || return 1
	[[ $out == *"Mode: standalone"* ]] || return 1
	printf 'serving on 127.0.0.1:%s' "$ZK_PORT"
}

# start_cluster_node S R starts shard S replica R from the project's
# config with the cluster's settings in its own config.d.
start_cluster_node() {
	local s=$1 r=$2 server tcp http inter name=ch-$1-$2 dir conf shard rs rr rtcp
	server=$(find_program clickhouse-server) || die "clickhouse-server is not installed: run 'deploy/stack.sh install'"
	read -r tcp http inter < <(cluster_node "$s" "$r")
	dir=$DATA/cluster/$name
	conf=$dir/conf
	mkdir -p "$conf/config.d" "$dir/log"
	cp "$ROOT/deploy/clickhouse/config.xml" "$ROOT/deploy/clickhouse/users.xml" "$conf/"
	{
		printf '<?xml version="1.0"?>\n<yandex>\n'
		printf '  <interserver_http_host>127.0.0.1</interserver_http_host>\n  <interserver_http_port>%s</interserver_http_port>\n' "$inter"
		printf '  <remote_servers>\n    <skuflow>\n'
		for rs in 1 2; do
			printf '      <shard>\n        <internal_replication>true</internal_replication>\n'
			for rr in 1 2; do
				read -r rtcp _ _ < <(cluster_node "$rs" "$rr")
				printf '        <replica><host>127.0.0.1</host><port>%s</port></replica>\n' "$rtcp"
			done
			printf '      </shard>\n'
		done
		printf '    </skuflow>\n  </remote_servers>\n'
		printf '  <zookeeper>\n    <node><host>127.0.0.1</host><port>%s</port></node>\n  </zookeeper>\n' "$ZK_PORT"
		printf '  <macros>\n    <shard>%02d</shard>\n    <replica>r%s</replica>\n  </macros>\n' "$s" "$r"
		printf '  <distributed_ddl>\n    <path>/clickhouse/task_queue/ddl</path>\n  </distributed_ddl>\n</yandex>\n'
	} >"$conf/config.d/cluster.xml"
	# Reads and writes of a shard to its first live replica: a service reads
	# what it wrote (internal/clickhouse/cluster.go).
	mkdir -p "$conf/users.d"
	printf '<?xml version="1.0"?>\n<yandex>\n  <profiles>\n    <default>\n      <load_balancing>in_order</load_balancing>\n    </default>\n  </profiles>\n</yandex>\n' >"$conf/users.d/cluster.xml"
	PORTS[$name]="$tcp $http $inter"
	start_service "$name" "$server" --config-file="$conf/config.xml" -- \
		--tcp_port="$tcp" --http_port="$http" \
		--path="$dir/data/" --tmp_path="$dir/tmp/" \
		--user_files_path="$dir/user_files/" --format_schema_path="$dir/format_schemas/" \
		--logger.log="$dir/log/clickhouse-server.log" --logger.errorlog="$dir/log/clickhouse-server.err.log"
}

# ready_ch-S-R: the node answers and has a ZooKeeper session.
ready_cluster_node() {
	local client tcp
	client=$(find_program clickhouse-client) || return 1
	read -r tcp _ _ < <(cluster_node "$1" "$2")
	timeout 5 "$client" --host 127.0.0.1 --port "$tcp" --query "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null 2>&1 || return 1
	printf 'answering on 127.0.0.1:%s, on ZooKeeper' "$tcp"
}
ready_ch-1-1() { ready_cluster_node 1 1; }
ready_ch-1-2() { ready_cluster_node 1 2; }
ready_ch-2-1() { ready_cluster_node 2 1; }
ready_ch-2-2() { ready_cluster_node 2 2; }

# --- commands ---------------------------------------------------------------

# The shipped record types (events, plays) are declared in
# skuflow.example.yaml; a stack without a configuration of its own gets them
# in a skuflow.yaml written from it, which the loader run from the
# repository then reads too. An existing skuflow.yaml, or $SKUFLOW_CONFIG,
# is left as it is.
ensure_config() {
	[[ -z ${SKUFLOW_CONFIG:-} && ! -e $ROOT/skuflow.yaml ]] || return 0
	cp "$ROOT/skuflow.example.yaml" "$ROOT/skuflow.yaml"
	say "stack: wrote skuflow.yaml from skuflow.example.yaml (the record types products, events and plays); edit it to configure the stack"
}

cmd_up() {
	local missing
	mapfile -t missing < <(missing_packages)
	((${#missing[@]} == 0)) || cmd_install
	ensure_config
	if [[ ${1:-} == cluster ]]; then
		running_pid clickhouse >/dev/null && die "the one-server stack runs: 'make down' first (it uses the same ports)"
		start_zookeeper
		local s r
		for s in 1 2; do for r in 1 2; do start_cluster_node "$s" "$r"; done; done
		# The services started here, and the commands a user runs after
		# the export printed below, reach the cluster.
		export SKUFLOW_CLICKHOUSE_ADDR SKUFLOW_CLICKHOUSE_CLUSTER=skuflow
		SKUFLOW_CLICKHOUSE_ADDR=$(cluster_addrs)
	else
		running_pid ch-1-1 >/dev/null && die "the cluster runs: 'make down' first (it uses the same ports)"
		start_clickhouse
	fi
	start_broker
	local s
	for s in ${SKUFLOW_STACK_SERVICES-processor aggregator watcher api}; do
		declare -F "start_$s" >/dev/null || die "unknown service $s in SKUFLOW_STACK_SERVICES"
		"start_$s"
	done
	if [[ ${1:-} == cluster ]]; then
		say "stack: up on a ClickHouse cluster (2 shards x 2 replicas, ZooKeeper 127.0.0.1:$ZK_PORT), Kafka 127.0.0.1:$BROKER_PORT, data in $DATA"
		say "stack: for the loader and clickhouse-client, in this shell:"
		say "    export SKUFLOW_CLICKHOUSE_ADDR=$SKUFLOW_CLICKHOUSE_ADDR SKUFLOW_CLICKHOUSE_CLUSTER=skuflow"
		return
	fi
	say "stack: up; ClickHouse 127.0.0.1:$CH_TCP_PORT (http $CH_HTTP_PORT), Kafka 127.0.0.1:$BROKER_PORT, data in $DATA"
}

cmd_down() {
	local s i
	# Services first, so that they can flush and commit; then the broker,
	# then ClickHouse.
	while read -r s; do
		[[ " ${INFRA[*]} " == *" $s "* ]] || stop_service "$s"
	done < <(services)
	for ((i = ${#INFRA[@]} - 1; i >= 0; i--)); do
		stop_service "${INFRA[i]}"
	done
}

cmd_status() {
	local s pid
	while read -r s; do
		if pid=$(running_pid "$s"); then
			say "$s: running (pid $pid)"
		else
			say "$s: stopped"
		fi
	done < <(services)
}

case ${1:-} in
install) cmd_install ;;
up) cmd_up ;;
up-cluster) cmd_up cluster ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	printf 'usage: %s install|up|up-cluster|down|status\n' "$0" >&2
	exit 2
	;;
esac
