"""pytest fixtures for the e2e scenarios: one real control plane per session (see harness/cluster.py).

The Kubernetes binaries come from EDDY_K8S_BIN or e2e/tools/build-k8s.sh's cache (built on first
use: tens of minutes). A missing binary is an error, not a skip. With EDDY_E2E_EXTERNAL=1 the
fixture is the cluster of KUBECONFIG instead (kind or a real one), nothing is started."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "harness"))

from cluster import ControlPlane, ExternalCluster  # noqa: E402


@pytest.fixture(scope="session")
def control_plane():
    if os.environ.get("EDDY_E2E_EXTERNAL") == "1":
        yield ExternalCluster()
        return
    with ControlPlane() as cp:
        yield cp
