# shellcheck shell=bash
# What the bench scripts share (sourced by push.sh, speed.sh and cache.sh): timing, and a
# loopback registry (Debian's docker-registry) of their own.

REG="" REG_PID=""

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# cpu_ticks: the busy CPU time of the whole machine so far (user, nice, system, irq and
# softirq of /proc/stat), in clock ticks; cpu_secs A B: the seconds between two readings.
# Beside the wall time: whether one tool does more work. (Measured on the shared build VM, it
# varies with the wall time: a slow stretch of the machine costs CPU seconds too.)
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
cpu_secs() { awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / hz }'; }
# stamp: copies its input, each line prefixed with the time it was read (epoch seconds).
stamp() { perl -MTime::HiRes=time -ne '$| = 1; printf("%.3f %s", time, $_)'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# release_xplat: sets XPLAT to the binary to time (XPLAT from the environment, else the
# release build, built if missing), as an absolute path.
release_xplat() {
    if [ -z "${XPLAT:-}" ]; then
        [ -x target/release/xplat ] || cargo build -q --release --locked --bin xplat
        XPLAT=target/release/xplat
    fi
    XPLAT="$(realpath "$XPLAT")"
}

# need_builder_and_registry SCRIPT: fails with SCRIPT's name unless the engine holds
# $BUILDER_IMAGE and Debian's docker-registry is installed.
need_builder_and_registry() {
    /usr/bin/docker image inspect "$BUILDER_IMAGE" >/dev/null 2>&1 \
        || { echo "$1: $BUILDER_IMAGE is missing in the engine (tests/fixtures/setup.sh)" >&2; exit 1; }
    command -v docker-registry >/dev/null || { echo "$1: docker-registry is not installed" >&2; exit 1; }
}

# start_registry DIR: a registry on a free loopback port with its storage and log in DIR;
# sets REG (127.0.0.1:PORT) and REG_PID, and returns once it answers.
start_registry() {
    local dir=$1 port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    REG="127.0.0.1:$port"
    mkdir -p "$dir/storage"
    cat >"$dir/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: $REG
YAML
    docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 1 100); do curl -fs "http://$REG/v2/" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "bench: the registry on $REG did not answer (see $dir/registry.log)" >&2
    return 1
}

# refuse_cached_cold SCRIPT: reads a cold xplat build's --progress plain log on stdin and
# stops SCRIPT if the build's shared job found cached steps. The step cache is keyed by
# content, not by build: a checkpoint of the sample left by a build outside the benchmark
# would make "cold" start from it. (The arm64 job starting from this build's own
# checkpoint prints CACHED too; the shared job may not.)
refuse_cached_cold() {
    if grep -E '^\[linux/amd64,linux/arm64\] [^ ]+ [0-9]+ CACHED' >&2; then
        echo "$1: the cold xplat build found cached steps (above): a step-cache image of this sample from another build; 'xplat prune' removes them" >&2
        exit 1
    fi
}

# stop_registry: stops the registry start_registry started.
stop_registry() {
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
}
