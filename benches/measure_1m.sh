#!/usr/bin/env bash
# Measures a workspace built by benches/build_1m.sh (issue 17 items 2 and 6): sizes, `stats`, a
# CLI search cold and warm, the latency bench (p50/p99 and its stages), `serve` (first request,
# 20 searches over HTTP, peak RSS), `forget` of three airline respondents with step times,
# `check`, `backup` / `restore`. Changes the workspace (forget); copy it first to keep it.
#
#   WS=/tmp/ws1m V=target/release/verbatim \
#   BENCH=$(ls target/release/deps/retrieval-* | grep -v '\.d$' | head -1) benches/measure_1m.sh
#
# BENCH: the latency bench's executable (`cargo bench --bench retrieval --no-run` prints it);
# without it that part is skipped. Backup and restore write next to the workspace (TMPDIR).
set -uo pipefail
WS=${WS:?WS: the workspace}; V=${V:-target/release/verbatim}
t() { local s=$(date +%s.%N); "$@"; local rc=$?; echo "  [$(python3 -c "print(round($(date +%s.%N)-$s,2))") s, rc $rc]"; }
echo "== load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== sizes"; du -sb $WS/store.sqlite* $WS/index/text $WS/index/vectors 2>/dev/null
echo "== stats"; t $V -w $WS -q stats | head -20
echo "== search cold/warm"
for i in 1 2; do /usr/bin/time -f "  wall %e s, RSS %M KB" $V -w $WS -q search "flight delayed and luggage lost" --limit 5 | cut -c1-120; done
if [ -n "${BENCH:-}" ]; then
  echo "== latency bench"
  VERBATIM_BENCH_THREADS=2 VERBATIM_BENCH_MODELS= VERBATIM_BENCH_LATENCY=1000000 VERBATIM_BENCH_WS=$WS $BENCH --bench 2>&1 | grep -E "^\||p50|hybrid|text|vector|sentiment" | head -60
fi
echo "== serve RSS"
TOK=$($V -q -w $WS user add "bench1m-$$" --role analyst 2>/dev/null | tail -1)
$V -w $WS serve --bind 127.0.0.1:18181 > "${TMPDIR:-/tmp}/serve1m.out" 2>&1 & SP=$!
for i in $(seq 1 120); do grep -q listening "${TMPDIR:-/tmp}/serve1m.out" && break; sleep 1; done
echo "  up after ~${i} s; RSS after start $(grep VmRSS /proc/$SP/status)"
for q in "flight delayed" "lost luggage" "rude staff" "battery life" "refund not received" "great coffee" "customer service on hold" "package arrived damaged" "seat broken" "wifi did not work" "cancelled flight refund" "tastes stale" "too expensive" "friendly crew" "linux kernel driver" "screen cracked" "late delivery" "no vegetarian option" "app crashes" "charged twice"; do
  curl -s -o /dev/null -w "  %{http_code} %{time_total}s $q\n" -H "Authorization: Bearer $TOK" -H 'content-type: application/json' -d "{\"query\":\"$q\",\"limit\":10}" http://127.0.0.1:18181/v1/search
done
echo "  $(grep -E 'VmHWM|VmRSS' /proc/$SP/status | tr '\n' ' ')"
kill -TERM $SP; wait $SP
echo "== forget (three respondents)"
for who in miaerolinea otisday 0504Traveller; do
  echo "-- $who"; t $V -w $WS --progress jsonl forget --respondent "$who" 2>"${TMPDIR:-/tmp}/forget_$who.err" | tail -3
  python3 - "${TMPDIR:-/tmp}/forget_$who.err" <<'PY'
import json,sys
last={}
for l in open(sys.argv[1]):
    if l.startswith("{"):
        e=json.loads(l); last[e.get("step")]=e.get("elapsed_s",0)
print("   steps:", ", ".join(f"{k} {v:.2f}s" for k,v in last.items()))
PY
done
echo "== check"; /usr/bin/time -f "  wall %e s, RSS %M KB" $V -w $WS -q check | tail -5
echo "== backup/restore"
rm -rf "${TMPDIR:-/tmp}/b1m.vbk" "${TMPDIR:-/tmp}/r1m"
export VERBATIM_BACKUP_PASSPHRASE="bench passphrase 1m correct horse"
/usr/bin/time -f "  backup wall %e s, RSS %M KB" $V -w $WS -q backup --out "${TMPDIR:-/tmp}/b1m.vbk"; ls -la "${TMPDIR:-/tmp}/b1m.vbk"
/usr/bin/time -f "  restore wall %e s, RSS %M KB" $V -q restore "${TMPDIR:-/tmp}/b1m.vbk" --to "${TMPDIR:-/tmp}/r1m"
rm -rf "${TMPDIR:-/tmp}/b1m.vbk" "${TMPDIR:-/tmp}/r1m"
echo "== load $(cut -d' ' -f1-3 /proc/loadavg)"
