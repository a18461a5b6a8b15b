#!/usr/bin/env bash
# The long crash-safety run: kill -9 at N random moments of ingest and reindex, checking after each
# that nothing reported stored was lost and that store and indexes agree.
# usage: scripts/kill-loop.sh [N=200] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export VERBATIM_KILL_ITERS="${1:-200}"
[ -n "${2:-}" ] && export VERBATIM_KILL_SEED="$2"
exec cargo test --release --locked --test it -- crash:: --nocapture
