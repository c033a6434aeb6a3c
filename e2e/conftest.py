"""pytest fixtures for the e2e scenarios: one real control plane per session (see harness/cluster.py).

The Kubernetes binaries come from EDDY_K8S_BIN or e2e/tools/build-k8s.sh's cache (built on first
use: tens of minutes). A missing binary is an error, not a skip. With EDDY_E2E_EXTERNAL=1 the
fixture is the cluster of KUBECONFIG instead (kind or a real one), nothing is started.

`node_agent` (test infrastructure, harness/node_agent.py) registers Node `eddy-e2e-node` on top of
`control_plane` and runs the pods bound to it as local processes; images: see
node_agent.default_images (eddy-worker/eddy-operator from build/, e2e-sleep, e2e-shell,
e2e-python). It is None with EDDY_E2E_EXTERNAL=1: a real cluster has kubelets."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "harness"))

from cluster import ControlPlane, ExternalCluster  # noqa: E402
from node_agent import NodeAgent, default_images  # noqa: E402


@pytest.fixture(scope="session")
def control_plane():
    if os.environ.get("EDDY_E2E_EXTERNAL") == "1":
        yield ExternalCluster()
        return
    with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
def node_agent(control_plane):
    if os.environ.get("EDDY_E2E_EXTERNAL") == "1":
        yield None
        return
    with NodeAgent(control_plane, default_images()) as agent:
        yield agent
