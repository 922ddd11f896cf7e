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
# What this script shares with kafka.sh and cluster.sh lives in lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
single_node_layout 9094 secure-
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}"
TLS="$DATA_ROOT/tls"
CLIENT_USER=bouncewire
BROKER_USER=broker
MECHANISM=SCRAM-SHA-512

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

# ---------------------------------------------------------------- broker configuration

jaas() {
    printf 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";' \
        "$1" "$(<"$2")"
}

write_properties() {
    mkdir -p "$LOG_DIRS" "$LOGS"
    (umask 077 && single_node_properties >"$PROPS" <<EOF
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
EOF
    )
    (umask 077 && cat >"$PROBE_PROPS" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=$MECHANISM
sasl.jaas.config=$(jaas "$CLIENT_USER" "$DATA_ROOT/client.password")
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
$(probe_timeouts)
EOF
    )
}

# The SCRAM users exist from the first start: the storage format writes them into the
# cluster metadata, so no broker ever runs without credentials.
format_storage_once() {
    storage_formatted && return 0
    log "formatting KRaft storage with SCRAM users $CLIENT_USER and $BROKER_USER"
    format_storage "$1" "$(new_cluster_id)" "$PROPS" \
        --add-scram "$MECHANISM=[name=$CLIENT_USER,password=$(<"$DATA_ROOT/client.password")]" \
        --add-scram "$MECHANISM=[name=$BROKER_USER,password=$(<"$DATA_ROOT/broker.password")]" \
        >/dev/null
}

# lib.sh's cmd_up calls this when no broker of this checkout runs on the port.
start_fresh() {
    local libs=$1
    make_credentials_once
    make_certificates_once
    write_properties
    format_storage_once "$libs"
    ports_free_or_die
    log "starting a SASL_SSL Kafka on $BOOTSTRAP, logs in $LOGS"
    start_broker "$libs"
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
