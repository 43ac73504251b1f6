#!/usr/bin/env bash
# Starts `zumik sim` on a free loopback port, runs the OpenAI Node SDK tests against it, stops it.
# Usage: run.sh ZUMIK_BIN NODE_MODULES_DIR
set -euo pipefail
zumik=$1
node_modules=$2
here=$(cd "$(dirname "$0")" && pwd)
if [[ ! -d $node_modules/openai ]]; then
  echo "openai npm package missing in $node_modules: run scripts/bootstrap" >&2
  exit 1
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/zumik-sim-sdk-XXXXXX.log)
"$zumik" sim --replicas 1 --port "$port" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2>/dev/null; then cat "$log"; exit 1; fi
  sleep 0.05
done
workdir=$(mktemp -d /tmp/zumik-sdk-XXXXXX)
cp "$here/compat.test.mjs" "$workdir/"
ln -s "$(cd "$node_modules" && pwd)" "$workdir/node_modules"
ZUMIK_SIM_URL="http://127.0.0.1:$port" node --test "$workdir/compat.test.mjs"
rm -rf "$workdir"
