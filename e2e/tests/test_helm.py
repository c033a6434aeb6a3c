"""The Helm chart helm/eddy: `helm lint --strict` and `helm template` of several value sets (RBAC
rules and namespaces, leader election, security context, probes, S3, monitors, the CRD copy),
then `helm install` into the real API server with `kubectl auth can-i` checks of what the
operator's ServiceAccount may and may not do, and `helm uninstall`.

No node runs here, so the operator pod stays Pending; nothing waits for it. The rules the chart
must grant are written out below independently of the chart: they are the operator's contract."""

import base64
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from cluster import BUILD_SCRIPT, k8s_bin_dir, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "eddy"
CRD = ROOT / "crds" / "flinkjob.yaml"
# helm's built-in default Kubernetes version (v1.20 in a build without version stamps) is below
# the chart's kubeVersion: templates render for the version the e2e control plane runs.
KUBE_VERSION = "1.37.2"
RELEASE, RELEASE_NS = "eddy", "eddy-system"
OPERATOR_SA = f"system:serviceaccount:{RELEASE_NS}:eddy-operator"

# The operator's whole use of the API in a watched namespace: (apiGroup, resource) -> verbs.
OPERATOR_RULES = {
    ("eddy.dev", "flinkjobs"): {"get", "list", "watch", "patch"},
    ("eddy.dev", "flinkjobs/status"): {"get", "patch"},
    ("eddy.dev", "flinkjobs/finalizers"): {"update"},
    ("", "pods"): {"list", "watch", "create", "delete", "deletecollection"},
    ("", "services"): {"create"},
    ("", "events"): {"create"},
}
LEASE_RULES = {("coordination.k8s.io", "leases"): {"get", "create", "update"},
               ("", "pods"): {"patch"}}

# Value sets `helm lint --strict` must accept.
LINT_VARIANTS = {
    "default": [],
    "namespaced": ["--set", "watchNamespaces={team-a,team-b}"],
    "leader-election": ["--set", "replicas=3", "--set", "leaderElection.enabled=true",
                        "--set", "leaderElection.leaseName=my-lease"],
    "s3-secret": ["--set", "s3.endpoint=http://minio.minio:9000", "--set", "s3.region=eu-west-1",
                  "--set", "s3.credentials.create=true", "--set", "s3.credentials.accessKeyId=ak",
                  "--set", "s3.credentials.secretAccessKey=sk"],
    "monitors": ["--set", "metrics.serviceMonitor.enabled=true",
                 "--set", "metrics.podMonitor.enabled=true", "--set", "metrics.podAnnotations=false",
                 "--set", "s3.credentials.existingSecret=s3"],
    "bring-your-own": ["--set", "rbac.create=false", "--set", "serviceAccount.create=false",
                       "--set", "serviceAccount.name=ops", "--set", "worker.serviceAccount.create=false",
                       "--set", "bindPodIP=true", "--set", "extraArgs={--x=1}",
                       "--set", "nodeSelector.pool=system", "--set", "podAnnotations.a=b"],
}


# ------------------------------------------------------------------ helpers

@pytest.fixture(scope="module")
def helm(tmp_path_factory):
    """Runs the e2e cache's helm (built by build-k8s.sh on first use) with throw-away helm homes."""
    path = k8s_bin_dir() / "helm"
    if not path.exists():
        out = subprocess.run(["bash", str(BUILD_SCRIPT), "helm"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        path = Path(out.strip().splitlines()[-1]) / "helm"
    if not path.exists() and shutil.which("helm"):
        path = Path(shutil.which("helm"))
    assert path.exists(), f"no helm at {path}"
    home = tmp_path_factory.mktemp("helm-home")

    def run(*args, env=None, check=True, timeout=120):
        e = dict(env or os.environ)
        e.update(HELM_CACHE_HOME=str(home / "cache"), HELM_CONFIG_HOME=str(home / "config"),
                 HELM_DATA_HOME=str(home / "data"))
        r = subprocess.run([str(path), *map(str, args)], env=e, capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, f"helm {' '.join(map(str, args))}:\n{r.stderr}{r.stdout}"
        return r
    return run


def render(helm, *args, ns=RELEASE_NS):
    """`helm template` -> list of objects."""
    out = helm("template", RELEASE, CHART, "-n", ns, "--kube-version", KUBE_VERSION, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name=None, namespace=None):
    found = [d for d in of_kind(docs, kind)
             if (name is None or d["metadata"]["name"] == name)
             and (namespace is None or d["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} found"
    return found[0]


def container(docs):
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    return c


def flat_rules(rules):
    """(apiGroup, resource) -> verbs; refuses duplicates, resourceNames and nonResourceURLs."""
    out = {}
    for r in rules:
        assert set(r) == {"apiGroups", "resources", "verbs"}, r
        for g in r["apiGroups"]:
            for res in r["resources"]:
                assert (g, res) not in out, f"({g!r}, {res!r}) in two rules"
                assert len(set(r["verbs"])) == len(r["verbs"]), r
                out[(g, res)] = set(r["verbs"])
    return out


# ------------------------------------------------------------------ lint and template

@pytest.mark.parametrize("variant", LINT_VARIANTS)
def test_lint_strict(helm, variant):
    r = helm("lint", "--strict", CHART, *LINT_VARIANTS[variant])
    assert "0 chart(s) failed" in r.stdout, r.stdout
    assert "[WARNING]" not in r.stdout and "[ERROR]" not in r.stdout, r.stdout
    render(helm, *LINT_VARIANTS[variant])


def test_default_watches_all_namespaces(helm):
    docs = render(helm)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Deployment", "Service",
                     "ServiceAccount", "ServiceAccount"], kinds
    assert not of_kind(docs, "Role") and not of_kind(docs, "RoleBinding")
    role = one(docs, "ClusterRole", "eddy-operator")
    assert flat_rules(role["rules"]) == OPERATOR_RULES
    crb = one(docs, "ClusterRoleBinding", "eddy-operator")
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "eddy-operator"}
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "eddy-operator",
                                "namespace": RELEASE_NS}]
    args = container(docs)["args"]
    assert not [a for a in args if a.startswith("--watch-namespaces")], args
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "eddy-operator"
    worker_sa = one(docs, "ServiceAccount", "eddy-worker", RELEASE_NS)
    assert worker_sa["automountServiceAccountToken"] is False


def test_watch_namespaces(helm):
    docs = render(helm, "--set", "watchNamespaces={a,b}")
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in of_kind(docs, "Role")) == ["a", "b"]
    for ns in ("a", "b"):
        role = one(docs, "Role", "eddy-operator", ns)
        assert flat_rules(role["rules"]) == OPERATOR_RULES
        rb = one(docs, "RoleBinding", "eddy-operator", ns)
        assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                 "name": "eddy-operator"}
        assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "eddy-operator",
                                   "namespace": RELEASE_NS}]
        assert one(docs, "ServiceAccount", "eddy-worker", ns)["automountServiceAccountToken"] is False
    assert "--watch-namespaces=a,b" in container(docs)["args"]
    assert not [d for d in of_kind(docs, "ServiceAccount")
                if d["metadata"]["name"] == "eddy-worker" and d["metadata"]["namespace"] == RELEASE_NS]


def test_leader_election(helm):
    docs = render(helm)
    dep = one(docs, "Deployment")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert not [a for a in container(docs)["args"] if a.startswith("--lea")]
    assert not [r for r in of_kind(docs, "Role") if "leases" in json.dumps(r)]

    docs = render(helm, "--set", "replicas=2", "--set", "leaderElection.enabled=true",
                  "--set", "watchNamespaces={a}")
    dep = one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    args = container(docs)["args"]
    for a in ("--leader-elect", "--lease-name=eddy-operator", f"--lease-namespace={RELEASE_NS}"):
        assert a in args, args
    lease_role = one(docs, "Role", "eddy-operator-leader-election", RELEASE_NS)
    assert flat_rules(lease_role["rules"]) == LEASE_RULES
    rb = one(docs, "RoleBinding", "eddy-operator-leader-election", RELEASE_NS)
    assert rb["roleRef"]["name"] == "eddy-operator-leader-election"
    assert rb["subjects"][0]["name"] == "eddy-operator"
    # leases appear in no other rule
    assert flat_rules(one(docs, "Role", "eddy-operator", "a")["rules"]) == OPERATOR_RULES


def test_replicas_without_leader_election_fail(helm):
    # `helm lint` only logs a template's `fail` (lint mode); template/install/upgrade stop on it
    r = helm("template", RELEASE, CHART, "--kube-version", KUBE_VERSION, "--set", "replicas=2",
             check=False)
    assert r.returncode != 0, r.stdout
    assert "replicas is 2 but leaderElection.enabled is false" in r.stderr
    render(helm, "--set", "replicas=0")  # scaled to zero: nothing to elect


def test_crd_copy_identical(helm):
    chart_crd = CHART / "crds" / "flinkjob.yaml"
    assert chart_crd.read_bytes() == CRD.read_bytes(), "run scripts/gen-crd.py"
    docs = render(helm, "--include-crds")
    (crd,) = of_kind(docs, "CustomResourceDefinition")
    assert crd == yaml.safe_load(CRD.read_text())


def test_security_context(helm):
    docs = render(helm)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs)["securityContext"]
    assert sc["runAsUser"] == 65532 and sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # a read-only root needs a writable /tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in container(docs)["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


def test_probes_ports_and_service(helm):
    docs = render(helm)
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"rest": 8081, "health": 8085, "metrics": 9249}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert {"--health-port=8085", "--metrics-port=9249", "--rest-port=8081"} <= set(c["args"])
    svc = one(docs, "Service", "eddy-operator", RELEASE_NS)
    assert svc["spec"]["type"] == "ClusterIP"
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        "metrics": (9249, "metrics"), "rest": (8081, "rest"), "health": (8085, "health")}
    dep = one(docs, "Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                "app.kubernetes.io/managed-by", "helm.sh/chart"):
        assert key in dep["metadata"]["labels"], key
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann == {"prometheus.io/scrape": "true", "prometheus.io/port": "9249",
                   "prometheus.io/path": "/metrics"}
    docs = render(helm, "--set", "metrics.podAnnotations=false", "--set", "ports.health=9000")
    assert "annotations" not in one(docs, "Deployment")["spec"]["template"]["metadata"]
    assert "--health-port=9000" in container(docs)["args"]


def test_args_and_env(helm):
    docs = render(helm)
    c = container(docs)
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert not [n for n in env if n.startswith("AWS_")]
    assert c["image"] == "eddy-operator:0.1.0"
    assert "--worker-image=eddy-worker:0.1.0" in c["args"] and "--log-level=info" in c["args"]
    assert not [a for a in c["args"] if a.startswith(("--bind-address", "--advertise-address"))]

    docs = render(helm, "--set", "bindPodIP=true", "--set", "advertiseAddress=10.1.2.3",
                  "--set", "worker.image=reg/eddy-worker:x", "--set", "image.tag=dev",
                  "--set", "extraArgs={--a=1,--b}", "--set", "extraEnv[0].name=FOO",
                  "--set", "extraEnv[0].value=bar", "--set", "logLevel=debug")
    c = container(docs)
    assert "--bind-address=$(POD_IP)" in c["args"]
    assert "--advertise-address=10.1.2.3" in c["args"]
    assert "--worker-image=reg/eddy-worker:x" in c["args"] and "--log-level=debug" in c["args"]
    assert c["args"][-2:] == ["--a=1", "--b"]
    assert c["image"] == "eddy-operator:dev"
    assert {"name": "FOO", "value": "bar"} in c["env"]


def test_s3(helm):
    docs = render(helm, "--set", "s3.endpoint=http://minio:9000", "--set", "s3.region=eu-west-1",
                  "--set", "s3.credentials.create=true", "--set", "s3.credentials.accessKeyId=ak",
                  "--set", "s3.credentials.secretAccessKey=sk")
    secret = one(docs, "Secret", "eddy-s3", RELEASE_NS)
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"}
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["AWS_ENDPOINT_URL_S3"]["value"] == "http://minio:9000"
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {
        "secretKeyRef": {"name": "eddy-s3", "key": "AWS_ACCESS_KEY_ID"}}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "eddy-s3", "key": "AWS_SECRET_ACCESS_KEY"}}
    assert "checksum/s3-secret" in one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]

    docs = render(helm, "--set", "s3.credentials.existingSecret=creds",
                  "--set", "s3.credentials.accessKeyIdKey=id", "--set", "s3.credentials.secretAccessKeyKey=key")
    assert not of_kind(docs, "Secret")
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "creds", "key": "id"}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "creds", "key": "key"}

    for bad, message in ((["--set", "s3.credentials.create=true"], "needs both"),
                         (["--set", "s3.credentials.create=true", "--set", "s3.credentials.accessKeyId=a",
                           "--set", "s3.credentials.secretAccessKey=b",
                           "--set", "s3.credentials.existingSecret=c"], "not both"),
                         (["--set", "s3.pathStyle=true"], "pathStyle"),
                         (["--set", "s3.endpoint=http://minio:9000/bucket"], "endpoint")):
        r = helm("template", RELEASE, CHART, "--kube-version", KUBE_VERSION, *bad, check=False)
        assert r.returncode != 0 and message in r.stderr, (bad, r.stderr)


def test_monitors(helm):
    assert not [d for d in render(helm) if d["apiVersion"].startswith("monitoring.coreos.com")]
    docs = render(helm, "--set", "metrics.serviceMonitor.enabled=true",
                  "--set", "metrics.podMonitor.enabled=true", "--set", "watchNamespaces={a,b}",
                  "--set", "metrics.serviceMonitor.labels.release=prom")
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["selector"]["matchLabels"] == one(docs, "Service")["spec"]["selector"]
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    pm = one(docs, "PodMonitor")
    assert pm["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "eddy-worker"}}
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["a", "b"]}
    pm = one(render(helm, "--set", "metrics.podMonitor.enabled=true"), "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"any": True}


def test_grafana_dashboard(helm):
    assert not of_kind(render(helm), "ConfigMap")
    cm = one(render(helm, "--set", "grafana.dashboard.enabled=true",
                    "--set", "grafana.dashboard.namespace=monitoring"), "ConfigMap")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["eddy.json"])
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    # every metric a panel queries is one Eddy exports (docs/metrics.md lists them all)
    documented = set(re.findall(r"`(eddy_[a-z_]+)`", (ROOT / "docs" / "metrics.md").read_text()))
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in re.findall(r"eddy_[a-z_]+", e)}
    assert used, exprs
    assert used <= documented, f"not in docs/metrics.md: {sorted(used - documented)}"


def test_toggles(helm):
    docs = render(helm, "--set", "rbac.create=false", "--set", "serviceAccount.create=false",
                  "--set", "serviceAccount.name=ops", "--set", "worker.serviceAccount.create=false")
    assert sorted(d["kind"] for d in docs) == ["Deployment", "Service"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    r = helm("template", RELEASE, CHART, "--kube-version", KUBE_VERSION,
             "--set", "serviceAccount.create=false", check=False)
    assert r.returncode != 0 and "serviceAccount.name" in r.stderr
    # names follow the release; a typo in a value is refused by values.schema.json
    docs = render(helm, "--set", "nodeSelector.pool=sys", "--set", "tolerations[0].operator=Exists")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "sys"} and pod["tolerations"] == [{"operator": "Exists"}]
    out = helm("template", "prod", CHART, "--kube-version", KUBE_VERSION).stdout
    assert "name: prod-eddy-operator" in out
    r = helm("template", RELEASE, CHART, "--kube-version", KUBE_VERSION, "--set", "replica=2",
             check=False)
    assert r.returncode != 0 and "replica" in r.stderr


def leaf_keys(node, prefix=""):
    """Documented keys of values.yaml: leaves, and maps that are values in their own right."""
    whole = {"podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe",
             "labels"}
    for k, v in node.items():
        key = prefix + k
        if isinstance(v, dict) and v and k not in whole:
            yield from leaf_keys(v, key + ".")
        else:
            yield key


def test_values_documented():
    """Every value is in README.md's table and in values.schema.json, and the schema knows no
    value that values.yaml lacks."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    for key in leaf_keys(values):
        assert f"| `{key}` |" in readme, f"{key} missing from helm/eddy/README.md"
        node = schema
        for part in key.split("."):
            assert part in node.get("properties", {}), f"{key} missing from values.schema.json"
            node = node["properties"][part]
    assert set(schema["properties"]) - {"global"} == set(values)


# ------------------------------------------------------------------ on the API server

WATCHED = ("helm-e2e-a", "helm-e2e-b")
UNWATCHED = "helm-e2e-c"


def can_i(cp, *args, who=OPERATOR_SA):
    r = cp.kubectl("auth", "can-i", *args, f"--as={who}", check=False)
    assert r.stdout.strip() in ("yes", "no"), r.stderr + r.stdout
    return r.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def cluster(control_plane, helm):
    cp = control_plane
    for ns in (*WATCHED, UNWATCHED):
        if cp.kubectl("get", "ns", ns, check=False).returncode != 0:
            cp.kubectl("create", "ns", ns)
    crd_existed = cp.kubectl("get", "crd", "flinkjobs.eddy.dev", check=False).returncode == 0
    env = cp.env()
    run = lambda *a, **k: helm(*a, "--kubeconfig", cp.kubeconfig, env=env, **k)  # noqa: E731
    yield cp, run, crd_existed
    run("uninstall", RELEASE, "-n", RELEASE_NS, check=False)
    for ns in (*WATCHED, UNWATCHED, RELEASE_NS):
        cp.kubectl("delete", "ns", ns, "--wait=false", check=False)


def gone(cp, *args):
    return cp.kubectl("get", *args, check=False).returncode != 0


def test_install_namespaced(cluster):
    cp, run, crd_existed = cluster
    out = run("install", RELEASE, CHART, "-n", RELEASE_NS, "--create-namespace",
              "--set", f"watchNamespaces={{{','.join(WATCHED)}}}",
              "--set", "leaderElection.enabled=true", "--set", "bindPodIP=true",
              "--timeout", "60s").stdout
    notes = out[out.index("NOTES:"):]
    assert f"Watching:  namespaces {', '.join(WATCHED)}" in notes, notes
    assert f"Lease {RELEASE_NS}/eddy-operator" in notes, notes
    assert "--force-conflicts -f crds/flinkjob.yaml" in notes, notes
    status = json.loads(run("status", RELEASE, "-n", RELEASE_NS, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    cp.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/flinkjobs.eddy.dev")
    if not crd_existed:  # helm installed it from crds/ (else an earlier test had applied it)
        crd = cp.kubectl_json("get", "crd", "flinkjobs.eddy.dev")
        assert crd["spec"]["versions"][0]["name"] == "v1alpha1"

    dep = cp.kubectl_json("get", "deployment", "eddy-operator", "-n", RELEASE_NS)
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "eddy-operator"
    assert f"--watch-namespaces={','.join(WATCHED)}" in pod["containers"][0]["args"]
    cp.kubectl("get", "serviceaccount", "eddy-operator", "-n", RELEASE_NS)
    cp.kubectl("get", "service", "eddy-operator", "-n", RELEASE_NS)
    for ns in WATCHED:
        cp.kubectl("get", "role", "eddy-operator", "-n", ns)
        cp.kubectl("get", "rolebinding", "eddy-operator", "-n", ns)
        sa = cp.kubectl_json("get", "serviceaccount", "eddy-worker", "-n", ns)
        assert sa["automountServiceAccountToken"] is False
    cp.kubectl("get", "role", "eddy-operator-leader-election", "-n", RELEASE_NS)
    assert gone(cp, "role", "eddy-operator", "-n", UNWATCHED)
    assert gone(cp, "clusterrole", "eddy-operator")
    # the API server accepted the pod the Deployment makes (security context, fieldRefs); no node
    # runs it, so it stays Pending
    pods = wait_for(lambda: cp.kubectl_json("get", "pods", "-n", RELEASE_NS, "-l",
                                            "app.kubernetes.io/component=operator")["items"],
                    timeout=30, what="operator pod created")
    assert pods[0]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_crd_upgrade_path(cluster):
    """The documented CRD upgrade (`kubectl apply --server-side --force-conflicts`) changes the
    CRD Helm installed; without --force-conflicts it is refused as a conflict with helm."""
    cp, _, crd_existed = cluster
    doc = yaml.safe_load(CRD.read_text())
    doc["spec"]["versions"][0]["additionalPrinterColumns"][0]["description"] = "upgraded"
    changed = json.dumps(doc)
    try:
        if not crd_existed:  # Helm's field manager owns the CRD it created
            r = cp.kubectl("apply", "--server-side", "-f", "-", input=changed, check=False)
            assert r.returncode != 0 and 'conflict with "helm"' in r.stderr, r.stderr
        cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=changed)
        got = cp.kubectl_json("get", "crd", "flinkjobs.eddy.dev")
        assert got["spec"]["versions"][0]["additionalPrinterColumns"][0]["description"] == "upgraded"
    finally:
        cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", CRD)
    original = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["additionalPrinterColumns"][0]
    got = cp.kubectl_json("get", "crd", "flinkjobs.eddy.dev")
    assert got["spec"]["versions"][0]["additionalPrinterColumns"][0] == original


def test_rbac_namespaced(cluster):
    cp, _, _ = cluster
    a, b = WATCHED
    wait_for(lambda: can_i(cp, "create", "pods", "-n", a), timeout=20, what="RoleBinding in effect")
    allowed = [
        ("create", "pods", "-n", b),
        ("deletecollection", "pods", "-n", a),
        ("patch", "flinkjobs.eddy.dev", "--subresource=status", "-n", a),
        ("update", "flinkjobs.eddy.dev", "--subresource=finalizers", "-n", b),
        ("watch", "flinkjobs.eddy.dev", "-n", b),
        ("create", "events", "-n", a),
        ("create", "services", "-n", a),
        ("create", "leases.coordination.k8s.io", "-n", RELEASE_NS),
        ("update", "leases.coordination.k8s.io", "-n", RELEASE_NS),
    ]
    denied = [
        ("create", "pods", "-n", UNWATCHED),
        ("get", "flinkjobs.eddy.dev", "-n", UNWATCHED),
        ("get", "secrets", "-A"),
        ("get", "secrets", "-n", RELEASE_NS),
        ("create", "secrets", "-n", a),
        ("get", "secrets", "-n", a),
        ("create", "configmaps", "-n", b),
        ("update", "flinkjobs.eddy.dev", "-n", a),
        ("delete", "nodes"),
        ("create", "flinkjobs.eddy.dev", "-n", a),
        ("delete", "flinkjobs.eddy.dev", "-n", a),
        ("update", "services", "-n", a),
        ("create", "leases.coordination.k8s.io", "-n", a),
        ("delete", "leases.coordination.k8s.io", "-n", RELEASE_NS),
        ("create", "pods", "-n", RELEASE_NS),
    ]
    wrong = [c for c in allowed if not can_i(cp, *c)] + [c for c in denied if can_i(cp, *c)]
    assert not wrong, f"allowed/denied the wrong way: {wrong}"
    # workers: no API access at all
    assert not can_i(cp, "get", "pods", "-n", a, who=f"system:serviceaccount:{a}:eddy-worker")


def test_uninstall_namespaced(cluster):
    cp, run, _ = cluster
    run("uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout", "60s")
    a, _ = WATCHED
    for obj in (("deployment", "eddy-operator", "-n", RELEASE_NS),
                ("serviceaccount", "eddy-operator", "-n", RELEASE_NS),
                ("service", "eddy-operator", "-n", RELEASE_NS),
                ("role", "eddy-operator-leader-election", "-n", RELEASE_NS),
                ("role", "eddy-operator", "-n", a), ("rolebinding", "eddy-operator", "-n", a),
                ("serviceaccount", "eddy-worker", "-n", a)):
        wait_for(lambda: gone(cp, *obj), timeout=30, what=f"{obj} deleted")
    # Helm never deletes CRDs from crds/: FlinkJobs survive an uninstall
    cp.kubectl("get", "crd", "flinkjobs.eddy.dev")
    wait_for(lambda: not can_i(cp, "create", "pods", "-n", a), timeout=20, what="access revoked")


def test_install_cluster_wide(cluster):
    cp, run, _ = cluster
    marker = uuid.uuid4().hex[:8]
    out = run("install", RELEASE, CHART, "-n", RELEASE_NS, "--create-namespace",
              "--set", f"podAnnotations.test={marker}", "--timeout", "60s").stdout
    assert "Watching:  all namespaces" in out, out
    cp.kubectl("get", "clusterrole", "eddy-operator")
    crb = cp.kubectl_json("get", "clusterrolebinding", "eddy-operator")
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "eddy-operator",
                                "namespace": RELEASE_NS}]
    for ns in WATCHED:
        assert gone(cp, "role", "eddy-operator", "-n", ns)
    wait_for(lambda: can_i(cp, "create", "pods", "-n", UNWATCHED), timeout=20,
             what="ClusterRoleBinding in effect")
    allowed = [("watch", "flinkjobs.eddy.dev", "-A"),
               ("patch", "flinkjobs.eddy.dev", "--subresource=status", "-n", UNWATCHED),
               ("create", "services", "-n", "default"), ("delete", "pods", "-n", "default")]
    denied = [("delete", "nodes"), ("create", "secrets", "-n", UNWATCHED),
              ("get", "secrets", "-A"), ("delete", "services", "-n", "default"),
              ("create", "leases.coordination.k8s.io", "-n", RELEASE_NS),  # no leader election
              ("create", "clusterroles"), ("delete", "flinkjobs.eddy.dev", "-A"),
              ("create", "deployments.apps", "-n", UNWATCHED)]
    wrong = [c for c in allowed if not can_i(cp, *c)] + [c for c in denied if can_i(cp, *c)]
    assert not wrong, f"allowed/denied the wrong way: {wrong}"
    dep = cp.kubectl_json("get", "deployment", "eddy-operator", "-n", RELEASE_NS)
    assert dep["spec"]["template"]["metadata"]["annotations"]["test"] == marker
    assert dep["spec"]["strategy"]["type"] == "Recreate"

    run("uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout", "60s")
    for obj in (("clusterrole", "eddy-operator"), ("clusterrolebinding", "eddy-operator"),
                ("deployment", "eddy-operator", "-n", RELEASE_NS)):
        wait_for(lambda: gone(cp, *obj), timeout=30, what=f"{obj} deleted")
    assert "eddy" not in run("list", "-n", RELEASE_NS, "--short").stdout.split()
