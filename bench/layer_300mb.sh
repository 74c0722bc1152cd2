#!/usr/bin/env bash
# Issue 11: an assembled 300 MB layer for two platforms (FROM scratch; COPY big /big,
# linux/amd64 + linux/arm64, written as an OCI layout), cold (empty layer cache) and warm
# (same cache), against one `tar | gzip -6` of the same file. Goal: cold <= 1.1x the floor,
# warm <= 5 % of it. Data: 300 MB of half-compressible bytes (base64 of urandom).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example bench_layout >/dev/null 2>&1
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir "$work/ctx"
head -c 225000000 /dev/urandom | base64 -w0 | head -c 300000000 > "$work/ctx/big"
printf 'FROM scratch\nCOPY big /big\n' > "$work/ctx/Dockerfile"
cat "$work/ctx/big" > /dev/null   # warm the page cache for both
floor_start=$(date +%s.%N)
tar -C "$work/ctx" -cf - big | gzip -6 > "$work/floor.tar.gz"
floor=$(echo "$(date +%s.%N) - $floor_start" | bc)
run() {
  XPLAT_CACHE_DIR="$work/cache" /usr/bin/time -f "%M" -o "$work/rss-$1" \
    target/release/examples/bench_layout "$work/ctx" "$work/layout-$1" linux/amd64,linux/arm64
}
cold=$(run cold)
warm=$(run warm)
c=${cold%% *}; w=${warm%% *}
echo "tar|gzip -6: ${floor}s"
echo "xplat cold (2 platforms): ${cold}s  ratio $(echo "scale=3; $c / $floor" | bc)"
echo "xplat warm (2 platforms): ${warm}s  ratio $(echo "scale=3; $w / $floor" | bc)"
echo "peak RSS: cold $(cat "$work/rss-cold") KB, warm $(cat "$work/rss-warm") KB"
