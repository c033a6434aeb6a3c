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


def test_helm_install(control_plane, tmp_path):
    """helm (built by build-k8s.sh) installs a chart into the control plane and lists it."""
    import subprocess

    cp = control_plane
    helm = cp.bin / "helm"
    if not helm.exists():
        pytest.skip("no helm next to the control-plane binaries")
    env = cp.env()
    env.update(HELM_CACHE_HOME=str(tmp_path / "cache"), HELM_CONFIG_HOME=str(tmp_path / "config"),
               HELM_DATA_HOME=str(tmp_path / "data"))

    def run(*args):
        r = subprocess.run([str(helm), *args], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"helm {' '.join(args)}:\n{r.stderr}{r.stdout}"
        return r.stdout

    chart = tmp_path / "smoke"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smoke\nversion: 0.1.0\n"
                                      "kubeVersion: '>=1.30.0-0'\n")
    (chart / "templates").mkdir()
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-cm'}\n"
        "data: {k: '{{ .Values.k }}'}\n")
    (chart / "values.yaml").write_text("k: v\n")
    run("lint", str(chart))
    run("install", "smoke", str(chart), "--namespace", "default", "--wait", "--timeout", "60s")
    assert "smoke" in run("list", "--namespace", "default", "--short")
    cm = cp.kubectl_json("get", "configmap", "smoke-cm", "-n", "default")
    assert cm["data"] == {"k": "v"}
    run("uninstall", "smoke", "--namespace", "default", "--wait")
