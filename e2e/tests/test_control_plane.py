"""The harness's own check: the control plane built from k8s.io/kubernetes serves namespaces,
CRDs with CEL rules, custom resources, and schedules pods (controller-manager and scheduler run)."""

import json
import ssl
import urllib.request

import pytest

from cluster import smoke


def test_control_plane_smoke(control_plane):
    smoke(control_plane)


def test_static_token(control_plane):
    cp = control_plane
    if cp.token is None:
        pytest.skip("external cluster: no harness token")
    ctx = ssl.create_default_context(cafile=str(cp.pki / "ca.crt"))
    req = urllib.request.Request(
        cp.server + "/apis/authentication.k8s.io/v1/selfsubjectreviews", method="POST",
        data=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                         "kind": "SelfSubjectReview"}).encode(),
        headers={"Authorization": f"Bearer {cp.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        info = json.loads(r.read())["status"]["userInfo"]
    assert info["username"] == "eddy-e2e-admin"
    assert "system:masters" in info["groups"]


def test_kubeconfig_identity(control_plane):
    if control_plane.token is None:
        pytest.skip("external cluster: its own identity")
    r = control_plane.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert r.stdout.strip() == "eddy-e2e-admin"
