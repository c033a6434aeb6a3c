#!/usr/bin/env bash
# Configures and builds a preset (default: release-with-debug-info in build/; asan: build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-default}
[[ -f build/build.ninja && $preset == default ]] || cmake --preset "$preset" >/dev/null
[[ $preset != asan || -f build-asan/build.ninja ]] || cmake --preset asan >/dev/null
cmake --build --preset "$preset" -- -j"$(nproc)"
