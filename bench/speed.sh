#!/usr/bin/env bash
# Speed benchmark (issue 11), in one run against one engine (DOCKER_HOST, default the
# machine's): the goping-mod sample for linux/amd64 and linux/arm64, pushed to a
# loopback registry (Debian's docker-registry, started and stopped here), three builds
# in a row each:
#   xplat:     cold (no step cache, no output cache), warm (nothing changed), after
#              one source file changed;
#   BuildKit:  the same engine's BuildKit (Debian's /usr/bin/docker, DOCKER_BUILDKIT=1):
#              both platforms at once (two builds in parallel), docker push of each,
#              docker manifest create + push; cold after `docker builder prune -af`;
#   floor:     the two `go build`s at once in a chroot of the builder's root
#              filesystem, no engine (cold Go build cache), the same commands the
#              Dockerfile runs.
# Prints every time, xplat/BuildKit and xplat/floor ratios, warm/cold, xplat's peak
# RSS, the engine's storage driver and the machine's load.
#
# ROUNDS=N (default 2) repeats the whole sequence N times in the one run, the tools taking
# turns (xplat, BuildKit, floor, then BuildKit, xplat, floor, ...), and the ratios are of
# the best time of each:
# on a shared VM whose page cache is reclaimed under it (kdamond), one sample of a
# 30 s build varies by 15 %.
# CHANGES=N (default 1) builds after a change N times per round with each tool, the extra
# ones in pairs right after each other (order alternating): after a change both tools run
# the same two compiles, so what separates them is smaller than one sample's noise, and
# only many paired samples tell it.
#
# Needs the fixtures (bash tests/fixtures/setup.sh). Usage:
#   bench/speed.sh                 XPLAT=path/to/xplat to time another binary
#                                  (default target/release/xplat, built if missing)
# bench/overlay2.sh runs this script against a second engine with overlay2.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SAMPLE=tests/data/samples/goping-mod
BUILDER_IMAGE="${BUILDER_IMAGE:-xplat-test/builder:bookworm}"
DOCKER=/usr/bin/docker
need_builder_and_registry speed.sh
release_xplat

WORK="$(mktemp -d -t xplat-speed.XXXXXX)"
BENCH_ID="speed-$$-$(date +%s)"
export XPLAT_CACHE_DIR="$WORK/xplat-cache"
cleanup() {
    stop_registry
    drop_xplat_cache
    # Every image of the benchmark's repository, the untagged ones a rebuild left too.
    ids="$($DOCKER images -q "$REG/speed" 2>/dev/null | sort -u)"
    if [ -n "$ids" ]; then $DOCKER rmi -f $ids >/dev/null 2>&1 || true; fi
    DOCKER_CLI_EXPERIMENTAL=enabled $DOCKER manifest rm "$REG/speed:bk" >/dev/null 2>&1 || true
    if [ -n "${ROOTFS:-}" ]; then umount "$ROOTFS/proc" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
# xplat's step cache of this benchmark's builds (their commits carry its build label)
# and its output cache: what a cold build must not find.
drop_xplat_cache() {
    local ids
    ids="$($DOCKER images -aq --filter "label=xplat.build=$BENCH_ID" 2>/dev/null | sort -u)"
    if [ -n "$ids" ]; then $DOCKER rmi -f $ids >/dev/null 2>&1 || true; fi
    rm -rf "$XPLAT_CACHE_DIR"
}
trap cleanup EXIT
start_registry "$WORK"

ROUNDS="${ROUNDS:-2}"
cp -r "$SAMPLE" "$WORK/src"
change_source() { echo "// change $(date +%s%N)" >>"$WORK/src/main.go"; }

driver="$($DOCKER info -f '{{.Driver}}')"
echo "machine: $(nproc) cores, $(uname -m), $(free -g | awk '/Mem:/{print $2}') GiB; engine: $($DOCKER version -f '{{.Server.Version}}') ($driver); load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- xplat --------------------------------------------------------------------
xbuild() { # label: prints seconds, peak RSS (KiB), the machine's CPU seconds, and the
    # seconds before the first and after the last `go build` (see xplat_edges)
    local s e c
    s=$(now) c=$(cpu_ticks)
    /usr/bin/time -f '%M' -o "$WORK/rss" "$XPLAT" build --no-config --progress plain \
        --build-id "$BENCH_ID" \
        --platform linux/amd64,linux/arm64 --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" \
        -t "$REG/speed:xplat" --push "$WORK/src" 2>&1 | stamp >"$WORK/xplat-$1.log" \
        || { tail -30 "$WORK/xplat-$1.log" >&2; exit 1; }
    e=$(now)
    echo "$(secs "$s" "$e") $(cat "$WORK/rss") $(cpu_secs "$c" "$(cpu_ticks)") $(xplat_edges "$WORK/xplat-$1.log" "$s" "$e")"
}
# xplat_edges LOG START END: the seconds from START to the first `go build` starting and from
# the last one finishing (its job done) to END, from a stamped --progress plain log.
xplat_edges() {
    awk -v s="$2" -v e="$3" '
        $2 ~ /^\[linux\/(amd64|arm64)\]$/ && / RUN CGO_ENABLED/ { if (first == "" || $1 < first) first = $1 }
        $2 ~ /^\[linux\/(amd64|arm64)\]$/ && $4 == "done" { if ($1 > last) last = $1 }
        END { printf "%.2f %.2f", first - s, e - last }' "$1"
}
# The log without the stamps.
unstamp() { sed 's/^[0-9.]* //' "$1"; }
xplat_round() {
    cp "$SAMPLE/main.go" "$WORK/src/main.go"
    drop_xplat_cache
    read -r x_cold x_cold_rss x_cold_cpu _ _ < <(xbuild cold)
    unstamp "$WORK/xplat-cold.log" | refuse_cached_cold speed.sh
    read -r x_warm x_warm_rss _ _ _ < <(xbuild warm)
    change_source
    read -r x_change x_change_rss x_change_cpu x_before x_after < <(xbuild change)
    runs_after_change=$(unstamp "$WORK/xplat-change.log" | grep -E '^\[[^]]*\] [^ ]+ [0-9]+/[0-9]+ RUN ' | sed 's/^\[[^]]*\] [^ ]* [0-9/]* //' | sort | uniq -c | sed 's/^ */    /' || true)
}

# --- BuildKit in the same engine ------------------------------------------------
bkbuild() { # prints seconds, the machine's CPU seconds and the seconds before the first
    # and after the last `go build` (see bk_edges)
    local s e c pids=()
    s=$(now) c=$(cpu_ticks)
    for arch in amd64 arm64; do
        (DOCKER_BUILDKIT=1 $DOCKER build --progress plain --platform "linux/$arch" \
            --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" \
            -t "$REG/speed:bk-$arch" "$WORK/src" 2>&1 | stamp >"$WORK/bk-$arch.log") &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || { cat "$WORK"/bk-*.log >&2; exit 1; }; done
    for arch in amd64 arm64; do
        $DOCKER push -q "$REG/speed:bk-$arch" >>"$WORK/bk-push.log" 2>&1
    done
    DOCKER_CLI_EXPERIMENTAL=enabled $DOCKER manifest create --insecure --amend "$REG/speed:bk" \
        "$REG/speed:bk-amd64" "$REG/speed:bk-arm64" >>"$WORK/bk-push.log" 2>&1
    DOCKER_CLI_EXPERIMENTAL=enabled $DOCKER manifest push --insecure --purge "$REG/speed:bk" \
        >>"$WORK/bk-push.log" 2>&1
    e=$(now)
    echo "$(secs "$s" "$e") $(cpu_secs "$c" "$(cpu_ticks)") $(bk_edges "$s" "$e")"
}
# bk_edges START END: as xplat_edges, from the stamped --progress plain logs of the two
# builds (a step's line is printed when BuildKit reports it, within 0.1 s or so).
bk_edges() {
    local edges
    edges="$(for arch in amd64 arm64; do
        awk '/\] RUN CGO_ENABLED/ { id = $2; first = $1 } id != "" && $2 == id && $3 == "DONE" { last = $1 }
             END { print first, last }' "$WORK/bk-$arch.log"
    done)"
    echo "$edges" | awk -v s="$1" -v e="$2" '
        { if (first == "" || $1 < first) first = $1; if ($2 > last) last = $2 }
        END { printf "%.2f %.2f", first - s, e - last }'
}
buildkit_round() {
    cp "$SAMPLE/main.go" "$WORK/src/main.go"
    $DOCKER builder prune -af >/dev/null 2>&1
    local ids
    ids="$($DOCKER images -q "$REG/speed" 2>/dev/null | sort -u)"
    if [ -n "$ids" ]; then $DOCKER rmi -f $ids >/dev/null 2>&1 || true; fi
    read -r b_cold b_cold_cpu _ _ < <(bkbuild)
    read -r b_warm _ _ _ < <(bkbuild)
    change_source
    read -r b_change b_change_cpu b_before b_after < <(bkbuild)
}

# --- the floor: the two go builds, no engine ----------------------------------------
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS"
cid=$($DOCKER create "$BUILDER_IMAGE" true)
$DOCKER export "$cid" | tar -x -C "$ROOTFS"
$DOCKER rm "$cid" >/dev/null
cp "$SAMPLE/main.go" "$WORK/src/main.go"
mkdir -p "$ROOTFS/src" "$ROOTFS/proc"
cp -r "$WORK/src/." "$ROOTFS/src/"
mount -t proc proc "$ROOTFS/proc"
floor_once() {
    local s pids=()
    rm -rf "$ROOTFS/gocache-"* "$ROOTFS/out"
    s=$(now)
    chroot "$ROOTFS" /bin/sh -c 'cd /src && HOME=/root GOCACHE=/gocache-mod go mod download' 
    for arch in amd64 arm64; do
        chroot "$ROOTFS" /bin/sh -c "cd /src && HOME=/root GOCACHE=/gocache-$arch CGO_ENABLED=0 GOOS=linux GOARCH=$arch \
            go build -trimpath -ldflags='-s -w' -o /out/goping-$arch ." &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    secs "$s" "$(now)"
}
# compile_spans TIMES BEFORE AFTER (array names): each build's time less its edges.
compile_spans() {
    local -n ts=$1 bs=$2 as=$3
    local i out=()
    for i in "${!ts[@]}"; do
        out+=("$(awk -v t="${ts[$i]}" -v b="${bs[$i]}" -v a="${as[$i]}" 'BEGIN { printf "%.2f", t - b - a }')")
    done
    echo "${out[*]}"
}
best() { printf '%s\n' "$@" | sort -g | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The xplat/BuildKit ratio of each round's builds (the two ran back to back, so a slow
# stretch of the machine weighs on both): their median is a second reading beside the
# ratio of the best times.
paired() { # X-array-name B-array-name
    local -n xs=$1 bs=$2
    local i out=()
    for i in "${!xs[@]}"; do out+=("$(ratio "${xs[$i]}" "${bs[$i]}")"); done
    echo "${out[*]}"
}
all_x_cold=() all_x_warm=() all_x_change=() all_b_cold=() all_b_warm=() all_b_change=() all_floor=()
all_x_cold_cpu=() all_x_change_cpu=() all_b_cold_cpu=() all_b_change_cpu=()
all_x_before=() all_x_after=() all_b_before=() all_b_after=()
# The times, CPU seconds and edges of the latest pair of after-change builds.
record_change() {
    all_x_change+=("$x_change") all_b_change+=("$b_change")
    all_x_change_cpu+=("$x_change_cpu") all_b_change_cpu+=("$b_change_cpu")
    all_x_before+=("$x_before") all_x_after+=("$x_after") all_b_before+=("$b_before") all_b_after+=("$b_after")
}
CHANGES="${CHANGES:-1}"
for round in $(seq 1 "$ROUNDS"); do
    # Whichever builds first after the other's builds reads more from disk: take turns.
    if [ $((round % 2)) = 1 ]; then xplat_round; buildkit_round; else buildkit_round; xplat_round; fi
    floor=$(floor_once)
    echo "round $round: xplat $x_cold / $x_warm / $x_change, BuildKit $b_cold / $b_warm / $b_change, floor $floor (cold / warm / after change); CPU seconds xplat $x_cold_cpu / $x_change_cpu, BuildKit $b_cold_cpu / $b_change_cpu (cold / after change); after the change, before/after the compiles xplat $x_before/$x_after, BuildKit $b_before/$b_after"
    all_x_cold+=("$x_cold") all_x_warm+=("$x_warm") all_b_cold+=("$b_cold") all_b_warm+=("$b_warm")
    all_floor+=("$floor")
    all_x_cold_cpu+=("$x_cold_cpu") all_b_cold_cpu+=("$b_cold_cpu")
    record_change
    for pair in $(seq 2 "$CHANGES"); do
        if [ $(((round + pair) % 2)) = 1 ]; then
            change_source; read -r x_change _ x_change_cpu x_before x_after < <(xbuild change)
            change_source; read -r b_change b_change_cpu b_before b_after < <(bkbuild)
        else
            change_source; read -r b_change b_change_cpu b_before b_after < <(bkbuild)
            change_source; read -r x_change _ x_change_cpu x_before x_after < <(xbuild change)
        fi
        echo "round $round, after change $pair: xplat $x_change, BuildKit $b_change (CPU seconds $x_change_cpu, $b_change_cpu; before/after the compiles $x_before/$x_after, $b_before/$b_after)"
        record_change
    done
done
umount "$ROOTFS/proc"
x_cold=$(best "${all_x_cold[@]}") x_warm=$(best "${all_x_warm[@]}") x_change=$(best "${all_x_change[@]}")
b_cold=$(best "${all_b_cold[@]}") b_warm=$(best "${all_b_warm[@]}") b_change=$(best "${all_b_change[@]}")
floor=$(best "${all_floor[@]}")

echo
echo "best of $ROUNDS:"
printf '%-28s %9s %9s %9s\n' "" cold warm "after change"
printf '%-28s %9s %9s %9s\n' "xplat build --push" "$x_cold" "$x_warm" "$x_change"
printf '%-28s %9s %9s %9s\n' "BuildKit, same engine" "$b_cold" "$b_warm" "$b_change"
printf '%-28s %9s\n' "floor (chroot, no engine)" "$floor"
echo
echo "xplat/BuildKit: cold $(ratio "$x_cold" "$b_cold"), warm $(ratio "$x_warm" "$b_warm"), after change $(ratio "$x_change" "$b_change")   (goal: <= 1)"
# shellcheck disable=SC2034 # read through paired's namerefs
read -r -a r_cold <<<"$(paired all_x_cold all_b_cold)"
read -r -a r_change <<<"$(paired all_x_change all_b_change)"
echo "xplat/BuildKit per round: cold ${r_cold[*]} (median $(median "${r_cold[@]}")), per pair after change ${r_change[*]} (median $(median "${r_change[@]}"))"
ahead=$(printf '%s\n' "${r_change[@]}" | awk '$1 < 1' | wc -l)
echo "after a change: xplat ahead in $ahead of ${#r_change[@]} pairs; mean of the pairs' ratios $(printf '%s\n' "${r_change[@]}" | awk '{ t += $1 } END { printf "%.3f", t / NR }')"
echo "CPU seconds of the whole machine per build (median): cold xplat $(median "${all_x_cold_cpu[@]}"), BuildKit $(median "${all_b_cold_cpu[@]}"); after a change xplat $(median "${all_x_change_cpu[@]}"), BuildKit $(median "${all_b_change_cpu[@]}")"
echo "after a change, seconds before the first go build starts / after the last one ends (median): xplat $(median "${all_x_before[@]}") / $(median "${all_x_after[@]}"), BuildKit $(median "${all_b_before[@]}") / $(median "${all_b_after[@]}")"
# What is left of each after-change build between the edges: the two compiles, the same
# commands in the same engine for both tools.
# shellcheck disable=SC2034 # read through paired's namerefs
read -r -a x_spans <<<"$(compile_spans all_x_change all_x_before all_x_after)"
# shellcheck disable=SC2034
read -r -a b_spans <<<"$(compile_spans all_b_change all_b_before all_b_after)"
read -r -a r_spans <<<"$(paired x_spans b_spans)"
echo "after a change, seconds from the first go build starting to the last one ending (median): xplat $(median "${x_spans[@]}"), BuildKit $(median "${b_spans[@]}"); per pair xplat/BuildKit ${r_spans[*]} (median $(median "${r_spans[@]}"))"
echo "xplat cold/floor: $(ratio "$x_cold" "$floor")   (goal on overlay2: <= 1.10)"
echo "xplat warm/cold:  $(ratio "$x_warm" "$x_cold")   (goal: <= 0.02)"
echo "xplat RUN steps run after the change (count, step):"
echo "$runs_after_change"
echo "xplat peak RSS (KiB): cold $x_cold_rss, warm $x_warm_rss, after change $x_change_rss   (goal: < 65536)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
