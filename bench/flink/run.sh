#!/usr/bin/env bash
# Apache Flink baseline for bench/engine_bench.cc: builds the Maven project in this folder (once per
# Flink version and content of pom.xml + src/, cached under ~/.cache/eddy) and runs its cases.
#
#   bench/flink/run.sh                      every case: 1 warm-up + 3 timed runs, median reported
#   bench/flink/run.sh --reps=5 tumbling    options and filters as engine_bench's (--help)
#   bench/flink/run.sh --build-only         build if needed, print the jar's path
#
# Environment:
#   FLINK_VERSION          Flink version to build against (default: <flink.version> in pom.xml)
#   EDDY_CACHE             cache root (default ~/.cache/eddy): Maven repository in m2/, built jars in
#                          flink-bench/<version>/<hash>/
#   JAVA                   java binary (default: $JAVA_HOME/bin/java, else java); Java 17 or newer
#   FLINK_BENCH_JAVA_OPTS  JVM options of the benchmark JVMs (default -Xmx1g); every case's JVM
#                          gets them, plus the --add-opens Flink needs on Java 17
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${EDDY_CACHE:-$HOME/.cache/eddy}"
version="${FLINK_VERSION:-$(sed -n 's:.*<flink.version>\(.*\)</flink.version>.*:\1:p' "$here/pom.xml" | head -n 1)}"
java="${JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/}java}"

# The build is keyed by the Flink version and the project's content (paths relative to here).
hash="$(
  cd "$here"
  {
    echo "flink $version"
    find pom.xml src -type f | LC_ALL=C sort | while read -r f; do
      echo "== $f"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
)"
out="$cache/flink-bench/$version/$hash"
jar="$out/eddy-flink-bench.jar"

if [[ ! -f "$jar" ]]; then
  command -v mvn >/dev/null || { echo "run.sh: mvn not found" >&2; exit 1; }
  mkdir -p "$cache/flink-bench/$version"
  # Built outside the repository, so that no target/ appears in the work tree.
  stage="$(mktemp -d "$cache/flink-bench/$version/build.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  cp -r "$here/pom.xml" "$here/src" "$stage/"
  echo "run.sh: building the Flink $version benchmark jar in $stage (Maven repository $cache/m2)" >&2
  if ! (cd "$stage" && mvn -B -Dstyle.color=never -Dmaven.repo.local="$cache/m2" \
    -Dflink.version="$version" package) >"$stage/build.log" 2>&1; then
    cat "$stage/build.log" >&2
    echo "run.sh: the Maven build failed (log above)" >&2
    exit 1
  fi
  rm -rf "$out"
  mkdir -p "$stage/out"
  cp -r "$stage/target/eddy-flink-bench.jar" "$stage/target/lib" "$stage/out/"
  mv "$stage/out" "$out"
  rm -rf "$stage"
  trap - EXIT
  echo "run.sh: built $jar" >&2
fi

if [[ "${1:-}" == "--build-only" ]]; then
  echo "$jar"
  exit 0
fi

# What Flink's own launch scripts open on Java 17 (reflection into the JDK for serializers, Netty).
opens=()
for p in java.base/java.lang java.base/java.lang.reflect java.base/java.io java.base/java.net \
  java.base/java.nio java.base/sun.nio.ch java.base/java.text java.base/java.time java.base/java.util \
  java.base/java.util.concurrent java.base/java.util.concurrent.atomic \
  java.base/java.util.concurrent.locks; do
  opens+=("--add-opens=$p=ALL-UNNAMED")
done
opens+=("--add-exports=java.base/sun.net.util=ALL-UNNAMED")

# shellcheck disable=SC2086  # FLINK_BENCH_JAVA_OPTS is a list of options
exec "$java" ${FLINK_BENCH_JAVA_OPTS--Xmx1g} "${opens[@]}" -jar "$jar" "$@"
