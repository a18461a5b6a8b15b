#!/usr/bin/env bash
# Builds a benchmark workspace of N verbatims (default 1,000,000) from every data set in
# ../shared/data, and reports what issue 17 asks of it: ingest wall time against pure embedding
# of the same texts, store and index sizes, peak RSS.
#
#   benches/build_1m.sh [N] [WORKSPACE]        # e.g. benches/build_1m.sh 200000 /tmp/ws200k
#
# Environment: VERBATIM (the binary; default target/release/verbatim), DATA (default
# ../shared/data), THREADS (default: all cores), PURE=0 skips the pure-embedding pass (it takes
# about as long as the ingest), PURE_ROWS=K embeds only the first K rows and scales the time.
#
# The sets hold about 302,700 texts (chit-chat 258,112, 20 Newsgroups 18,821, airline tweets
# 14,640, Amazon fine foods 5,000, SemEval laptops 3,045, UCI sentences 3,000, Debian FAQ (fr)
# 146). N above that repeats them: pass k ≥ 1 gives every row the id `SET:ID#rk`, so repeated
# texts are distinct verbatims (embedded and indexed again: nothing is deduplicated by text),
# and the script prints how many rows are repeats. The rows are interleaved across sets in
# blocks so a prefix (N below 302,700) still mixes every set. The evaluation-only sets
# (airline, SemEval, Amazon) are read at run time into WORKSPACE, never copied into the project.
set -euo pipefail

N=${1:-1000000}
WS=${2:-/tmp/verbatim-ws-$N}
HERE=$(cd "$(dirname "$0")/.." && pwd)
VERBATIM=${VERBATIM:-$HERE/target/release/verbatim}
DATA=${DATA:-$HERE/../shared/data}
THREADS=${THREADS:-$(nproc)}
PURE=${PURE:-1}
PURE_ROWS=${PURE_ROWS:-0}

[ -x "$VERBATIM" ] || { echo "build_1m.sh: no binary at $VERBATIM (cargo build --release)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "build_1m.sh: no data folder at $DATA" >&2; exit 2; }
[ -e "$WS" ] && { echo "build_1m.sh: $WS exists; give a new folder" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/build_1m.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
INPUT=$WORK/input.jsonl

# One JSON Lines file: id, text, set (a segment field), respondent where the set has one.
python3 - "$DATA" "$N" "$INPUT" <<'PY'
import gzip, json, sys, os, itertools
data, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sets = {
    "chitchat": ("chitchat_utterances.jsonl.gz", None),
    "20ng": ("20newsgroups.jsonl.gz", None),
    "airline": ("airline_tweets.jsonl", "user"),
    "amazon": ("amazon_fine_foods.jsonl", None),
    "semeval": ("semeval14_laptops.jsonl", None),
    "uci": ("uci_sentiment_sentences.jsonl", None),
    "debian_fr": ("debian_faq_fr.jsonl", None),
}
rows = {}
for name, (f, resp) in sets.items():
    p = os.path.join(data, f)
    op = gzip.open if f.endswith(".gz") else open
    with op(p, "rt", encoding="utf-8") as fh:
        rows[name] = [(str(r["id"]), r["text"], r.get(resp) if resp else None)
                      for r in map(json.loads, fh) if r.get("text")]
total = sum(len(v) for v in rows.values())
# Interleave in blocks of 1,000 (proportional to set size) so any prefix mixes every set.
order = []
cursors = {k: 0 for k in rows}
while any(cursors[k] < len(rows[k]) for k in rows):
    for k, v in rows.items():
        take = max(1, round(1000 * len(v) / total))
        for i in range(cursors[k], min(cursors[k] + take, len(v))):
            order.append((k, i))
        cursors[k] += take
written = repeats = 0
with open(out, "w", encoding="utf-8") as o:
    for k in itertools.count():
        for name, i in order:
            if written == n:
                break
            rid, text, resp = rows[name][i]
            rec = {"id": f"{name}:{rid}" + (f"#r{k}" if k else ""), "text": text, "set": name}
            if resp:
                rec["respondent"] = resp
            o.write(json.dumps(rec, ensure_ascii=False) + "\n")
            written += 1
            repeats += k > 0
        if written == n:
            break
print(f"input: {written} rows from {len(rows)} sets ({total} distinct texts); "
      f"{repeats} rows are repeats of earlier texts under new ids (#rK)", file=sys.stderr)
PY

peak() { grep -E "Maximum resident" "$1" | awk '{printf "%.0f MB", $NF/1024}'; }
wall() { grep -E "Elapsed \(wall" "$1" | awk '{print $NF}'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$VERBATIM" -w "$WS" init >/dev/null
# Exit 1 is an ingest that stored its rows and rejected some (the sets hold a few texts over
# the 64 KiB limit: their file:line are in the run's record); anything else stops the script.
rc=0
/usr/bin/time -v "$VERBATIM" -w "$WS" --threads "$THREADS" --progress jsonl --json ingest \
    --format jsonl --text text --id id --respondent respondent --field set "$INPUT" \
    >"$WORK/ingest.json" 2>"$WORK/ingest.err" || rc=$?
if [ "$rc" -gt 1 ]; then
    echo "build_1m.sh: ingest failed (exit $rc):" >&2; tail -20 "$WORK/ingest.err" >&2; exit "$rc"
fi
echo "load after ingest: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# Seconds each step took (the last event of each step carries its elapsed time).
STEPS=$(python3 - "$WORK/ingest.err" <<'PY'
import json, sys
last = {}
for l in open(sys.argv[1]):
    if l.startswith("{"):
        e = json.loads(l); last[e["step"]] = e.get("elapsed_s", 0)
print(", ".join(f"{k} {v:.1f} s" for k, v in last.items()))
PY
)

secs() { python3 -c "
parts = [float(p) for p in '$1'.split(':')]
print(round(sum(p * 60 ** i for i, p in enumerate(reversed(parts))), 1))"; }

PURE_S=""
if [ "$PURE" = 1 ]; then
    EMBED_IN=$INPUT
    if [ "$PURE_ROWS" -gt 0 ]; then head -n "$PURE_ROWS" "$INPUT" >"$WORK/pure.jsonl"; EMBED_IN=$WORK/pure.jsonl; fi
    /usr/bin/time -v "$VERBATIM" -w "$WS" --threads "$THREADS" -q embed --out "$WORK/pure.npy" "$EMBED_IN" \
        >/dev/null 2>"$WORK/embed.err"
    PURE_S=$(python3 -c "print(round($(secs "$(wall "$WORK/embed.err")") * $(wc -l <"$INPUT") / $(wc -l <"$EMBED_IN"), 1))")
fi

INGEST_S=$(secs "$(wall "$WORK/ingest.err")")
size() { du -sb "$1" 2>/dev/null | awk '{printf "%.1f MB", $1/1e6}'; }

echo "verbatims:       $(python3 -c "import json;r=json.load(open('$WORK/ingest.json'));print(r.get('stored'), 'stored,', r.get('rejected'), 'rejected')")"
echo "ingest wall:     $INGEST_S s (peak RSS $(peak "$WORK/ingest.err")); steps: $STEPS"
if [ -n "$PURE_S" ]; then
    echo "pure embedding:  $PURE_S s$([ "$PURE_ROWS" -gt 0 ] && echo " (first $PURE_ROWS rows, scaled)") (peak RSS $(peak "$WORK/embed.err"))"
    echo "ratio:           $(python3 -c "print(f'{$INGEST_S / $PURE_S:.2f}x')")"
fi
echo "store:           $(size "$WS/store.sqlite")"
echo "text index:      $(size "$WS/index/text")"
echo "vector index:    $(size "$WS/index/vectors")"
echo "threads $THREADS, $(nproc) cores, load now $(cut -d' ' -f1-3 /proc/loadavg)"
