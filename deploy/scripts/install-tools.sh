#!/usr/bin/env bash
# Installs the SRE kit's tools; idempotent and quiet, safe to run on every `make test`.
#   promtool + prometheus  from Debian's `prometheus` package (rule checks, rule unit tests,
#                          the real-Prometheus scrape test)
#   composecheck           deploy/scripts/composecheck built into <repo>/.cache/bin: loads
#                          deploy/compose.yaml with compose-go (docker compose's own loader)
#   k8scheck               deploy/scripts/k8scheck built into <repo>/.cache/bin: decodes the
#                          manifests strictly into k8s.io/api types (offline schema check)
#   postfix + swaks        Debian's packages: a throwaway Postfix (its own config and queue on
#                          loopback) whose real log the mta-log tests read; swaks, a real SMTP
#                          client, for the SMTP gateway and mail-server tests, with
#                          libnet-ssleay-perl (a Recommends of swaks: without it, no --tls)
#   kubeconform            optional, not in `all`: from the Go module proxy into .cache/bin.
#                          Its Kubernetes JSON schemas are downloaded at run time and cannot be
#                          reached here, so offline it only parses; k8scheck is what the tests use.
# Usage: deploy/scripts/install-tools.sh [prometheus|mail|composecheck|k8scheck|kubeconform|all]
#        (default: all = prometheus mail composecheck k8scheck). Go builds: ~1-2 min the first time.
# Needs root (or sudo) for apt-get; CI runs as root.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.6.7}"
BIN_DIR="$REPO/.cache/bin"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "install-tools: need root for: $*" >&2; return 1; fi
}

install_prometheus() {
    if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
        return 0
    fi
    echo "install-tools: installing Debian's prometheus package (promtool, prometheus)" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run (a parallel job, unattended upgrades) may hold the lock: wait for it.
    local wait_lock=(-o DPkg::Lock::Timeout=600)
    as_root apt-get "${wait_lock[@]}" update -qq >/dev/null
    # --no-install-recommends: skip the node exporter and friends the tests do not need.
    as_root apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends prometheus \
        >/dev/null
    # The package's service must not keep a Prometheus on :9090 running on a dev machine/CI.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
    promtool --version 2>&1 | head -1 >&2
}

install_mail_tools() {
    if command -v swaks >/dev/null && command -v postfix >/dev/null \
        && perl -MNet::SSLeay -e1 2>/dev/null; then
        return 0
    fi
    echo "install-tools: installing Debian's postfix and swaks packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    local wait_lock=(-o DPkg::Lock::Timeout=600)
    # "No configuration": the tests write their own main.cf; the system instance stays idle.
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
    as_root apt-get "${wait_lock[@]}" update -qq >/dev/null
    as_root apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends postfix swaks \
        libnet-ssleay-perl >/dev/null
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        as_root systemctl disable --now postfix >/dev/null 2>&1 || true
    fi
}

install_kubeconform() {
    if [ -x "$BIN_DIR/kubeconform" ] || command -v kubeconform >/dev/null; then
        return 0
    fi
    if ! command -v go >/dev/null; then
        echo "install-tools: go not found; kubeconform skipped" >&2
        return 0
    fi
    echo "install-tools: go install kubeconform $KUBECONFORM_VERSION" >&2
    mkdir -p "$BIN_DIR"
    GOBIN="$BIN_DIR" GOFLAGS=-mod=mod go install \
        "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
}

# Builds the Go checker deploy/scripts/<name> into .cache/bin/<name> when missing or older
# than its sources.
build_go_tool() {
    local name="$1" src="$REPO/deploy/scripts/$1" bin="$BIN_DIR/$1"
    if [ -x "$bin" ] && [ -z "$(find "$src" -newer "$bin" -type f)" ]; then
        return 0
    fi
    if ! command -v go >/dev/null; then
        echo "install-tools: go not found; $name skipped" >&2
        return 0
    fi
    echo "install-tools: building $name" >&2
    mkdir -p "$BIN_DIR"
    (cd "$src" && GOFLAGS=-mod=mod go build -o "$bin" .)
}

case "${1:-all}" in
    prometheus) install_prometheus ;;
    mail) install_mail_tools ;;
    kubeconform) install_kubeconform ;;
    composecheck|k8scheck) build_go_tool "$1" ;;
    all) install_prometheus; install_mail_tools; build_go_tool composecheck; build_go_tool k8scheck ;;
    *) echo "usage: $0 [prometheus|mail|composecheck|k8scheck|kubeconform|all]" >&2; exit 2 ;;
esac
