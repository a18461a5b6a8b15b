#!/usr/bin/env bash
# Load test of `verbatim serve` on loopback.
#
# Builds nothing: uses target/release/verbatim (run `cargo build --release --locked` first).
# Makes a throw-away workspace from data/uci_sentiment.csv (3,000 verbatims), adds an analyst
# with a token, starts `serve` on 127.0.0.1 with the rate limit raised out of the way, then
# runs each scenario for a fixed duration at a fixed concurrency with oha
# (`cargo install oha --locked`) or, without it, wrk. Prints requests/s, p50, p99 and errors.
#
#   scripts/loadtest.sh                   # 20 s per scenario, 8 connections
#   DURATION=60 CONCURRENCY=32 scripts/loadtest.sh
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/verbatim}
DURATION=${DURATION:-20}
CONCURRENCY=${CONCURRENCY:-8}
PORT=${PORT:-18080}
export VERBATIM_MODELS=${VERBATIM_MODELS:-$PWD/models}

[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release --locked" >&2; exit 2; }
if command -v oha >/dev/null; then TOOL=oha
elif command -v wrk >/dev/null; then TOOL=wrk
else echo "install oha (cargo install oha --locked) or wrk (apt-get install wrk)" >&2; exit 2
fi

WS=$(mktemp -d /tmp/verbatim-loadtest.XXXXXX)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WS"
}
trap cleanup EXIT

"$BIN" -q init "$WS" >/dev/null
"$BIN" -q -w "$WS" ingest data/uci_sentiment.csv --text text --id id --field sentiment --field domain >/dev/null
TOKEN=$("$BIN" -w "$WS" --json user add loadtest --role analyst | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# The per-token rate limit would turn most of the load into 429s: raise it for the test.
VERBATIM_SERVE_RATE=1000000 VERBATIM_SERVE_BURST=1000000 \
  "$BIN" -q -w "$WS" serve --bind "127.0.0.1:$PORT" >"$WS/serve.out" 2>"$WS/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 300); do
  python3 - "$PORT" <<'PY' 2>/dev/null && break
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
assert s.recv(12).startswith(b"HTTP/1.1 200")
PY
  sleep 0.1
done

URL="http://127.0.0.1:$PORT"
echo "verbatim serve load test: $TOOL, ${DURATION}s per scenario, $CONCURRENCY connections, $(nproc) CPU(s), 3000 verbatims"
printf '%-28s %10s %10s %10s %8s\n' scenario "req/s" "p50 ms" "p99 ms" errors

run() {  # name method path [json body]
  local name=$1 method=$2 path=$3 body=${4:-}
  if [ "$TOOL" = oha ]; then
    local args=(-z "${DURATION}s" -w -c "$CONCURRENCY" --no-tui --output-format json -m "$method"
                -H "Authorization: Bearer $TOKEN")
    [ -n "$body" ] && args+=(-H "Content-Type: application/json" -d "$body")
    oha "${args[@]}" "$URL$path" | python3 -c '
import json, sys
r = json.load(sys.stdin)
codes = {int(k): v for k, v in r.get("statusCodeDistribution", {}).items()}
errors = sum(v for k, v in codes.items() if k != 200) + sum(r.get("errorDistribution", {}).values())
p = r["latencyPercentiles"]
print("%-28s %10.1f %10.2f %10.2f %8d" % (sys.argv[1], r["summary"]["requestsPerSec"],
      1000 * p["p50"], 1000 * p["p99"], errors))' "$name"
  else
    local lua="$WS/req.lua"
    cat >"$lua" <<LUA
wrk.method = "$method"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[$body]]
errors = 0
response = function(status) if status ~= 200 then errors = errors + 1 end end
done = function(summary, latency, requests)
  io.write(string.format("%-28s %10.1f %10.2f %10.2f %8d\n", "$name",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
    wrk -t 2 -c "$CONCURRENCY" -d "${DURATION}s" -s "$lua" --latency "$URL$path" | tail -1
  fi
}

run "GET /v1/stats" GET /v1/stats
run "POST /v1/search text" POST /v1/search '{"query":"battery life is terrible","mode":"text","limit":10}'
run "POST /v1/search hybrid" POST /v1/search '{"query":"battery life is terrible","mode":"hybrid","limit":10}'
