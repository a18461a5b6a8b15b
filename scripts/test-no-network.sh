#!/usr/bin/env bash
# Runs the test suite inside a fresh network namespace (`unshare -rn`): no interface but a
# loopback (brought up for the HTTP server's tests), no route anywhere. Proves that the engine,
# its models and its tests need no network. The test binaries are built first, with the
# registries, by the caller (`make test`). Falls back to a plain run, loudly, where user
# namespaces are not allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
if unshare -rn true 2>/dev/null && command -v ip >/dev/null 2>&1; then
    echo "running the tests in a network namespace with only a loopback interface (unshare -rn)"
    exec unshare -rn sh -c "ip link set lo up && ip -o link | awk '{print \"  interface:\", \$2}' && \
        ! getent hosts crates.io >/dev/null 2>&1 && exec $CARGO test --release --locked --offline $*"
else
    echo "WARNING: unshare -rn is not permitted here: the tests run WITH the network" >&2
    exec $CARGO test --release --locked "$@"
fi
