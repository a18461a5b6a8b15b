#!/usr/bin/env bash
# Screenshot an HTML report with headless Chromium, fully offline.
#
#   scripts/screenshot-report.sh REPORT.html [OUT.png]
#
# OUT.png defaults to REPORT.png next to the report. Environment:
#   CHROMIUM      the browser to run (default: the first of chromium, chromium-browser,
#                 google-chrome, google-chrome-stable on PATH)
#   WINDOW_SIZE   viewport as WIDTH,HEIGHT (default 1280,3000); the shot is the viewport, so
#                 make it tall enough for the page
#   TIMEOUT       seconds before Chromium is stopped (default 120)
#
# The flags keep Chromium from reaching the network (no QUIC, no background networking,
# component updates or sync) and use a throw-away profile, so the shot shows the report
# exactly as a user without network access would see it.
set -euo pipefail

usage() {
    echo "usage: $0 REPORT.html [OUT.png]" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
report=$1
[[ -f $report ]] || { echo "error: no such file: $report" >&2; exit 2; }
out=${2:-${report%.*}.png}

browser=${CHROMIUM:-}
if [[ -z $browser ]]; then
    for candidate in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$candidate" >/dev/null 2>&1; then
            browser=$candidate
            break
        fi
    done
fi
if [[ -z $browser ]] || ! command -v "$browser" >/dev/null 2>&1; then
    echo "error: Chromium not found (tried chromium, chromium-browser, google-chrome," \
        "google-chrome-stable; set CHROMIUM to override)." >&2
    echo "       On Debian/Ubuntu: apt-get install -y chromium" >&2
    exit 3
fi

# Chromium wants absolute paths for both the page URL and the screenshot.
abs() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd -P)" "$(basename "$1")"); }
report_abs=$(abs "$report")
mkdir -p "$(dirname "$out")"
out_abs=$(abs "$out")

profile=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$profile" "$log"' EXIT

rm -f "$out_abs"
status=0
timeout "${TIMEOUT:-120}" "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size="${WINDOW_SIZE:-1280,3000}" \
    --screenshot="$out_abs" "file://$report_abs" >"$log" 2>&1 || status=$?

# Chromium's exit status is unreliable in headless mode (it can fail after writing the shot,
# or exit 0 without one); the file is the result.
if [[ ! -s $out_abs ]]; then
    echo "error: $browser wrote no screenshot to $out_abs (exit status $status); its output:" >&2
    tail -n 20 "$log" >&2
    exit 1
fi
echo "$out_abs"
