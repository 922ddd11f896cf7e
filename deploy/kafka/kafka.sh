#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft combined mode: broker + controller,
# node.id=1) for development and tests, run straight from Maven Central jars: no Docker,
# no tarball download.
#
# Usage: deploy/kafka/kafka.sh fetch|up|down|reset|status
#   fetch   resolve the broker jars (deploy/kafka/pom.xml) into .cache/kafka/libs; skipped
#           when the libs' stamp matches the pom's hash, so Maven runs once per pom change
#   up      start the broker in the background (reuses one already running for this
#           checkout and port), wait until a metadata request succeeds, print the
#           bootstrap address as the last line of stdout
#   down    stop it (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT s); data is kept
#   reset   down, then wipe this port's data
#   status  exit 0 when this checkout's broker runs and answers a metadata request
#
# Environment:
#   KAFKA_PORT             client listener port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default KAFKA_PORT + 1)
#   KAFKA_HOME             an unpacked Kafka 4.x distribution: its libs/ replace the Maven jars
#   KAFKA_HEAP_OPTS        broker heap (default "-Xms256m -Xmx512m")
#   KAFKA_START_TIMEOUT    seconds `up` waits for the broker (default 60)
#   KAFKA_STOP_TIMEOUT     seconds `down` waits before SIGKILL (default 20)
#   JAVA_HOME              Java 17+ to use (default: java on PATH)
#
# Listeners bind 127.0.0.1 only. Everything of one broker lives in <repo>/.kafka/<port>/
# (server.properties, data/, logs/server.log, kafka.pid), so brokers on different ports
# coexist. Messages go to stderr; stdout carries only results.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
POM="$SCRIPT_DIR/pom.xml"
CACHE_DIR="$REPO_ROOT/.cache/kafka"
MAVEN_LIBS="$CACHE_DIR/libs"
HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "kafka.sh: KAFKA_PORT must be a number" >&2; exit 2; }
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
BOOTSTRAP="$HOST:$PORT"
DATA_ROOT="$REPO_ROOT/.kafka/$PORT"
LOG_DIRS="$DATA_ROOT/data"
LOGS="$DATA_ROOT/logs"
PROPS="$DATA_ROOT/server.properties"
PROBE_PROPS="$DATA_ROOT/probe.properties"
PID_FILE="$DATA_ROOT/kafka.pid"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- jars

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

maven_libs_fresh() {
    [[ -f "$MAVEN_LIBS/.stamp" && "$(<"$MAVEN_LIBS/.stamp")" == "$(pom_hash)" ]]
}

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

# ---------------------------------------------------------------- broker state

# Prints the recorded pid when it is alive and is this port's broker (a pid reused by
# another program after a crash or reboot must not be taken for ours).
running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid cmdline
    pid=$(<"$PID_FILE")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ "$cmdline" == *kafka.Kafka*"$PROPS"* ]] || return 1
    echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# One metadata request (list topics) through Kafka's own admin tool, with short client
# timeouts (probe.properties) so a broker still starting costs one quick retry.
metadata_ok() {
    run_tool "$1" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
        --command-config "$PROBE_PROPS" --list >/dev/null 2>&1
}

# ---------------------------------------------------------------- up

write_properties() {
    mkdir -p "$LOG_DIRS" "$LOGS"
    cat >"$PROPS" <<EOF
# Written by deploy/kafka/kafka.sh on every 'up'; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$LOG_DIRS
# Tests and the CLI create their topics explicitly.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
# One node: every internal topic has a single replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumer groups start at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
# The default 128 MB cleaner buffer would take a quarter of the small heap.
log.cleaner.dedupe.buffer.size=33554432
EOF
    cat >"$PROBE_PROPS" <<EOF
request.timeout.ms=3000
default.api.timeout.ms=5000
EOF
}

format_storage_once() {
    [[ -f "$LOG_DIRS/meta.properties" ]] && return 0
    local libs=$1 cluster_id
    # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    log "formatting KRaft storage (cluster id $cluster_id) in $LOG_DIRS"
    run_tool "$libs" "$(storage_tool_class "$libs")" format -t "$cluster_id" -c "$PROPS" >&2
}

ports_free_or_die() {
    port_open "$PORT" && die "port $PORT is in use by a program that is not this checkout's broker"
    port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is in use"
    return 0
}

start_broker() {
    local libs=$1 pid
    log "starting Kafka on $BOOTSTRAP (controller $HOST:$CONTROLLER_PORT), logs in $LOGS"
    # setsid: the broker outlives this script and the terminal or test run that called it.
    # The lock fds are closed so the broker never holds a lock.
    setsid "$JAVA" "${HEAP_OPTS[@]}" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dkafka.logs.dir="$LOGS" \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.xml" \
        -cp "$libs/*" kafka.Kafka "$PROPS" \
        </dev/null >"$LOGS/stdout.log" 2>&1 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    # Until the child has exec'd java its command line is still this script's.
    local deadline=$((SECONDS + 10))
    while ! running_pid >/dev/null && kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.1
    done
}

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
    local libs=$1 deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        running_pid >/dev/null || fail_start "the broker process exited"
        # Cheap port check first: each metadata probe starts a JVM.
        if port_open "$PORT" && metadata_ok "$libs"; then
            return 0
        fi
        sleep 0.5
    done
    fail_start "no metadata answer from $BOOTSTRAP within ${START_TIMEOUT}s"
}

lock_port() {
    mkdir -p "$DATA_ROOT"
    exec 8>"$DATA_ROOT/.lock"
    flock 8
}

cmd_up() {
    local libs
    libs=$(libs_dir)
    lock_port
    if running_pid >/dev/null; then
        log "reusing the running broker (pid $(running_pid))"
    else
        ports_free_or_die
        write_properties
        format_storage_once "$libs"
        start_broker "$libs"
    fi
    wait_until_ready "$libs"
    echo "$BOOTSTRAP"
}

# ---------------------------------------------------------------- down, reset, status

stop_broker() {
    local pid deadline
    if ! pid=$(running_pid); then
        rm -f "$PID_FILE"
        return 0
    fi
    log "stopping the broker on $BOOTSTRAP (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while running_pid >/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if running_pid >/dev/null; then
        log "no clean exit within ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
}

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
    metadata_ok "$(libs_dir)" || { log "broker pid $pid does not answer on $BOOTSTRAP"; return 1; }
    log "running: pid $pid"
    echo "$BOOTSTRAP"
}

main() {
    case "${1:-}" in
        fetch) cmd_fetch ;;
        up) cmd_up ;;
        down) cmd_down ;;
        reset) cmd_reset ;;
        status) cmd_status ;;
        *)
            echo "usage: $0 fetch|up|down|reset|status" >&2
            exit 2
            ;;
    esac
}

main "$@"
