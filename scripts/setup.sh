#!/usr/bin/env bash
# Installs what Eddy needs to build and test on Debian 12 (idempotent; apt only when something is missing).
set -euo pipefail
PKGS=(cmake ninja-build g++ pkg-config libgtest-dev libgmock-dev libbenchmark-dev
      libcpprest-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libprotobuf-dev protobuf-compiler
      libzmq3-dev cppzmq-dev librocksdb-dev prometheus-cpp-dev clang-format python3 python3-pip)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Test harness tools (pytest, jsonschema, pyyaml) for the Python-based tests.
if ! python3 -c "import pytest, jsonschema, yaml" 2>/dev/null; then
  echo "setup: installing pytest jsonschema pyyaml" >&2
  python3 -m pip install -q pytest jsonschema pyyaml 2>/dev/null ||
    python3 -m pip install -q --break-system-packages pytest jsonschema pyyaml
fi
