# shellcheck shell=bash
# What kafka.sh, secure.sh and cluster.sh share: the broker jars, Kafka's command-line tools,
# broker processes (start, pid check, readiness, stop) and, for the two single-node scripts,
# the whole up/down/reset/status life cycle. Sourced, never run; the sourcing script sets
# `set -euo pipefail` first and, after sourcing, START_TIMEOUT and HEAP_OPTS (its defaults
# differ) plus whatever its own functions need.
#
# Hooks: a single-node script defines start_fresh LIBS (write the config, format the storage,
# start_broker), which cmd_up calls when no broker of its own runs yet.

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
# The sourcing script's name, the prefix of every message.
PROG=${BASH_SOURCE[1]##*/}
POM="$SCRIPT_DIR/pom.xml"
CACHE_DIR="$REPO_ROOT/.cache/kafka"
MAVEN_LIBS="$CACHE_DIR/libs"
HOST=127.0.0.1
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# require_number NAME VALUE: usage error (exit 2) unless VALUE, from the environment
# variable NAME, is a number.
require_number() {
    [[ "$2" =~ ^[0-9]+$ ]] || { log "$1 must be a number"; exit 2; }
}

# ---------------------------------------------------------------- jars and tools

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

maven_libs_fresh() {
    [[ -f "$MAVEN_LIBS/.stamp" && "$(<"$MAVEN_LIBS/.stamp")" == "$(pom_hash)" ]]
}

# Resolve the broker jars (pom.xml) into .cache/kafka/libs, once per pom change.
cmd_fetch() {
    if [[ -n "${KAFKA_HOME:-}" ]]; then
        log "KAFKA_HOME is set: using $KAFKA_HOME/libs, nothing to fetch"
        return 0
    fi
    maven_libs_fresh && return 0
    mkdir -p "$CACHE_DIR"
    # Two test sessions may fetch at once: one does the work, the other waits for it.
    exec 9>"$CACHE_DIR/.fetch.lock"
    flock 9
    if ! maven_libs_fresh; then
        # Copy into a staging dir and swap it in whole: a half-done copy never looks complete.
        local staging="$CACHE_DIR/libs.partial"
        rm -rf "$staging"
        log "fetching the Kafka broker jars with Maven (once per pom change)"
        mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$staging" >&2
        pom_hash >"$staging/.stamp"
        rm -rf "$MAVEN_LIBS"
        mv "$staging" "$MAVEN_LIBS"
    fi
    exec 9>&-
}

# The folder of jars to run: KAFKA_HOME's libs/, else the Maven jars (fetched if need be).
libs_dir() {
    if [[ -n "${KAFKA_HOME:-}" ]]; then
        [[ -d "$KAFKA_HOME/libs" ]] || die "KAFKA_HOME has no libs/ folder: $KAFKA_HOME"
        echo "$KAFKA_HOME/libs"
    else
        cmd_fetch
        echo "$MAVEN_LIBS"
    fi
}

# A Kafka command-line tool in the foreground, bounded in time, logging only warnings to
# stderr. C1-only JIT and serial GC: these JVMs live for a second or two.
run_tool() {
    local libs=$1
    shift
    timeout 120 "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2-tools.xml" -cp "$libs/*" "$@"
}

# Kafka moved its tools between packages across releases: pick whichever the jars hold.
# (Zip entry names are stored uncompressed, so grep finds them in the jar.)
storage_tool_class() {
    if grep -qs --binary-files=text 'org/apache/kafka/tools/StorageTool.class' "$1"/kafka*.jar
    then
        echo org.apache.kafka.tools.StorageTool
    else
        echo kafka.tools.StorageTool
    fi
}

# A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
new_cluster_id() { head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# kafka-storage format LIBS CLUSTER_ID PROPS [more format arguments...]
format_storage() {
    local libs=$1 cluster_id=$2 props=$3
    shift 3
    # --cluster-id=ID, not "-t ID": a base64url id may start with "-" (1 in 64), which the
    # tool's argument parser would take for an option.
    run_tool "$libs" "$(storage_tool_class "$libs")" format --cluster-id="$cluster_id" \
        -c "$props" "$@"
}

# Short client timeouts for the readiness probe, so a broker still starting costs one quick
# retry.
probe_timeouts() { printf 'request.timeout.ms=3000\ndefault.api.timeout.ms=5000\n'; }

# One metadata request (list topics) through Kafka's own admin tool: LIBS BOOTSTRAP PROBE_PROPS.
metadata_ok() {
    run_tool "$1" org.apache.kafka.tools.TopicCommand --bootstrap-server "$2" \
        --command-config "$3" --list >/dev/null 2>&1
}

# ---------------------------------------------------------------- broker processes

# broker_pid PID_FILE PROPS: prints the recorded pid when it is alive and is the broker of
# PROPS (a pid reused by another program after a crash or reboot must not be taken for ours).
broker_pid() {
    local pid_file=$1 props=$2 pid cmdline
    [[ -f "$pid_file" ]] || return 1
    pid=$(<"$pid_file")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ "$cmdline" == *kafka.Kafka*"$props"* ]] || return 1
    echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# One `up` (or `down`) at a time per data dir: fd 8 holds the lock until the script exits.
lock_dir() {
    mkdir -p "$1"
    exec 8>"$1/.lock"
    flock 8
}

# launch_broker LIBS PROPS LOGS_DIR PID_FILE: start kafka.Kafka in the background, record
# its pid, return once the child runs the broker (or died, or 10 s passed).
launch_broker() {
    local libs=$1 props=$2 logs=$3 pid_file=$4 pid deadline
    # setsid: the broker outlives this script and the terminal or test run that called it.
    # The lock fds are closed so the broker never holds a lock.
    setsid "$JAVA" "${HEAP_OPTS[@]}" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dkafka.logs.dir="$logs" \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.xml" \
        -cp "$libs/*" kafka.Kafka "$props" \
        </dev/null >"$logs/stdout.log" 2>&1 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$pid_file"
    # Until the child has exec'd java its command line is still this script's.
    deadline=$((SECONDS + 10))
    while ! broker_pid "$pid_file" "$props" >/dev/null && kill -0 "$pid" 2>/dev/null &&
        ((SECONDS < deadline)); do
        sleep 0.1
    done
}

# await_metadata LIBS PID_FILE PROPS BOOTSTRAP PROBE_PROPS INTERVAL: wait up to
# START_TIMEOUT s for a metadata answer. Status 0 ready, 1 the process exited, 2 timed out.
await_metadata() {
    local libs=$1 pid_file=$2 props=$3 bootstrap=$4 probe=$5 interval=$6
    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        broker_pid "$pid_file" "$props" >/dev/null || return 1
        # Cheap port check first: each metadata probe starts a JVM.
        if port_open "${bootstrap##*:}" && metadata_ok "$libs" "$bootstrap" "$probe"; then
            return 0
        fi
        sleep "$interval"
    done
    return 2
}

# stop_process PID_FILE PROPS [WHAT]: SIGTERM, then SIGKILL after STOP_TIMEOUT s; logs
# "stopping WHAT" when WHAT is given. The pid file is gone afterwards.
stop_process() {
    local pid_file=$1 props=$2 what=${3:-} pid deadline
    if ! pid=$(broker_pid "$pid_file" "$props"); then
        rm -f "$pid_file"
        return 0
    fi
    [[ -z "$what" ]] || log "stopping $what (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while broker_pid "$pid_file" "$props" >/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if broker_pid "$pid_file" "$props" >/dev/null; then
        log "no clean exit within ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
}

# Kafka's internal topics (consumer offsets, transactions, share groups), as server.properties
# lines: REPLICATION_FACTOR MIN_ISR.
internal_topic_properties() {
    cat <<EOF
offsets.topic.replication.factor=$1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$1
transaction.state.log.min.isr=$2
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$1
share.coordinator.state.topic.min.isr=$2
EOF
}

# ---------------------------------------------------------------- single-node brokers

# The layout of kafka.sh and secure.sh: everything of one broker lives in DATA_ROOT
# (<repo>/.kafka/<prefix><port>). Sets PORT, CONTROLLER_PORT, BOOTSTRAP and the paths.
single_node_layout() {
    local default_port=$1 prefix=$2
    PORT="${KAFKA_PORT:-$default_port}"
    require_number KAFKA_PORT "$PORT"
    CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
    BOOTSTRAP="$HOST:$PORT"
    DATA_ROOT="$REPO_ROOT/.kafka/$prefix$PORT"
    LOG_DIRS="$DATA_ROOT/data"
    LOGS="$DATA_ROOT/logs"
    PROPS="$DATA_ROOT/server.properties"
    PROBE_PROPS="$DATA_ROOT/probe.properties"
    PID_FILE="$DATA_ROOT/kafka.pid"
}

running_pid() { broker_pid "$PID_FILE" "$PROPS"; }

lock_port() { lock_dir "$DATA_ROOT"; }

# server.properties of a one-node KRaft broker (broker + controller, node.id=1): the
# script's own listener lines (stdin) between the shared head and the shared settings.
single_node_properties() {
    GROUP_INITIAL_REBALANCE_DELAY_MS="${KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS:-0}"
    require_number KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS "$GROUP_INITIAL_REBALANCE_DELAY_MS"
    cat <<EOF
# Written by deploy/kafka/$PROG on every 'up'; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
EOF
    cat
    cat <<EOF
log.dirs=$LOG_DIRS
# Tests and the CLI create their topics explicitly.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
# One node: every internal topic has a single replica.
$(internal_topic_properties 1 1)
# How long a new group waits for more members before its first assignment: 0 unless asked
# (tests start at once); the benchmarks ask for Kafka's own default, 3 s, so that processes
# started together share the first assignment.
group.initial.rebalance.delay.ms=$GROUP_INITIAL_REBALANCE_DELAY_MS
# The default 128 MB cleaner buffer would take a quarter of the small heap.
log.cleaner.dedupe.buffer.size=33554432
EOF
}

storage_formatted() { [[ -f "$LOG_DIRS/meta.properties" ]]; }

ports_free_or_die() {
    port_open "$PORT" && die "port $PORT is in use by a program that is not this checkout's broker"
    port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is in use"
    return 0
}

start_broker() { launch_broker "$1" "$PROPS" "$LOGS" "$PID_FILE"; }

fail_start() {
    log "error: $1; last lines of $LOGS/server.log:"
    tail -n 40 "$LOGS/server.log" >&2 2>/dev/null || true
    if [[ -s "$LOGS/stdout.log" ]]; then
        log "JVM output ($LOGS/stdout.log):"
        tail -n 10 "$LOGS/stdout.log" >&2
    fi
    stop_broker
    exit 1
}

wait_until_ready() {
    local status=0
    await_metadata "$1" "$PID_FILE" "$PROPS" "$BOOTSTRAP" "$PROBE_PROPS" 0.5 || status=$?
    case $status in
        1) fail_start "the broker process exited" ;;
        2) fail_start "no metadata answer from $BOOTSTRAP within ${START_TIMEOUT}s" ;;
    esac
}

cmd_up() {
    local libs
    libs=$(libs_dir)
    lock_port
    if running_pid >/dev/null; then
        log "reusing the running broker (pid $(running_pid))"
    else
        start_fresh "$libs"
    fi
    wait_until_ready "$libs"
    echo "$BOOTSTRAP"
}

stop_broker() { stop_process "$PID_FILE" "$PROPS" "the broker on $BOOTSTRAP"; }

cmd_down() {
    lock_port
    stop_broker
}

cmd_reset() {
    cmd_down
    log "wiping $DATA_ROOT"
    rm -rf "$DATA_ROOT"
}

cmd_status() {
    local pid
    pid=$(running_pid) || { log "no broker of this checkout on port $PORT"; return 1; }
    metadata_ok "$(libs_dir)" "$BOOTSTRAP" "$PROBE_PROPS" ||
        { log "broker pid $pid does not answer on $BOOTSTRAP"; return 1; }
    log "running: pid $pid"
    echo "$BOOTSTRAP"
}
