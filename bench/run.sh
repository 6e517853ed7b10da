#!/usr/bin/env bash
# Runs the benchmark (see docs/performance.md). Pass --quick for a short development run, --references
# to measure the two reference servers too.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
exec node bench/run.mjs "$@"
