#!/usr/bin/env bash
# Issue 19: verbatim fp32, verbatim bf16, PyTorch fp32 and PyTorch bf16 (sentence-transformers,
# `peers.py embed --dtype`) on the same files, 2 threads, batch 32, taking turns (A, B, C, D, then
# again) so that a change in the machine's load hits all four alike; the load average is printed
# beside every run. Also the min cosine between verbatim's bf16 and fp32 vectors per file.
#
#   [FILES="uci ng"] benches/peers/bf16_side_by_side.sh [ROUNDS]   (from the repository root, after
#                                                       `cargo build --release`)
#
# Needs ../shared/data (UCI sentences, 20 Newsgroups) and the peers venv
# (~/.cache/peers-venv, or $PEERS_VENV; built by ../shared/tools/peers/setup.sh).
set -euo pipefail
ROUNDS=${1:-2}
BIN=${VERBATIM_BIN:-target/release/verbatim}
PY=${PEERS_VENV:-$HOME/.cache/peers-venv}/bin/python
PEERS=../shared/tools/peers/peers.py
MODEL=models/all-MiniLM-L6-v2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp ../shared/data/uci_sentiment_sentences.jsonl "$TMP/uci.jsonl"
(gzip -dc ../shared/data/20newsgroups.jsonl.gz || true) | head -n 1000 > "$TMP/ng.jsonl"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs," \
  "flags: $(grep -m1 -o 'amx_bf16' /proc/cpuinfo || echo no-amx) $(grep -m1 -o 'avx512_bf16' /proc/cpuinfo || echo no-avx512bf16)"
load() { cut -d' ' -f1-3 /proc/loadavg; }
verbatim() { # precision file
  "$BIN" --threads 2 --precision "$1" --quiet --json embed --no-redact "$2" -o "$TMP/$(basename "$2" .jsonl)-$1.npy" 2>/dev/null |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("%.1f" % (d["rows"]/d["seconds"]), d["precision"])'
}
peer() { # dtype file
  "$PY" "$PEERS" embed --input "$2" --model "$MODEL" --threads 2 --batch 32 --dtype "$1" 2>/dev/null |
    tail -n 1 | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["sent_per_s"], d["peer"])'
}
for f in ${FILES:-uci ng}; do
  for r in $(seq "$ROUNDS"); do
    echo "$f round $r | verbatim fp32 $(verbatim fp32 "$TMP/$f.jsonl") | load $(load)"
    echo "$f round $r | verbatim bf16 $(verbatim bf16 "$TMP/$f.jsonl") | load $(load)"
    echo "$f round $r | torch fp32 $(peer fp32 "$TMP/$f.jsonl") | load $(load)"
    echo "$f round $r | torch bf16 $(peer bf16 "$TMP/$f.jsonl") | load $(load)"
  done
  "$PY" -c 'import numpy as np,sys; a=np.load(sys.argv[1]); b=np.load(sys.argv[2]); c=(a*b).sum(1); print(sys.argv[3], "bf16 vs fp32 over %d texts: min cosine %.5f, mean %.6f" % (len(c), c.min(), c.mean()))' \
    "$TMP/$f-fp32.npy" "$TMP/$f-bf16.npy" "$f"
done
