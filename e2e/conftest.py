"""pytest fixtures for the e2e scenarios: one real control plane per session (see harness/cluster.py).

The Kubernetes binaries come from EDDY_K8S_BIN or e2e/tools/build-k8s.sh's cache (built on first
use: tens of minutes). A missing binary is an error, not a skip. With EDDY_E2E_EXTERNAL=1 the
fixture is the cluster of KUBECONFIG instead (kind or a real one), nothing is started.

`node_agent` (test infrastructure, harness/node_agent.py) registers Node `eddy-e2e-node` on top of
`control_plane` and runs the pods bound to it as local processes; images: see
node_agent.default_images (eddy-worker/eddy-operator from $EDDY_BUILD_DIR, default build/;
e2e-sleep, e2e-shell, e2e-python). Its pods get IPs in a loopback subnet of their own
(EDDY_NODE_AGENT_SUBNET, else one derived from the pid), so that two e2e sessions on one machine
never bind the same IP:port. It is None with EDDY_E2E_EXTERNAL=1: a real cluster has kubelets.

`eddy` (session, harness/eddy_k8s.py) installs the Helm chart into eddy-system on top of them, with
an S3 server (moto) for checkpoints and savepoints; `ns` (per test) is a fresh namespace with the
S3 credentials Secret, whose FlinkJobs are deleted afterwards. When a test that uses `eddy` fails,
its report gets the FlinkJobs, pods and Events of its namespaces and the operator's, workers' and
node agent's logs.

The scenarios (tests/test_e2e_*.py) run after every other test file: test_helm.py installs and
uninstalls the same release and deletes eddy-system, so it must be done before the scenarios'
install."""

import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "harness"))

from cluster import ControlPlane, ExternalCluster  # noqa: E402
from eddy_k8s import EddyK8s  # noqa: E402
from node_agent import NodeAgent, default_images  # noqa: E402

EXTERNAL = os.environ.get("EDDY_E2E_EXTERNAL") == "1"


def pytest_collection_modifyitems(config, items):
    """Scenario files (test_e2e_*) last, in their file order; the rest keeps its order."""
    scen = [i for i in items if Path(str(i.fspath)).name.startswith("test_e2e_")]
    rest = [i for i in items if not Path(str(i.fspath)).name.startswith("test_e2e_")]
    items[:] = rest + scen


def pod_subnet():
    """A loopback /24 for this session's pods: EDDY_NODE_AGENT_SUBNET, else 127.A.B from the pid
    (127.0.0 is the node agent's default, used by sessions started by hand)."""
    env = os.environ.get("EDDY_NODE_AGENT_SUBNET")
    if env:
        return env
    pid = os.getpid()
    return f"127.{100 + pid % 150}.{1 + (pid // 150) % 250}"


@pytest.fixture(scope="session")
def control_plane():
    if EXTERNAL:
        yield ExternalCluster()
        return
    with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
def node_agent(control_plane):
    if EXTERNAL:
        yield None
        return
    with NodeAgent(control_plane, default_images(), pod_subnet=pod_subnet()) as agent:
        yield agent


_EDDY = {}


@pytest.fixture(scope="session")
def eddy(control_plane, node_agent, tmp_path_factory):
    """The chart installed (operator Ready) with an S3 server; see harness/eddy_k8s.py."""
    e = EddyK8s(control_plane, node_agent, tmp_path_factory.mktemp("eddy"))
    _EDDY["current"] = e
    try:
        e.start()
        yield e
    finally:
        _EDDY.pop("current", None)
        e.stop()


@pytest.fixture
def ns(eddy, request):
    """A fresh namespace for the test (named after it) with the S3 credentials Secret."""
    short = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().replace("test_", ""))[:30]
    name = f"e2e-{short.strip('-')}-{os.urandom(2).hex()}"
    eddy.namespaces = []
    eddy.create_namespace(name)
    yield name
    eddy.delete_namespace(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure of a test using `eddy`: FlinkJobs, pods, Events, operator/worker logs."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "eddy" in item.fixturenames and _EDDY.get("current"):
        try:
            rep.sections.append(("eddy diagnostics", _EDDY["current"].diagnostics()))
        except Exception as e:  # noqa: BLE001 - a report must not fail because of this
            rep.sections.append(("eddy diagnostics", f"(could not collect: {e})"))
