#!/usr/bin/env bash
# Search latency of `verbatim serve` over one workspace vs the same rows as two shards
# (`serve --workspace A --workspace B`), through the HTTP API on loopback.
#
# Builds nothing: uses target/release/verbatim. Makes throw-away workspaces from
# data/uci_sentiment.csv (3,000 verbatims): one holding every row, and two shards made with its
# key file, each ingesting the rows whose id hashes to it. Starts both servers, then sends the
# same queries to each in turn, one at a time (so both see the same machine load), and prints
# mean / p50 / p90 latency per mode in milliseconds.
#
#   scripts/shard_bench.sh                 # 30 rounds of 10 queries per mode
#   ROUNDS=100 scripts/shard_bench.sh
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/verbatim}
ROUNDS=${ROUNDS:-30}
PORT1=${PORT1:-18181}
PORT2=${PORT2:-18182}
export VERBATIM_MODELS=${VERBATIM_MODELS:-$PWD/models}
export VERBATIM_PRECISION=${VERBATIM_PRECISION:-fp32}

[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release --locked" >&2; exit 2; }

TMP=$(mktemp -d /tmp/verbatim-shards.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

MAP=(--text text --id id --field sentiment --field domain)
"$BIN" -q init "$TMP/whole" >/dev/null
"$BIN" -q -w "$TMP/whole" ingest data/uci_sentiment.csv "${MAP[@]}" >/dev/null
python3 - "$TMP" <<'EOF'
import csv, hashlib, sys
tmp = sys.argv[1]
rows = list(csv.reader(open("data/uci_sentiment.csv", newline="")))
outs = [csv.writer(open(f"{tmp}/part{i}.csv", "w", newline="")) for i in range(2)]
for w in outs:
    w.writerow(rows[0])
for r in rows[1:]:
    outs[hashlib.sha256(r[0].encode()).digest()[0] % 2].writerow(r)
EOF
for i in 0 1; do
  mkdir "$TMP/shard$i"
  cp "$TMP/whole/verbatim.key" "$TMP/shard$i/"
  "$BIN" -q init "$TMP/shard$i" >/dev/null
  "$BIN" -q -w "$TMP/shard$i" ingest "$TMP/part$i.csv" "${MAP[@]}" >/dev/null
done
token() { "$BIN" -w "$1" --json user add bench --role analyst | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
T1=$(token "$TMP/whole")
T2=$(token "$TMP/shard0")

export VERBATIM_SERVE_RATE=1000000 VERBATIM_SERVE_BURST=1000000
"$BIN" -q serve --workspace "$TMP/whole" --bind "127.0.0.1:$PORT1" >/dev/null &
PIDS+=($!)
"$BIN" -q serve --workspace "$TMP/shard0" --workspace "$TMP/shard1" --bind "127.0.0.1:$PORT2" >/dev/null &
PIDS+=($!)
for port in "$PORT1" "$PORT2"; do
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null && break
    sleep 0.2
  done
done

python3 - "$PORT1" "$T1" "$PORT2" "$T2" "$ROUNDS" <<'EOF'
import json, statistics, sys, time, urllib.request
p1, t1, p2, t2, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
queries = ["battery life is too short", "the food was delicious", "terrible customer service",
           "waste of money", "the acting was great", "sound quality", "slow service",
           "would not recommend", "great value for the price", "the plot made no sense"]
def search(port, token, q, mode):
    body = json.dumps({"query": q, "mode": mode, "limit": 10}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/search", data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        r.read()
    return (time.perf_counter() - t) * 1000
print(f"{'mode':8} {'workspaces':>10} {'mean ms':>8} {'p50 ms':>7} {'p90 ms':>7}")
for mode in ["text", "vector", "hybrid"]:
    for q in queries[:3]:  # warm-up: indexes loaded, sentiment stored
        search(p1, t1, q, mode); search(p2, t2, q, mode)
    lat = {1: [], 2: []}
    for _ in range(rounds):
        for q in queries:
            lat[1].append(search(p1, t1, q, mode))
            lat[2].append(search(p2, t2, q, mode))
    for n in (1, 2):
        xs = sorted(lat[n])
        print(f"{mode:8} {n:>10} {statistics.mean(xs):8.1f} {xs[len(xs)//2]:7.1f} {xs[int(len(xs)*0.9)]:7.1f}")
EOF
