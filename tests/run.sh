#!/usr/bin/env bash
# The one test command (README.md): prepares what the tests need on a fresh
# machine, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets 2>&1
