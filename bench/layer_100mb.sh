#!/usr/bin/env bash
# Assembling and writing the OCI layout of a 100 MB single-file final stage
# (FROM scratch; COPY big /big) against `tar | gzip` of the same file, the
# physical floor (issue 5, target: within 1.5x). Data: 100 MB of
# half-compressible bytes (base64 of urandom), the same for both.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example bench_layout >/dev/null 2>&1
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir "$work/ctx"
head -c 75000000 /dev/urandom | base64 -w0 | head -c 100000000 > "$work/ctx/big"
printf 'FROM scratch\nCOPY big /big\n' > "$work/ctx/Dockerfile"
cat "$work/ctx/big" > /dev/null   # warm the page cache for both
floor_start=$(date +%s.%N)
tar -C "$work/ctx" -cf - big | gzip -6 > "$work/floor.tar.gz"
floor=$(echo "$(date +%s.%N) - $floor_start" | bc)
xplat=$(target/release/examples/bench_layout "$work/ctx" "$work/layout" | cut -d" " -f1)
echo "tar|gzip -6: ${floor}s  xplat assemble+layout: ${xplat}s  ratio: $(echo "scale=2; $xplat / $floor" | bc)"
