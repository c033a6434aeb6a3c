#!/usr/bin/env bash
# Eddy against Apache Flink on the same jobs, in one invocation: runs build/bench/engine_bench's
# engine cases (typed and job-spec) and, right after each group, the same job on Flink
# (bench/flink/run.sh: MiniCluster, parallelism 1, same generator, same record counts), then prints
# records/s per core of both, their ratio and both result counts, which must match (same number of
# results and the same order-independent checksum over all result fields).
#
#   bench/compare.sh                         every group, 3 timed runs per case on both sides
#   bench/compare.sh tumbling sliding        groups/cases whose name contains a filter
#   bench/compare.sh --reps=5 --scale=0.5    options passed to both sides
#
# Environment:
#   EDDY_BENCH_BIN  engine_bench to run (default build/bench/engine_bench, relative to the repo
#                   root; when that default is missing it is built with
#                   `cmake --build build --target engine_bench`). It needs the --csv option.
#   COMPARE_OUT     folder for the raw CSV of both sides (default: a new temporary folder)
#   FLINK_VERSION, EDDY_CACHE, JAVA, FLINK_BENCH_JAVA_OPTS: see bench/flink/run.sh.
#
# Exit code 0 when every case ran and the result counts and checksums of both sides match; 2 if not.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bench_args=()
filters=()
for a in "$@"; do
  case "$a" in
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    --reps=* | --scale=* | --records=*) bench_args+=("$a") ;;
    --*) echo "compare.sh: unknown option $a (see --help)" >&2; exit 1 ;;
    *) filters+=("$a") ;;
  esac
done

bin="${EDDY_BENCH_BIN:-build/bench/engine_bench}"
if [[ ! -x "$bin" ]]; then
  if [[ -z "${EDDY_BENCH_BIN:-}" && (-f build/build.ninja || -f build/Makefile) ]]; then
    echo "compare.sh: $bin missing; building it (cmake --build build --target engine_bench)" >&2
    cmake --build build --target engine_bench >&2
  else
    echo "compare.sh: $bin not found. Configure and build it first, e.g." >&2
    echo "  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo && ninja -C build-bench engine_bench" >&2
    echo "  EDDY_BENCH_BIN=build-bench/bench/engine_bench bench/compare.sh" >&2
    exit 1
  fi
fi
help="$("$bin" --help 2>&1 || true)"
if [[ "$help" != *--csv* ]]; then
  echo "compare.sh: $bin has no --csv option: rebuild it from the current bench/engine_bench.cc" >&2
  exit 1
fi

flink="$root/bench/flink/run.sh"
"$flink" --build-only >/dev/null  # build (or find) the Flink jar before anything is timed

out="${COMPARE_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/eddy-compare.XXXXXX")}"
mkdir -p "$out"
: >"$out/eddy.csv"
: >"$out/flink.csv"

# Eddy's engine cases (not the hand-written baselines) selected by the filters, grouped.
matches() {
  local name="$1" f
  ((${#filters[@]} == 0)) && return 0
  for f in "${filters[@]}"; do [[ "$name" == *"$f"* ]] && return 0; done
  return 1
}
groups=()
declare -A group_cases=()
while read -r name _; do
  [[ "$name" == */typed || "$name" == */spec ]] || continue
  matches "$name" || continue
  g="${name%%/*}"
  [[ -n "${group_cases[$g]:-}" ]] || groups+=("$g")
  group_cases[$g]+="$name "
done < <("$bin" --list)
if ((${#groups[@]} == 0)); then
  echo "compare.sh: no engine case matches: ${filters[*]}" >&2
  exit 1
fi

echo "compare.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs; eddy: $bin; raw CSV in $out" >&2
status=0
for g in "${groups[@]}"; do
  # shellcheck disable=SC2206  # names have no spaces
  cases=(${group_cases[$g]})
  echo "== $g: Eddy (${cases[*]})" >&2
  "$bin" --csv "${bench_args[@]}" "${cases[@]}" >"$out/eddy-$g.csv" || status=2
  # The same record counts on Flink (one Flink run per distinct count).
  flink_cases=()
  while IFS=, read -r _ grp _ records _; do
    flink_cases+=("$grp@$records")
  done < <(tail -n +2 "$out/eddy-$g.csv")
  mapfile -t flink_cases < <(printf '%s\n' "${flink_cases[@]}" | awk '!seen[$0]++')
  echo "== $g: Flink (${flink_cases[*]})" >&2
  "$flink" --csv "${bench_args[@]}" "${flink_cases[@]}" >"$out/flink-$g.csv" || status=2
  if [[ ! -s "$out/eddy.csv" ]]; then head -n 1 "$out/eddy-$g.csv" >"$out/eddy.csv"; fi
  if [[ ! -s "$out/flink.csv" ]]; then head -n 1 "$out/flink-$g.csv" >"$out/flink.csv"; fi
  tail -n +2 "$out/eddy-$g.csv" >>"$out/eddy.csv"
  tail -n +2 "$out/flink-$g.csv" >>"$out/flink.csv"
done

# Join on (group, records) and print the table. Columns are looked up by name in each header.
awk -F, -v flink_csv="$out/flink.csv" '
  function col(hdr, name,   i) { for (i = 1; i <= hdr["n"]; i++) if (hdr[i] == name) return i; return 0 }
  function rate(r) { return r >= 1e6 ? sprintf("%.2f M", r / 1e6) : sprintf("%.0f k", r / 1e3) }
  BEGIN {
    while ((getline line < flink_csv) > 0) {
      n = split(line, f, ",")
      if (!fh["n"]) { fh["n"] = n; for (i = 1; i <= n; i++) fh[i] = f[i]; continue }
      key = f[col(fh, "group")] SUBSEP f[col(fh, "records")]
      for (i = 1; i <= n; i++) fl[key, fh[i]] = f[i]
      have[key] = 1
    }
    print "| case | records | Eddy rec/s/core | Flink rec/s/core | Eddy/Flink | Eddy cores | Flink cores | Eddy RSS MiB | Flink RSS MiB | Eddy results | Flink results | results |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  }
  NR == 1 { eh["n"] = NF; for (i = 1; i <= NF; i++) eh[$i] = i; next }
  {
    key = $eh["group"] SUBSEP $eh["records"]
    epc = $eh["records_per_core_s"]; echeck = $eh["check"]
    if (!(key in have)) {
      printf "| %s | %s | %s | - | - | %.2f | - | %.0f | - | %s | - | NO FLINK RUN |\n", $eh["case"], $eh["records"], rate(epc), $eh["cores"], $eh["peak_rss_kib"] / 1024, $eh["outputs"]
      bad = 1; next
    }
    fpc = fl[key, "records_per_core_s"]
    ok = (echeck == "= baseline" || echeck == "ok") && fl[key, "check"] == "ok"
    same = fl[key, "outputs"] == $eh["outputs"] && fl[key, "checksum"] == $eh["checksum"]
    verdict = !ok ? "FAILED (eddy: " echeck "; flink: " fl[key, "check"] ")" : same ? "match" : "MISMATCH"
    if (verdict != "match") bad = 1
    ratio = (fpc > 0) ? sprintf("%.2fx", epc / fpc) : "-"
    printf "| %s vs %s | %s | %s | %s | %s | %.2f | %.2f | %.0f | %.0f | %s | %s | %s |\n", \
      $eh["case"], fl[key, "case"], $eh["records"], rate(epc), rate(fpc), \
      ratio, $eh["cores"], fl[key, "cores"], \
      $eh["peak_rss_kib"] / 1024, fl[key, "peak_rss_kib"] / 1024, $eh["outputs"], fl[key, "outputs"], verdict
  }
  END { exit bad ? 2 : 0 }
' "$out/eddy.csv" || status=2

cat <<NOTE

rec/s/core = input records / CPU seconds of the process during the job (Eddy: user+sys of a forked
child; Flink: the JVM's process CPU time, i.e. task threads plus GC, JIT and MiniCluster services),
median of the runs. Eddy/Flink > 1: Eddy does more per core. results = number of results; "match":
same count and same order-independent checksum over all result fields on both sides. Raw CSV (with
wall-clock rates, spread, GC time and Flink's empty-job CPU): $out
load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)
NOTE
exit "$status"
