"""pytest fixtures for the e2e scenarios: one real control plane per session (see harness/cluster.py).

The Kubernetes binaries come from EDDY_K8S_BIN or e2e/tools/build-k8s.sh's cache (built on first
use: tens of minutes). A missing binary is an error, not a skip."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "harness"))

from cluster import ControlPlane  # noqa: E402


@pytest.fixture(scope="session")
def control_plane():
    with ControlPlane() as cp:
        yield cp
