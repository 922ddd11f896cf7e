#!/usr/bin/env bash
# A single-node Kafka 4.x broker (KRaft combined mode) whose client listener speaks SASL_SSL
# with SCRAM-SHA-512, for the security tests. A sibling of kafka.sh (same jars, same layout
# idea) that leaves kafka.sh and its plaintext brokers alone.
#
# Usage: deploy/kafka/secure.sh up|down|reset|status|info
#   up      generate a test CA + broker certificate (openssl) and SCRAM credentials on first
#           use, format the storage with those credentials (kafka-storage format --add-scram),
#           start the broker, wait for an authenticated metadata answer, print the bootstrap
#           address as the last line of stdout
#   down    stop it (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT s); data is kept
#   reset   down, then wipe this port's data (certificates and credentials included)
#   status  exit 0 when the broker runs and answers an authenticated metadata request
#   info    print what a client needs as KEY=VALUE lines: BOOTSTRAP, CA_LOCATION,
#           SASL_MECHANISM, SASL_USERNAME, SASL_PASSWORD_FILE (the password itself never
#           reaches stdout or the logs)
#
# Environment: KAFKA_PORT (SASL_SSL client listener, default 9094), KAFKA_CONTROLLER_PORT
# (default KAFKA_PORT + 1), KAFKA_HEAP_OPTS (default "-Xms128m -Xmx384m"), KAFKA_START_TIMEOUT
# (default 90), KAFKA_STOP_TIMEOUT (default 20), KAFKA_HOME, JAVA_HOME as for kafka.sh.
#
# Everything lives in <repo>/.kafka/secure-<port>/: server.properties, tls/ (CA, broker key
# and certificate, PKCS#12 keystore), client.password and broker.password (mode 0600),
# data/, logs/. The certificate is valid for 127.0.0.1 and localhost, so clients keep
# hostname verification on. Inter-broker traffic uses the same SASL_SSL listener with the
# broker's own SCRAM user; the controller listener is plaintext on loopback.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
HOST=127.0.0.1
PORT="${KAFKA_PORT:-9094}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "secure.sh: KAFKA_PORT must be a number" >&2; exit 2; }
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
BOOTSTRAP="$HOST:$PORT"
DATA_ROOT="$REPO_ROOT/.kafka/secure-$PORT"
LOG_DIRS="$DATA_ROOT/data"
LOGS="$DATA_ROOT/logs"
TLS="$DATA_ROOT/tls"
PROPS="$DATA_ROOT/server.properties"
PROBE_PROPS="$DATA_ROOT/probe.properties"
PID_FILE="$DATA_ROOT/kafka.pid"
CLIENT_USER=bouncewire
BROKER_USER=broker
MECHANISM=SCRAM-SHA-512
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}"

log() { printf 'secure.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

libs_dir() {
    if [[ -n "${KAFKA_HOME:-}" ]]; then
        echo "$KAFKA_HOME/libs"
    else
        bash "$SCRIPT_DIR/kafka.sh" fetch
        echo "$REPO_ROOT/.cache/kafka/libs"
    fi
}

run_tool() {
    local libs=$1
    shift
    timeout 120 "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2-tools.xml" -cp "$libs/*" "$@"
}

storage_tool_class() {
    if grep -qs --binary-files=text 'org/apache/kafka/tools/StorageTool.class' "$1"/kafka*.jar
    then
        echo org.apache.kafka.tools.StorageTool
    else
        echo kafka.tools.StorageTool
    fi
}

# ---------------------------------------------------------------- secrets and certificates

# A random password that needs no quoting in a JAAS line or a SCRAM spec.
new_password() { head -c 24 /dev/urandom | base64 | tr -d '+/=\n'; }

write_secret() {
    (umask 077 && new_password >"$1")
}

make_credentials_once() {
    mkdir -p "$DATA_ROOT"
    [[ -s "$DATA_ROOT/client.password" ]] || write_secret "$DATA_ROOT/client.password"
    [[ -s "$DATA_ROOT/broker.password" ]] || write_secret "$DATA_ROOT/broker.password"
}

# A throwaway CA and a broker certificate for 127.0.0.1/localhost, signed by it; the broker
# reads a PKCS#12 keystore, clients trust ca.pem.
make_certificates_once() {
    [[ -s "$TLS/broker.p12" ]] && return 0
    mkdir -p "$TLS"
    chmod 700 "$TLS"
    log "generating a test CA and a broker certificate in $TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=bouncewire test CA" \
        -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$TLS/broker.key" -out "$TLS/broker.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' \
        >"$TLS/broker.ext"
    openssl x509 -req -in "$TLS/broker.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -CAcreateserial -days 30 -extfile "$TLS/broker.ext" -out "$TLS/broker.pem" 2>/dev/null
    new_password >"$TLS/keystore.password"
    openssl pkcs12 -export -in "$TLS/broker.pem" -inkey "$TLS/broker.key" \
        -certfile "$TLS/ca.pem" -name broker -out "$TLS/broker.p12" \
        -passout "file:$TLS/keystore.password"
    chmod 600 "$TLS"/*
}

# ---------------------------------------------------------------- broker state

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

metadata_ok() {
    run_tool "$1" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" \
        --command-config "$PROBE_PROPS" --list >/dev/null 2>&1
}

jaas() {
    printf 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";' \
        "$1" "$(<"$2")"
}

write_properties() {
    mkdir -p "$LOG_DIRS" "$LOGS"
    (umask 077 && cat >"$PROPS" <<EOF
# Written by deploy/kafka/secure.sh on every 'up'; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=SASL_SSL://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=SASL_SSL://$HOST:$PORT
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=$MECHANISM
sasl.mechanism.inter.broker.protocol=$MECHANISM
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$(jaas "$BROKER_USER" "$DATA_ROOT/broker.password")
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=$(<"$TLS/keystore.password")
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
ssl.endpoint.identification.algorithm=https
ssl.client.auth=none
log.dirs=$LOG_DIRS
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=33554432
EOF
    )
    (umask 077 && cat >"$PROBE_PROPS" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=$MECHANISM
sasl.jaas.config=$(jaas "$CLIENT_USER" "$DATA_ROOT/client.password")
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
request.timeout.ms=3000
default.api.timeout.ms=5000
EOF
    )
}

# The SCRAM users exist from the first start: the storage format writes them into the
# cluster metadata, so no broker ever runs without credentials.
format_storage_once() {
    [[ -f "$LOG_DIRS/meta.properties" ]] && return 0
    local libs=$1 cluster_id
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    log "formatting KRaft storage with SCRAM users $CLIENT_USER and $BROKER_USER"
    run_tool "$libs" "$(storage_tool_class "$libs")" format -t "$cluster_id" -c "$PROPS" \
        --add-scram "$MECHANISM=[name=$CLIENT_USER,password=$(<"$DATA_ROOT/client.password")]" \
        --add-scram "$MECHANISM=[name=$BROKER_USER,password=$(<"$DATA_ROOT/broker.password")]" \
        >/dev/null
}

start_broker() {
    local libs=$1 pid
    port_open "$PORT" && die "port $PORT is in use"
    port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is in use"
    log "starting a SASL_SSL Kafka on $BOOTSTRAP, logs in $LOGS"
    setsid "$JAVA" "${HEAP_OPTS[@]}" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dkafka.logs.dir="$LOGS" \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.xml" \
        -cp "$libs/*" kafka.Kafka "$PROPS" \
        </dev/null >"$LOGS/stdout.log" 2>&1 8>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    local deadline=$((SECONDS + 10))
    while ! running_pid >/dev/null && kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.1
    done
}

wait_until_ready() {
    local libs=$1 deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! running_pid >/dev/null; then
            tail -n 30 "$LOGS/server.log" >&2 2>/dev/null || true
            die "the broker process exited"
        fi
        if port_open "$PORT" && metadata_ok "$libs"; then
            return 0
        fi
        sleep 0.5
    done
    tail -n 30 "$LOGS/server.log" >&2 2>/dev/null || true
    stop_broker
    die "no authenticated metadata answer from $BOOTSTRAP within ${START_TIMEOUT}s"
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
        make_credentials_once
        make_certificates_once
        write_properties
        format_storage_once "$libs"
        start_broker "$libs"
    fi
    wait_until_ready "$libs"
    echo "$BOOTSTRAP"
}

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
    pid=$(running_pid) || { log "no secure broker on port $PORT"; return 1; }
    metadata_ok "$(libs_dir)" || { log "broker pid $pid does not answer on $BOOTSTRAP"; return 1; }
    echo "$BOOTSTRAP"
}

cmd_info() {
    [[ -s "$DATA_ROOT/client.password" ]] || die "no credentials yet: run 'up' first"
    cat <<EOF
BOOTSTRAP=$BOOTSTRAP
CA_LOCATION=$TLS/ca.pem
SASL_MECHANISM=$MECHANISM
SASL_USERNAME=$CLIENT_USER
SASL_PASSWORD_FILE=$DATA_ROOT/client.password
EOF
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    reset) cmd_reset ;;
    status) cmd_status ;;
    info) cmd_info ;;
    *)
        echo "usage: $0 up|down|reset|status|info" >&2
        exit 2
        ;;
esac
