#!/usr/bin/env bash
# Install what the dashboard tests need beyond pip: visdom's JS/CSS assets (from the npm
# registry) and a headless Chromium (Debian package). `make test` runs this before pytest.
# Idempotent: when both are present it only checks and returns in well under a second.
#
#   PY=.venv/bin/python bash scripts/setup_test_services.sh
#
# Without root (and without passwordless sudo) Chromium cannot be installed: outside CI the
# browser tests are then skipped with a reason; under CI=true this script fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

log() { echo "setup_test_services: $*" >&2; }

find_chromium() { command -v chromium || command -v chromium-browser || true; }

# Returns 1 when there is no way to become root; exits when apt-get itself fails.
install_chromium() {
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
        as_root=(sudo -n)
    fi
    log "installing chromium with apt-get (about 20 s)"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || { log "apt-get update failed"; exit 1; }
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || { log "apt-get install chromium failed"; exit 1; }
}

if [ -z "$(find_chromium)" ] && ! install_chromium; then
    if [ -n "${CI:-}" ]; then
        log "chromium is missing and this user cannot install it: run as root, or apt-get install chromium"
        exit 1
    fi
    log "chromium is missing (not root, so not installed): the browser tests will be skipped"
fi

# --check is a cheap file test; the install itself needs the npm registry (about 7 s).
if ! "$PY" -m util.visdom_assets --check >/dev/null 2>&1; then
    "$PY" -m util.visdom_assets
fi
log "ready (chromium: $(find_chromium || true); visdom assets installed)"
