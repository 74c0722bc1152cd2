#!/usr/bin/env bash
# The README's first command: builds xplat, then its main job on the goping sample
# (tests/data/samples/goping): one multi-platform image for linux/amd64 and linux/arm64,
# cross-compiled natively, written as an OCI layout to $OUT/goping, and each platform's
# root filesystem to $OUT/goping-files/linux_{amd64,arm64}. It then runs both binaries
# (arm64 under qemu when this machine is not arm64) and prints what they say.
#
# The sample's build stage needs a Go builder image. With BUILDER_IMAGE set, that one;
# else the public golang image when the engine can pull it; else the offline stand-in
# that tests/fixtures/setup.sh makes from Debian's packages (no registry needed; it also
# registers binfmt/QEMU for arm64). Environment: XPLAT_BIN (a built xplat: skips cargo),
# OUT (default ./xplat-out).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$PWD/xplat-out}"
SAMPLE="$ROOT/tests/data/samples/goping"
OFFLINE=xplat-test/builder:bookworm
PUBLIC=golang:1.22-bookworm
say() { printf 'first-run: %s\n' "$*"; }

if [ -z "${XPLAT_BIN:-}" ]; then
    say "cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked --quiet)
    XPLAT_BIN="$ROOT/target/release/xplat"
fi

builder="${BUILDER_IMAGE:-}"
if [ -z "$builder" ]; then
    if docker image inspect "$OFFLINE" >/dev/null 2>&1; then
        builder=$OFFLINE
    elif timeout 60 docker pull -q "$PUBLIC" >/dev/null 2>&1; then
        builder=$PUBLIC
    else
        say "no image registry answers: making the offline builder (tests/fixtures/setup.sh)"
        XPLAT_SKIP_STAND_INS=1 bash "$ROOT/tests/fixtures/setup.sh"
        builder=$OFFLINE
    fi
fi
say "builder image: $builder"

"$XPLAT_BIN" build --platform linux/amd64,linux/arm64 --build-arg "BUILDER_IMAGE=$builder" \
    --output "type=oci,dest=$OUT/goping" --output "type=local,dest=$OUT/goping-files" \
    "$SAMPLE"

"$XPLAT_BIN" inspect "oci:$OUT/goping"
for platform in linux_amd64 linux_arm64; do
    binary="$OUT/goping-files/$platform/goping"
    printf '%s: ' "$platform"
    case "$platform/$(uname -m)" in
        linux_amd64/x86_64 | linux_arm64/aarch64) "$binary" -version ;;
        linux_arm64/*)
            if command -v qemu-aarch64-static >/dev/null; then
                qemu-aarch64-static "$binary" -version
            else
                "$binary" -version # binfmt, if registered
            fi
            ;;
        linux_amd64/*)
            if command -v qemu-x86_64-static >/dev/null; then
                qemu-x86_64-static "$binary" -version
            else
                "$binary" -version
            fi
            ;;
    esac
done
