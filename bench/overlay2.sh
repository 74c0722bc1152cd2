#!/usr/bin/env bash
# bench/speed.sh against a second engine with overlay2 (native diff), in one run (issue 11).
#
# Starts a second dockerd with its own data-root, exec-root and socket, storage driver
# overlay2, inside its own network namespace (`unshare -n`: its docker0 bridge is then its
# own, and it cannot touch the main engine's; with `--bridge none` the engine's BuildKit
# fails every RUN with "network bridge not found"), loads the builder
# image into it, and runs bench/speed.sh in that namespace with DOCKER_HOST pointing at
# it, so that the loopback registry, xplat, the docker CLI and the engine share one
# loopback. Stops the engine and removes its folders at the end. Needs root and the
# fixtures (bash tests/fixtures/setup.sh).
#
#   bench/overlay2.sh [SCRIPT]     SCRIPT: bench/speed.sh (default) or bench/cache.sh;
#                                  XPLAT=path/to/xplat to time another binary
#   XPLAT_BENCH_ROOT=DIR           where the engine's data goes (default /var/tmp), on a
#                                  filesystem that supports overlay2
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT="${1:-bench/speed.sh}"
BUILDER_IMAGE="${BUILDER_IMAGE:-xplat-test/builder:bookworm}"
DOCKER=/usr/bin/docker
# shellcheck source=bench/lib.sh
. bench/lib.sh
release_xplat
export XPLAT BUILDER_IMAGE

ROOT="$(mktemp -d "${XPLAT_BENCH_ROOT:-/var/tmp}/xplat-overlay2.XXXXXX")"
SOCK="$ROOT/docker.sock"
echo '{}' >"$ROOT/daemon.json"
trap 'rm -rf "$ROOT"' EXIT

# The image archive is made in the host's namespace, from the main engine.
$DOCKER save -o "$ROOT/builder.tar" "$BUILDER_IMAGE"

unshare -n bash -s -- "$ROOT" "$SOCK" "$SCRIPT" <<'INSIDE'
set -euo pipefail
ROOT=$1 SOCK=$2 SCRIPT=$3
ip link set lo up
dockerd --config-file "$ROOT/daemon.json" --data-root "$ROOT/data" --exec-root "$ROOT/exec" \
    -H "unix://$SOCK" --pidfile "$ROOT/dockerd.pid" --storage-driver overlay2 \
    --iptables=false --ip-masq=false >"$ROOT/dockerd.log" 2>&1 &
DPID=$!
stop() {
    kill "$DPID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.5; done
    umount -R "$ROOT/data" 2>/dev/null || true
}
trap stop EXIT
export DOCKER_HOST="unix://$SOCK"
for _ in $(seq 1 120); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.5; done
/usr/bin/docker info -f 'second engine: {{.Driver}} {{range .DriverStatus}}{{index . 0}}={{index . 1}} {{end}}'
if grep -q "Not using native diff" "$ROOT/dockerd.log"; then
    echo "overlay2.sh: the engine says it is not using native diff" >&2
fi
/usr/bin/docker load -q -i "$ROOT/builder.tar" >/dev/null
rm -f "$ROOT/builder.tar"
# One container first: a new engine's first container also sets up its bridge and more
# (0.8 s here), which the machine's long-running engine did long ago; whichever builder
# ran first would pay it.
/usr/bin/docker run --rm "$BUILDER_IMAGE" true
bash "$SCRIPT"
INSIDE
