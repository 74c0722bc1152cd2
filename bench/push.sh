#!/usr/bin/env bash
# Publish benchmark (issue 5), in one run on one machine: the goping sample for
# linux/amd64 and linux/arm64, from a cold cache (--no-cache), to a loopback
# registry (Debian's docker-registry on 127.0.0.1, started and stopped here):
#   1. xplat build --platform linux/amd64,linux/arm64 -t REG/goping:1 --push
#   2. the classic way: DOCKER_BUILDKIT=0 docker build per platform (build args
#      as in classic.sh), docker push each, then docker manifest create,
#      annotate (the classic builder labels both images with the engine's
#      platform) and push (experimental CLI, --insecure for the loopback registry).
# Prints both times and xplat/classic. Checks both indexes with skopeo.
#
# Needs the fixtures (bash tests/fixtures/setup.sh). Usage: bench/push.sh
# XPLAT=path/to/xplat to time another binary (default: target/release/xplat when
# built, else target/debug/xplat).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SAMPLE=tests/data/samples/goping
BUILDER_IMAGE="${BUILDER_IMAGE:-xplat-test/builder:bookworm}"
docker image inspect "$BUILDER_IMAGE" >/dev/null 2>&1 \
    || { echo "push.sh: $BUILDER_IMAGE is missing: run tests/fixtures/setup.sh" >&2; exit 1; }
command -v docker-registry >/dev/null || { echo "push.sh: docker-registry is not installed" >&2; exit 1; }
if [ -z "${XPLAT:-}" ]; then
    if [ -x target/release/xplat ]; then XPLAT=target/release/xplat
    else cargo build -q --bin xplat; XPLAT=target/debug/xplat; fi
fi
BUILDPLATFORM="$(docker version -f '{{.Server.Os}}/{{.Server.Arch}}')"

WORK="$(mktemp -d -t xplat-push-bench.XXXXXX)"
cleanup() {
    stop_registry
    for arch in amd64 arm64; do docker rmi -f "$REG/goping-classic:1-$arch" >/dev/null 2>&1 || true; done
    DOCKER_CLI_EXPERIMENTAL=enabled docker manifest rm "$REG/goping-classic:1" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
start_registry "$WORK"


echo "xplat: $XPLAT; registry: $REG; engine platform: $BUILDPLATFORM"

# 1. xplat, end to end.
s=$(now)
"$XPLAT" build --no-cache --progress plain --platform linux/amd64,linux/arm64 \
    -t "$REG/goping:1" --push "$SAMPLE" >"$WORK/xplat.out" 2>"$WORK/xplat.err" \
    || { cat "$WORK/xplat.err" >&2; exit 1; }
t_xplat=$(secs "$s" "$(now)")
echo "xplat build --push (2 platforms, no cache): $t_xplat s"

# 2. The classic way.
s=$(now)
for arch in amd64 arm64; do
    DOCKER_BUILDKIT=0 docker build --no-cache --rm -q \
        --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" \
        --build-arg BUILDPLATFORM="$BUILDPLATFORM" \
        --build-arg TARGETPLATFORM="linux/$arch" \
        --build-arg TARGETOS=linux \
        --build-arg TARGETARCH="$arch" \
        -t "$REG/goping-classic:1-$arch" "$SAMPLE" >>"$WORK/classic.log" 2>&1 \
        || { cat "$WORK/classic.log" >&2; exit 1; }
    docker push -q "$REG/goping-classic:1-$arch" >>"$WORK/classic.log" 2>&1 \
        || { cat "$WORK/classic.log" >&2; exit 1; }
done
export DOCKER_CLI_EXPERIMENTAL=enabled
docker manifest create --insecure "$REG/goping-classic:1" \
    "$REG/goping-classic:1-amd64" "$REG/goping-classic:1-arm64" >>"$WORK/classic.log" 2>&1 \
    || { cat "$WORK/classic.log" >&2; exit 1; }
docker manifest annotate --os linux --arch arm64 \
    "$REG/goping-classic:1" "$REG/goping-classic:1-arm64" >>"$WORK/classic.log" 2>&1
docker manifest push --insecure "$REG/goping-classic:1" >>"$WORK/classic.log" 2>&1 \
    || { cat "$WORK/classic.log" >&2; exit 1; }
t_classic=$(secs "$s" "$(now)")
echo "classic build + push + manifest (2 platforms, no cache): $t_classic s"

if command -v skopeo >/dev/null; then
    for ref in "$REG/goping:1" "$REG/goping-classic:1"; do
        plats=$(skopeo inspect --raw --tls-verify=false "docker://$ref" \
            | python3 -c 'import json,sys; print(",".join(m["platform"]["os"]+"/"+m["platform"]["architecture"] for m in json.load(sys.stdin)["manifests"]))')
        echo "check: $ref: $plats"
    done
fi
echo "ratio xplat/classic: $(awk -v a="$t_xplat" -v b="$t_classic" 'BEGIN { printf "%.2f", a / b }')"
