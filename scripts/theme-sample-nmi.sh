#!/usr/bin/env bash
# Themes at scale (issue 18): the aspect tree discovered on a uniform sample and assigned to
# every unit, against the tree discovered on every unit. Prints the NMI of the units' children
# and parents and the time of each step (BENCHMARKS.md, "Themes at scale"): the replay fidelity
# (the full run's own model assigned back), sample vs full, the same rule on both sides, and
# the resampling stability (seed 42 vs seed 7 samples of the same size).
#
#   scripts/theme-sample-nmi.sh DATA.jsonl[.gz] ROWS SAMPLE [WORKDIR]
#   e.g. scripts/theme-sample-nmi.sh ../shared/data/chitchat_utterances.jsonl.gz 100000 20000
#
# DATA is read at run time and never copied into the repository (evaluation data). WORKDIR
# (default: a temp folder) keeps the workspace, so a second call with another SAMPLE skips the
# ingest and the full discovery.
set -euo pipefail
data=$1 rows=$2 sample=$3
work=${4:-$(mktemp -d)}
bin=${VERBATIM:-target/release/verbatim}
ws=$work/ws
mkdir -p "$work"
secs() { echo "$(date +%s.%N) - $1" | bc; }
if [ ! -d "$ws" ]; then
  case $data in
    # head stops reading early: zcat's SIGPIPE (141) is not a failure.
    *.gz) zcat -- "$data" | head -n "$rows" > "$work/rows.jsonl" || [ "${PIPESTATUS[0]}" = 141 ] ;;
    *) head -n "$rows" "$data" > "$work/rows.jsonl" ;;
  esac
  "$bin" -q init "$ws"
  # The full run discovers on every unit, whatever their number (the default samples above
  # 50,000 units: README, "Themes at scale").
  printf '\n[themes]\nsample_above_units = 1000000000\n' >> "$ws/verbatim.toml"
  t0=$(date +%s.%N)
  "$bin" -q -w "$ws" ingest "$work/rows.jsonl" --text text --id id
  echo "ingest (embedding) of $rows rows: $(secs "$t0") s"
fi
if [ ! -f "$work/full.jsonl" ]; then
  t0=$(date +%s.%N)
  "$bin" -q -w "$ws" themes > /dev/null
  echo "first themes (units embedded, topic run, tree on every unit): $(secs "$t0") s"
  "$bin" -q -w "$ws" themes assignments --out "$work/full.jsonl"
  t0=$(date +%s.%N)
  "$bin" -q -w "$ws" themes export-model --out "$work/model-all.json"
  echo "discovery on every verbatim (export-model): $(secs "$t0") s"
  # The rule's fidelity: the full run's model assigned back to the units it was found on.
  "$bin" -q -w "$ws" themes import "$work/model-all.json"
  "$bin" -q -w "$ws" themes assignments --out "$work/all-assigned.jsonl"
fi
for seed in 42 7; do
  t0=$(date +%s.%N)
  "$bin" -q -w "$ws" themes export-model --sample "$sample" --sample-seed $seed \
    --out "$work/model-$sample-$seed.json"
  echo "discovery on a sample of $sample verbatims, seed $seed (export-model): $(secs "$t0") s"
  t0=$(date +%s.%N)
  "$bin" -q -w "$ws" themes import "$work/model-$sample-$seed.json"
  echo "assignment of every unit (import): $(secs "$t0") s"
  "$bin" -q -w "$ws" themes assignments --out "$work/sample-$sample-$seed.jsonl"
done
compare() {
  python3 - "$1" "$2" <<'PY'
import json, math, sys
from collections import Counter
def read(p):
    return {(r["id"], r["start"]): (r["theme"], r["parent"]) for r in map(json.loads, open(p))}
a, b = read(sys.argv[1]), read(sys.argv[2])
keys = sorted(a)
assert keys == sorted(b), "the same units"
def nmi(x, y):
    n = len(x); cx, cy, cxy = Counter(x), Counter(y), Counter(zip(x, y))
    h = lambda c: -sum(k / n * math.log(k / n) for k in c.values())
    mi = sum(k / n * math.log((k / n) / (cx[i] / n * cy[j] / n)) for (i, j), k in cxy.items())
    d = (h(cx) + h(cy)) / 2
    return 1.0 if d <= 0 else mi / d
for lvl, name in ((0, "children"), (1, "parents")):
    x = [a[k][lvl] or "-" for k in keys]; y = [b[k][lvl] or "-" for k in keys]
    same = sum(p == q for p, q in zip(x, y)) / len(keys)
    print(f"  {name}: NMI {nmi(x, y):.4f}, same node {same:.4f} "
          f"({len(set(x))} vs {len(set(y))} nodes, {len(keys)} units)")
PY
}
echo "full discovery vs its own model assigned back to the same units:"
compare "$work/full.jsonl" "$work/all-assigned.jsonl"
echo "full discovery vs discovered on a sample of $sample + every unit assigned:"
compare "$work/full.jsonl" "$work/sample-$sample-42.jsonl"
# The same assignment rule on both sides: what the sample changed in the decisions alone.
echo "full model assigned to every unit vs the sample's model assigned to every unit:"
compare "$work/all-assigned.jsonl" "$work/sample-$sample-42.jsonl"
# Resampling stability: two samples of the same size, both assigned to every unit.
echo "sample of $sample (seed 42) vs sample of $sample (seed 7), both assigned to every unit:"
compare "$work/sample-$sample-42.jsonl" "$work/sample-$sample-7.jsonl"
