#!/usr/bin/env bash
# Installs the SRE kit's tools; idempotent and quiet, safe to run on every `make test`.
#   promtool + prometheus  from Debian's `prometheus` package (rule checks, rule unit tests,
#                          the real-Prometheus scrape test)
#   kubeconform            from the Go module proxy into <repo>/.cache/bin (manifest checks)
#   composecheck           deploy/scripts/composecheck built into <repo>/.cache/bin: loads
#                          deploy/compose.yaml with compose-go (docker compose's own loader)
# Usage: deploy/scripts/install-tools.sh [prometheus|kubeconform|composecheck|all]
#        (default: all)
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

install_composecheck() {
    local src="$REPO/deploy/scripts/composecheck" bin="$BIN_DIR/composecheck"
    if [ -x "$bin" ] && [ -z "$(find "$src" -newer "$bin" -type f)" ]; then
        return 0
    fi
    if ! command -v go >/dev/null; then
        echo "install-tools: go not found; composecheck skipped" >&2
        return 0
    fi
    echo "install-tools: building composecheck" >&2
    mkdir -p "$BIN_DIR"
    (cd "$src" && GOFLAGS=-mod=mod go build -o "$bin" .)
}

case "${1:-all}" in
    prometheus) install_prometheus ;;
    kubeconform) install_kubeconform ;;
    composecheck) install_composecheck ;;
    all) install_prometheus; install_kubeconform; install_composecheck ;;
    *) echo "usage: $0 [prometheus|kubeconform|composecheck|all]" >&2; exit 2 ;;
esac
