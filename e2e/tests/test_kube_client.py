"""eddy-operator's Kubernetes client (operator/src/k8s/) against the real kube-apiserver: CRUD and
error mapping, informer list/watch, watch cancellation, bearer tokens and TLS trust, Lease leader
election. The C++ tests live in tests/k8s/kube_api_test.cc (binary eddy_kube_api_tests of the
build in EDDY_BUILD_DIR, default build/)."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_kube_api(control_plane):
    if control_plane.token is None:
        pytest.skip("external cluster: needs the harness's token and CA")
    build = Path(os.environ.get("EDDY_BUILD_DIR", REPO / "build"))
    binary = build / "tests" / "eddy_kube_api_tests"
    assert binary.exists(), f"{binary} is not built (scripts/build.sh default)"
    env = dict(os.environ,
               EDDY_TEST_KUBECONFIG=str(control_plane.kubeconfig),
               EDDY_TEST_SERVER=control_plane.server,
               EDDY_TEST_TOKEN=control_plane.token,
               EDDY_TEST_CA=str(control_plane.pki / "ca.crt"),
               EDDY_TEST_ETCD=f"http://127.0.0.1:{control_plane.ports['etcd']}")
    r = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "[  PASSED  ] 7 tests." in r.stdout, r.stdout[-3000:]
