#!/usr/bin/env bash
# Start a visdom server in the background for the training dashboard (--display_id > 0).
#
#   bash scripts/start_visdom.sh [PORT] [--host HOST]      (PORT defaults to 8097)
#
# The server listens on 127.0.0.1 only, so nobody else on the network can read (or, through
# visdom's API, write) the dashboard. To listen on every interface pass `--host 0.0.0.0` or set
# VISDOM_HOST=0.0.0.0 (visdom has no option for a single other address).
# Its log and PID file go to VISDOM_DIR (default checkpoints/visdom), which is also where
# `vis.save()` stores environments. PY picks the Python (default .venv/bin/python).
# Missing dashboard assets are installed first from the npm registry (util/visdom_assets.py).
# Stop it with: kill "$(cat checkpoints/visdom/server_PORT.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: bash scripts/start_visdom.sh [PORT] [--host HOST]" >&2; exit 2; }

PORT=8097
HOST=${VISDOM_HOST:-127.0.0.1}
while [ $# -gt 0 ]; do
    case "$1" in
        --host) [ $# -ge 2 ] || usage; HOST=$2; shift 2 ;;
        -h|--help) usage ;;
        *[!0-9]*|"") echo "not a port number: '$1' (ports run from 1 to 65535)" >&2; exit 2 ;;
        *) PORT=$1; shift ;;
    esac
done
if [ "${#PORT}" -gt 5 ] || [ "$((10#$PORT))" -lt 1 ] || [ "$((10#$PORT))" -gt 65535 ]; then
    echo "not a port number: $PORT (ports run from 1 to 65535)" >&2
    exit 2
fi
PORT=$((10#$PORT))
if [ -z "${PY:-}" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
DIR=${VISDOM_DIR:-checkpoints/visdom}
LOG="$DIR/server_$PORT.log"
PIDFILE="$DIR/server_$PORT.pid"
mkdir -p "$DIR"

case "$HOST" in
    127.0.0.1|localhost) BIND=(-bind_local); SHOWN=127.0.0.1 ;;
    0.0.0.0) BIND=(); SHOWN=$(hostname) ;;
    *) echo "visdom can listen on 127.0.0.1 or on every interface (0.0.0.0), not on $HOST" >&2; exit 2 ;;
esac
URL="http://$SHOWN:$PORT"

# answers URL: exit 0 when an HTTP server replies on the port.
answers() {
    "$PY" - "$1" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1).close()
except Exception:
    sys.exit(1)
EOF
}

# ours: the PID file names a live visdom server started here.
ours() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "visdom.server"
}

# free PORT: exit 0 when nothing listens on the port (it can be bound).
free() {
    "$PY" - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
EOF
}

if ours; then
    echo "a visdom server started here already answers on port $PORT (PID $(cat "$PIDFILE")): $URL"
    exit 0
fi
if answers "http://127.0.0.1:$PORT" || ! free "$PORT"; then
    echo "port $PORT is held by another program (not a visdom server started by this script): pass another" \
        "port, e.g. bash scripts/start_visdom.sh $((PORT < 65535 ? PORT + 1 : PORT - 1)), and the same" \
        "--display_port to train.py" >&2
    exit 2
fi

if ! "$PY" -m util.visdom_assets --check >/dev/null 2>&1; then
    "$PY" -m util.visdom_assets
fi

# setsid: own session, so the server survives this shell and Ctrl-C in the terminal
# that started it; no terminal means no SIGHUP either.
setsid "$PY" -m visdom.server -port "$PORT" "${BIND[@]}" -env_path "$DIR" \
    >"$LOG" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

for _ in $(seq 1 60); do
    if answers "http://127.0.0.1:$PORT"; then
        echo "visdom server running, PID $PID: $URL  (log: $LOG)"
        exit 0
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "the visdom server exited; last lines of $LOG:" >&2
        tail -n 20 "$LOG" >&2
        rm -f "$PIDFILE"
        exit 1
    fi
    sleep 0.5
done
echo "the visdom server (PID $PID) did not answer on port $PORT within 30 s; see $LOG" >&2
exit 1
