#!/usr/bin/env bash
# Baseline for xplat: the goping sample built for linux/amd64 and then
# linux/arm64 with the engine's classic builder (DOCKER_BUILDKIT=0), one after
# the other, from cold cache (--no-cache), natively cross-compiling on the
# engine's platform. The classic builder sets none of BUILDPLATFORM,
# TARGETOS, TARGETARCH itself, so they are passed as build args (see
# ../shared/TESTING.md). Prints each build's time and the total.
#
# Needs the fixtures (bash tests/fixtures/setup.sh). Usage: bench/classic.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLE=tests/data/samples/goping
BUILDER_IMAGE="${BUILDER_IMAGE:-xplat-test/builder:bookworm}"
TAG=xplat-bench/goping-classic
docker image inspect "$BUILDER_IMAGE" >/dev/null 2>&1 \
    || { echo "classic.sh: $BUILDER_IMAGE is missing: run tests/fixtures/setup.sh" >&2; exit 1; }
BUILDPLATFORM="$(docker version -f '{{.Server.Os}}/{{.Server.Arch}}')"
LOG="$(mktemp -t xplat-classic.XXXXXX)"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
for arch in amd64 arm64; do
    s=$(now)
    DOCKER_BUILDKIT=0 docker build --no-cache --rm -q \
        --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" \
        --build-arg BUILDPLATFORM="$BUILDPLATFORM" \
        --build-arg TARGETPLATFORM="linux/$arch" \
        --build-arg TARGETOS=linux \
        --build-arg TARGETARCH="$arch" \
        -t "$TAG:$arch" "$SAMPLE" >>"$LOG" 2>&1 \
        || { cat "$LOG" >&2; exit 1; }
    echo "classic linux/$arch: $(secs "$s" "$(now)") s"
done
total=$(secs "$t0" "$(now)")

# Check what was built: the arm64 binary must really be arm64.
out="$(mktemp -d)"
cid=$(docker create "$TAG:arm64" /goping)
docker cp "$cid:/goping" "$out/goping" >/dev/null
docker rm "$cid" >/dev/null
if command -v qemu-aarch64-static >/dev/null; then
    echo "check: $(qemu-aarch64-static "$out/goping" -version)"
fi
rm -rf "$out" "$LOG"
echo "classic total (amd64 then arm64, no cache): $total s"
