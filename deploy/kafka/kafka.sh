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
#   KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS  how long a new consumer group waits for more
#                          members before its first assignment (default 0: tests start at
#                          once; Kafka's own default, 3000, is what `make bench` uses)
#   JAVA_HOME              Java 17+ to use (default: java on PATH)
#
# Listeners bind 127.0.0.1 only. Everything of one broker lives in <repo>/.kafka/<port>/
# (server.properties, data/, logs/server.log, kafka.pid), so brokers on different ports
# coexist. Messages go to stderr; stdout carries only results. What this script shares with
# secure.sh and cluster.sh lives in lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
single_node_layout 9092 ""
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"

write_properties() {
    mkdir -p "$LOG_DIRS" "$LOGS"
    single_node_properties >"$PROPS" <<EOF
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
    probe_timeouts >"$PROBE_PROPS"
}

format_storage_once() {
    storage_formatted && return 0
    local libs=$1 cluster_id
    cluster_id=$(new_cluster_id)
    log "formatting KRaft storage (cluster id $cluster_id) in $LOG_DIRS"
    format_storage "$libs" "$cluster_id" "$PROPS" >&2
}

# lib.sh's cmd_up calls this when no broker of this checkout runs on the port.
start_fresh() {
    local libs=$1
    ports_free_or_die
    write_properties
    format_storage_once "$libs"
    log "starting Kafka on $BOOTSTRAP (controller $HOST:$CONTROLLER_PORT), logs in $LOGS"
    start_broker "$libs"
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
