#!/usr/bin/env bash
# The one test command (README.md; .ci/run calls it): prepares what the tests
# need on a fresh machine (tests/fixtures/setup.sh: engine, packages, binfmt,
# base images; cached), then runs the whole test suite with cargo's summary.
# It stops only what it started: dockerd, if setup.sh had to start it.
set -euo pipefail
cd "$(dirname "$0")/.."

export XPLAT_FIXTURES="${XPLAT_FIXTURES:-/var/tmp/xplat-fixtures}"
XPLAT_DOCKERD_PIDFILE="$(mktemp)"
export XPLAT_DOCKERD_PIDFILE

# The step-cache images (label xplat.build) the tests' builds leave are theirs to remove:
# those present before the tests ran are kept (a developer's own cache).
# STEP_CACHE_BEFORE: the ids of those present before, one per line; unset until listed.
unset STEP_CACHE_BEFORE
drop_test_step_cache() {
    local ids
    [ -n "${STEP_CACHE_BEFORE+listed}" ] || return 0
    ids="$(docker images -aq --no-trunc --filter label=xplat.build 2>/dev/null | sort -u \
        | comm -23 - <(printf '%s\n' "$STEP_CACHE_BEFORE" | sort -u) || true)"
    if [ -n "$ids" ]; then
        echo "run.sh: removing the $(echo "$ids" | wc -l) step-cache images the tests left"
        # shellcheck disable=SC2086 # one argument per id
        docker rmi -f $ids >/dev/null 2>&1 || true
    fi
}

stop_what_we_started() {
    local pid
    drop_test_step_cache
    pid="$(cat "$XPLAT_DOCKERD_PIDFILE" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: stopping dockerd $pid (started by setup.sh)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$XPLAT_DOCKERD_PIDFILE"
}
trap stop_what_we_started EXIT

bash tests/fixtures/setup.sh
# The two-engine tests (tests/engines/): their tools and the arm64 builder archive.
bash tests/fixtures/engines.sh
STEP_CACHE_BEFORE="$(docker images -aq --no-trunc --filter label=xplat.build)"
cargo test --all-targets 2>&1
