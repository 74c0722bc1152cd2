#!/usr/bin/env bash
# xplat against the classic builder on the goping sample, in one run on one machine:
#   (1) xplat cold build for linux/amd64,linux/arm64 (--target build, --no-cache)
#   (2) bench/classic.sh: the two classic builds, amd64 then arm64, no cache
#   (3) xplat warm rebuild, nothing changed
#   (4) xplat rebuild after changing main.go (a comment appended: a content change,
#       since the step cache hashes contents, not mtimes)
# Prints each time and the ratios (1)/(2) and (3)/(1), plus the load average, as the
# machine may be shared. The sample is copied to a temporary folder, never edited.
#
# Needs the fixtures (bash tests/fixtures/setup.sh). Usage: bench/build.sh [XPLAT_BIN]
# (default: target/release/xplat if built, else target/debug/xplat; xplat's own CPU
# time is small next to the compiler's, so a debug binary changes little).
set -euo pipefail
cd "$(dirname "$0")/.."

XPLAT="${1:-}"
if [[ -z "$XPLAT" ]]; then
    if [[ -x target/release/xplat ]]; then XPLAT=target/release/xplat; else XPLAT=target/debug/xplat; fi
fi
[[ -x "$XPLAT" ]] || { echo "build.sh: $XPLAT is missing: run cargo build" >&2; exit 1; }
BUILDER_IMAGE="${BUILDER_IMAGE:-xplat-test/builder:bookworm}"

WORK="$(mktemp -d -t xplat-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp -r tests/data/samples/goping "$WORK/goping"
LOG="$WORK/log"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

xbuild() {
    "$XPLAT" build --no-config --progress plain \
        --platform linux/amd64,linux/arm64 --target build \
        --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" -t xplat-bench/goping "$@" \
        "$WORK/goping" >>"$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }
}

echo "machine: $(nproc) cores, $(uname -m), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xplat: $XPLAT"

s=$(now); xbuild --no-cache; t1=$(secs "$s" "$(now)")
echo "(1) xplat cold, amd64+arm64:        $t1 s"

s=$(now); bench/classic.sh >"$WORK/classic" 2>&1 || { cat "$WORK/classic" >&2; exit 1; }
t2=$(secs "$s" "$(now)")
sed 's/^/    /' "$WORK/classic"
echo "(2) classic, amd64 then arm64:      $t2 s"

s=$(now); xbuild; t3=$(secs "$s" "$(now)")
echo "(3) xplat warm, no change:          $t3 s"

echo "// bench $(date +%s%N)" >>"$WORK/goping/main.go"
s=$(now); xbuild; t4=$(secs "$s" "$(now)")
echo "(4) xplat after changing main.go:   $t4 s"

echo "ratio (1)/(2): $(ratio "$t1" "$t2")   (target: <= 1)"
echo "ratio (3)/(1): $(ratio "$t3" "$t1")   (target: < 0.05)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
