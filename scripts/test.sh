#!/usr/bin/env bash
# Builds and runs the whole test suite: unit + integration tests; the e2e scenarios on a real
# Kubernetes control plane (kube-apiserver & co. built from source into ~/.cache/eddy on first
# use, then cached); then the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh default
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600
# A machine without kubectl gets one built next to kube-apiserver (the harness prefers it).
command -v kubectl >/dev/null || export EDDY_BUILD_KUBECTL=1
EDDY_BUILD_JOBS=${EDDY_BUILD_JOBS:-$(nproc)} e2e/tools/build-k8s.sh >/dev/null
EDDY_BUILD_DIR="$PWD/build" python3 -m pytest -q -p no:cacheprovider e2e/tests
scripts/build.sh asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -L unit --timeout 900
