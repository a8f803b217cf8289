#!/usr/bin/env bash
# Sets everything up, builds the app and runs it: the app on
# http://127.0.0.1:8080/ and a local relay with its embedded store on
# ws://127.0.0.1:8787/sync. Ctrl-C stops both.
#   APP_PORT=8080 RELAY_PORT=8787 scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

APP_PORT=${APP_PORT:-8080}
RELAY_PORT=${RELAY_PORT:-8787}

echo "[run] building the app (release)"
trunk build --release
echo "[run] building the relay"
cargo build --release -p rapport-relay --locked

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

target/release/rapport-relay --bind "127.0.0.1:$RELAY_PORT" --data-dir relay-data &
pids+=($!)
node scripts/serve.mjs dist "$APP_PORT" 127.0.0.1 &
pids+=($!)
sleep 1
cat <<MSG

  Rapport is running.
    App:   http://127.0.0.1:$APP_PORT/
    Relay: ws://127.0.0.1:$RELAY_PORT/sync   (health: http://127.0.0.1:$RELAY_PORT/healthz, data in ./relay-data)

  Press Ctrl-C to stop.
MSG
wait
