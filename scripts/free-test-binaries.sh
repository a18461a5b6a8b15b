#!/usr/bin/env bash
# Deletes the test executables that `cargo test --release --no-run` built (lib, bin and
# integration tests: a few GB with their line tables), keeping the release binary, the
# libraries and the fingerprints, so `make build` stays a no-op. CI runs it between `make test`
# and `make test-spark`: the Spark check downloads and builds pyspark (a 456 MB source package,
# ~1.4 GB on disk while it installs) and CI disks can be small (stop 26 ran out of space there).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
before=$(df -Pk . | awk 'NR==2 {print $4}')
$CARGO test --release --locked --offline --no-run --message-format=json 2>/dev/null \
    | python3 -c '
import json, os, sys
gone = 0
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    exe = m.get("executable")
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and exe \
            and os.path.isfile(exe):
        os.remove(exe)
        gone += 1
print(f"free-test-binaries: removed {gone} test executables", file=sys.stderr)
'
after=$(df -Pk . | awk 'NR==2 {print $4}')
echo "free-test-binaries: $(( (after - before) / 1024 )) MiB freed, $(( after / 1024 )) MiB free" >&2
