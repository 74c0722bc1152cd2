#!/usr/bin/env bash
# The cache that travels (issue 14), in one run against one engine (DOCKER_HOST, default
# the machine's): the goping-mod sample for linux/amd64 and linux/arm64, pushed to a
# loopback registry started here, on a "fresh runner" (the same engine with the first
# build's step-cache images removed and an empty local cache folder):
#   xplat:     cold with --cache-to type=registry,mode=$MODE (default max: the engine's
#              checkpoints travel too); fresh, then --cache-from with no change; fresh,
#              then --cache-from after one source file changed.
#   BuildKit:  the engine's BuildKit with its inline cache (--build-arg
#              BUILDKIT_INLINE_CACHE=1, both platforms at once, pushed, manifest list);
#              fresh (`docker builder prune -af` and the images removed), then
#              --cache-from the pushed images, with no change and after the change.
# SOURCE_DATE_EPOCH=0 for xplat: the no-change rebuild must push the cold index digest.
#
# Needs the fixtures (bash tests/fixtures/setup.sh). Usage:
#   bench/cache.sh                 XPLAT=path/to/xplat to time another binary,
#                                  MODE=min for --cache-to ...,mode=min
# bench/overlay2.sh bench/cache.sh runs it against a second engine with overlay2.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SAMPLE=tests/data/samples/goping-mod
BUILDER_IMAGE="${BUILDER_IMAGE:-xplat-test/builder:bookworm}"
DOCKER=/usr/bin/docker
MODE="${MODE:-max}"
need_builder_and_registry cache.sh
release_xplat

WORK="$(mktemp -d -t xplat-cache-bench.XXXXXX)"
BENCH_ID="cachebench-$$-$(date +%s)"
fresh_xplat() { # the step-cache images of this benchmark's builds go
    local ids
    ids="$($DOCKER images -aq --filter "label=xplat.build=$BENCH_ID" 2>/dev/null | sort -u)"
    if [ -n "$ids" ]; then $DOCKER rmi -f $ids >/dev/null 2>&1 || true; fi
}
fresh_buildkit() {
    local ids
    $DOCKER builder prune -af >/dev/null 2>&1 || true
    # Every image of the benchmark's repository, the untagged ones a rebuild left too.
    ids="$($DOCKER images -q "$REG/app" 2>/dev/null | sort -u)"
    if [ -n "$ids" ]; then $DOCKER rmi -f $ids >/dev/null 2>&1 || true; fi
}
cleanup() {
    stop_registry
    fresh_xplat
    fresh_buildkit
    if [ -n "${XPLAT_BENCH_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
start_registry "$WORK"

cp -r "$SAMPLE" "$WORK/src"
change_source() { echo "// change $(date +%s%N)" >>"$WORK/src/main.go"; }
echo "mode=$MODE"
echo "machine: $(nproc) cores, $(uname -m); engine: $($DOCKER version -f '{{.Server.Version}}') ($($DOCKER info -f '{{.Driver}}')); load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- xplat ----------------------------------------------------------------------
xbuild() { # label, cache flags...
    local label=$1 s
    shift
    rm -rf "$WORK/local-$label"
    s=$(now)
    XPLAT_CACHE_DIR="$WORK/local-$label" SOURCE_DATE_EPOCH=0 "$XPLAT" build --no-config \
        --progress plain --build-id "$BENCH_ID" --platform linux/amd64,linux/arm64 \
        --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" -t "$REG/app:xplat" --push "$@" \
        "$WORK/src" >"$WORK/xplat-$label.log" 2>&1 \
        || { tail -30 "$WORK/xplat-$label.log" >&2; exit 1; }
    secs "$s" "$(now)"
}
digest_of() { grep -o 'result: index sha256:[0-9a-f]*' "$WORK/xplat-$1.log" | cut -d' ' -f3; }
runs_in() { grep -cE '^\[[^]]*\] [^ ]+ [0-9]+/[0-9]+ RUN ' "$WORK/xplat-$1.log" || true; }
CACHE="type=registry,ref=$REG/app/cache:main"
fresh_xplat
x_cold=$(xbuild cold --cache-to "$CACHE,mode=$MODE")
refuse_cached_cold cache.sh <"$WORK/xplat-cold.log"
fresh_xplat
x_same=$(xbuild same --cache-from "$CACHE")
change_source
fresh_xplat
x_change=$(xbuild change --cache-from "$CACHE")
# A release pipeline passes both flags: after another change, the export keeps what the
# cache holds (no checkpoint is read from the engine again).
change_source
fresh_xplat
x_ci=$(xbuild ci --cache-from "$CACHE" --cache-to "$CACHE,mode=$MODE")

# --- BuildKit, inline cache -----------------------------------------------------------
cp "$SAMPLE/main.go" "$WORK/src/main.go"
bkbuild() { # cache-from? (yes/no)
    local s pids=() from=()
    s=$(now)
    for arch in amd64 arm64; do
        if [ "$1" = yes ]; then from=(--cache-from "$REG/app:bk-$arch"); fi
        DOCKER_BUILDKIT=1 $DOCKER build -q --platform "linux/$arch" "${from[@]}" \
            --build-arg BUILDKIT_INLINE_CACHE=1 --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" \
            -t "$REG/app:bk-$arch" "$WORK/src" >>"$WORK/bk-$arch.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || { cat "$WORK"/bk-*.log >&2; exit 1; }; done
    for arch in amd64 arm64; do $DOCKER push -q "$REG/app:bk-$arch" >>"$WORK/bk-push.log" 2>&1; done
    DOCKER_CLI_EXPERIMENTAL=enabled $DOCKER manifest create --insecure --amend "$REG/app:bk" \
        "$REG/app:bk-amd64" "$REG/app:bk-arm64" >>"$WORK/bk-push.log" 2>&1
    DOCKER_CLI_EXPERIMENTAL=enabled $DOCKER manifest push --insecure --purge "$REG/app:bk" \
        >>"$WORK/bk-push.log" 2>&1
    secs "$s" "$(now)"
}
fresh_buildkit
b_cold=$(bkbuild no)
fresh_buildkit
b_same=$(bkbuild yes)
change_source
fresh_buildkit
b_change=$(bkbuild yes)

echo
printf '%-34s %9s %12s %13s\n' "" cold "fresh, same" "fresh, change"
printf '%-34s %9s %12s %13s\n' "xplat --cache-to/--cache-from" "$x_cold" "$x_same" "$x_change"
printf '%-34s %9s %12s %13s\n' "BuildKit, inline cache" "$b_cold" "$b_same" "$b_change"
echo
echo "xplat fresh, change, --cache-from and --cache-to: $x_ci s"
echo "xplat fresh-same/cold: $(ratio "$x_same" "$x_cold")   (goal: <= 0.10)"
echo "xplat/BuildKit fresh-same: $(ratio "$x_same" "$b_same"), fresh-change: $(ratio "$x_change" "$b_change")   (goal: <= 1)"
echo "xplat RUN steps: cold $(runs_in cold), fresh-same $(runs_in same) (goal 0), fresh-change $(runs_in change)"
echo "xplat fresh-change, steps run: $(grep -hE '^\[[^]]*\] [^ ]+ [0-9]+/[0-9]+ ' "$WORK/xplat-change.log" | sed -E 's/^\[[^]]*\] [^ ]+ [0-9]+\/[0-9]+ //' | cut -c1-40 | sort | uniq -c | tr -s ' ' | paste -sd';' -)"
grep -h 'loaded the checkpoint\|could not be loaded\|committed a checkpoint' "$WORK"/xplat-*.log | sort | uniq -c | sed 's/^/  /'
echo "index digest: cold $(digest_of cold), fresh-same $(digest_of same) $( [ "$(digest_of cold)" = "$(digest_of same)" ] && echo '(equal)' || echo '(DIFFERENT)')"
grep -h 'cache to\|cache from' "$WORK"/xplat-*.log | sed 's/^/  /'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
