#!/usr/bin/env bash
# Sets everything up and runs the main example job locally (embedded defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh default
exec ./build/operator/eddy run examples/sensor-window.yaml "$@"
