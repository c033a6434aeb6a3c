#!/usr/bin/env bash
# The fault-tolerance chaos run, long variant (issue 4's acceptance): a keyed tumbling-window job
# with RocksDB state, checkpoints every second, the transactional file sink and 3 worker
# processes (`eddy run --workers 3`); a random worker is SIGKILLed every 3-5 s, 10 times, then the
# job runs to its end. Passes when the committed output equals the failure-free run's exactly (no
# window lost, none twice) and nothing is left staged. The CI variant (3 kills, 1.5-2.5 s apart) is
# the ctest test `checkpoints`; both run tests/python/test_checkpoints.py.
#
#   bench/chaos.sh                      10 kills every 3-5 s
#   bench/chaos.sh --kills=20 --gap=2-4 --rate=20000 --seed=7
#
# Environment: EDDY_BINARY_DIR (default build, relative to the repo root) holds operator/eddy; it is
# built with `cmake --build` when missing. Prints the test's log tail and exits non-zero on failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
kills=10 gap=3-5 rate=9000 seed=42
for a in "$@"; do
  case "$a" in
    --kills=*) kills="${a#*=}" ;;
    --gap=*) gap="${a#*=}" ;;
    --rate=*) rate="${a#*=}" ;;
    --seed=*) seed="${a#*=}" ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "chaos.sh: unknown option '$a' (see --help)" >&2
      exit 2
      ;;
  esac
done
build="${EDDY_BINARY_DIR:-$root/build}"
if [[ ! -x "$build/operator/eddy" ]]; then
  cmake --preset default >/dev/null
  cmake --build "$build" --target eddy
fi
export EDDY_SOURCE_DIR="$root" EDDY_BINARY_DIR="$build"
export EDDY_CHAOS_KILLS="$kills" EDDY_CHAOS_GAP="$gap" EDDY_CHAOS_RATE="$rate" EDDY_CHAOS_SEED="$seed"
start=$(date +%s)
python3 -m pytest -q -p no:cacheprovider \
  "tests/python/test_checkpoints.py::test_exactly_once_under_repeated_worker_kills"
echo "chaos: $kills kills every $gap s at $rate records/s: exactly-once held ($(($(date +%s) - start)) s)"
