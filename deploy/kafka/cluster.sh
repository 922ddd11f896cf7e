#!/usr/bin/env bash
# A 3-node Kafka 4.x KRaft cluster on loopback (every node broker + controller) for the
# reliability suite's leader-kill scenario: replication factor 3, min.insync.replicas 2,
# unclean leader election off. Same jars as kafka.sh (its `fetch`), three small JVMs.
#
# Usage: deploy/kafka/cluster.sh up|down|reset|status|bootstrap|kill N|start N|leader T [P]|kill-leader T [P]
#   up           start the three nodes (reuses running ones), wait until each answers a
#                metadata request, print the bootstrap list as the last line of stdout
#   down         stop every node (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT s)
#   reset        down, then wipe the cluster's data
#   status       exit 0 when all three nodes run
#   bootstrap    print the bootstrap list
#   kill N       SIGKILL node N (1..3): a hard crash, no controlled shutdown
#   start N      start node N again on its existing data and wait until it answers
#   leader T [P] print the node id leading partition P (default 0) of topic T
#   kill-leader T [P]  SIGKILL that leader; prints its node id
#
# Environment: CLUSTER_PORT (first client port, default 9192; node N listens on
# CLUSTER_PORT+N-1 for clients and CLUSTER_PORT+N+2 for the controller quorum),
# KAFKA_HEAP_OPTS (default "-Xms128m -Xmx384m"), KAFKA_START_TIMEOUT (default 120),
# KAFKA_STOP_TIMEOUT (default 20), KAFKA_HOME, JAVA_HOME as for kafka.sh.
# Data: <repo>/.kafka/cluster-<CLUSTER_PORT>/node<N>/ (server.properties, data/, logs/, kafka.pid).
# What this script shares with kafka.sh and secure.sh lives in lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BASE="${CLUSTER_PORT:-9192}"
require_number CLUSTER_PORT "$BASE"
NODES=(1 2 3)
ROOT="$REPO_ROOT/.kafka/cluster-$BASE"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}"

client_port() { echo $((BASE + $1 - 1)); }
controller_port() { echo $((BASE + $1 + 2)); }
node_dir() { echo "$ROOT/node$1"; }
props() { echo "$(node_dir "$1")/server.properties"; }
pid_file() { echo "$(node_dir "$1")/kafka.pid"; }
bootstrap() {
    local n list=()
    for n in "${NODES[@]}"; do list+=("$HOST:$(client_port "$n")"); done
    (IFS=,; echo "${list[*]}")
}
voters() {
    local n list=()
    for n in "${NODES[@]}"; do list+=("$n@$HOST:$(controller_port "$n")"); done
    (IFS=,; echo "${list[*]}")
}

probe_props() { echo "$ROOT/probe.properties"; }

# ---------------------------------------------------------------- node state

running_pid() { broker_pid "$(pid_file "$1")" "$(props "$1")"; }

write_properties() {
    local n=$1 dir
    dir=$(node_dir "$n")
    mkdir -p "$dir/data" "$dir/logs"
    cat >"$(props "$n")" <<EOF
# Written by deploy/kafka/cluster.sh on every 'up'; edits here are overwritten.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$(client_port "$n"),CONTROLLER://$HOST:$(controller_port "$n")
advertised.listeners=PLAINTEXT://$HOST:$(client_port "$n")
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=3
# Durability: an acknowledged (acks=all) write is on at least two replicas, and a replica
# that missed writes never becomes leader.
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
$(internal_topic_properties 3 2)
group.initial.rebalance.delay.ms=0
# A killed node is noticed within seconds, not the default 9 s / 18 s.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
replica.lag.time.max.ms=10000
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=2
EOF
}

format_once() {
    local libs=$1 cluster_id=$2 n=$3
    [[ -f "$(node_dir "$n")/data/meta.properties" ]] && return 0
    format_storage "$libs" "$cluster_id" "$(props "$n")" >/dev/null
}

cluster_id() {
    local file="$ROOT/cluster.id"
    if [[ ! -s "$file" ]]; then
        mkdir -p "$ROOT"
        new_cluster_id >"$file"
    fi
    cat "$file"
}

start_node() {
    local libs=$1 n=$2
    running_pid "$n" >/dev/null && return 0
    port_open "$(client_port "$n")" && die "port $(client_port "$n") is in use"
    log "starting node $n on $HOST:$(client_port "$n")"
    launch_broker "$libs" "$(props "$n")" "$(node_dir "$n")/logs" "$(pid_file "$n")"
}

wait_node() {
    local libs=$1 n=$2 status=0
    await_metadata "$libs" "$(pid_file "$n")" "$(props "$n")" "$HOST:$(client_port "$n")" \
        "$(probe_props)" 1 || status=$?
    case $status in
        1)
            tail -n 30 "$(node_dir "$n")/logs/server.log" >&2 2>/dev/null || true
            die "node $n exited"
            ;;
        2) die "node $n gave no metadata answer within ${START_TIMEOUT}s" ;;
    esac
}

lock_cluster() { lock_dir "$ROOT"; }

cmd_up() {
    local libs id n
    libs=$(libs_dir)
    lock_cluster
    id=$(cluster_id)
    probe_timeouts >"$(probe_props)"
    for n in "${NODES[@]}"; do
        if ! running_pid "$n" >/dev/null; then
            write_properties "$n"
            format_once "$libs" "$id" "$n"
        fi
    done
    # All three before waiting on any: the controller quorum needs a majority to elect.
    for n in "${NODES[@]}"; do start_node "$libs" "$n"; done
    for n in "${NODES[@]}"; do wait_node "$libs" "$n"; done
    bootstrap
}

cmd_start() {
    local libs n=$1
    libs=$(libs_dir)
    lock_cluster
    start_node "$libs" "$n"
    wait_node "$libs" "$n"
}

cmd_down() {
    local n pid
    lock_cluster
    # SIGTERM all at once: stopping one by one makes the last ones wait for a quorum.
    for n in "${NODES[@]}"; do
        if pid=$(running_pid "$n"); then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for n in "${NODES[@]}"; do stop_process "$(pid_file "$n")" "$(props "$n")"; done
}

cmd_kill() {
    local n=$1 pid
    pid=$(running_pid "$n") || die "node $n is not running"
    log "SIGKILL node $n (pid $pid)"
    kill -KILL "$pid"
    rm -f "$(pid_file "$n")"
}

cmd_leader() {
    local topic=$1 partition=${2:-0} libs
    libs=$(libs_dir)
    run_tool "$libs" org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap)" \
        --command-config "$(probe_props)" --describe --topic "$topic" 2>/dev/null |
        awk -v p="$partition" '$0 ~ "Partition: " p "\t" { for (i = 1; i <= NF; i++)
            if ($i == "Leader:") { print $(i + 1); exit } }'
}

check_node() { [[ "${1:-}" =~ ^[123]$ ]] || die "node must be 1, 2 or 3"; }

main() {
    case "${1:-}" in
        up) cmd_up ;;
        down) cmd_down ;;
        reset) cmd_down; log "wiping $ROOT"; rm -rf "$ROOT" ;;
        status) for n in "${NODES[@]}"; do running_pid "$n" >/dev/null || exit 1; done ;;
        bootstrap) bootstrap ;;
        kill) check_node "${2:-}"; cmd_kill "$2" ;;
        start) check_node "${2:-}"; cmd_start "$2" ;;
        leader) [[ -n "${2:-}" ]] || die "leader needs a topic"; cmd_leader "$2" "${3:-0}" ;;
        kill-leader)
            [[ -n "${2:-}" ]] || die "kill-leader needs a topic"
            local leader
            leader=$(cmd_leader "$2" "${3:-0}")
            check_node "$leader"
            cmd_kill "$leader"
            echo "$leader"
            ;;
        *)
            echo "usage: $0 up|down|reset|status|bootstrap|kill N|start N|leader T [P]|kill-leader T [P]" >&2
            exit 2
            ;;
    esac
}

main "$@"
