"""The node agent (test infrastructure, harness/node_agent.py) against the real control plane:
its Node is Ready and untainted and keeps its Lease, and the pods the scheduler binds to it run as
local processes with the status, env, volumes, service-account token, probes, restarts and
deletion behaviour the e2e scenarios rely on."""

import json
import os
import signal
import ssl
import time
import urllib.request
from datetime import datetime, timezone

import pytest

from cluster import wait_for

NS = "node-agent-test"


@pytest.fixture(scope="module")
def env(control_plane, node_agent):
    if node_agent is None:
        pytest.skip("external cluster: the node agent is the harness's kubelet stand-in")
    cp = control_plane
    if cp.kubectl("get", "ns", NS, check=False).returncode != 0:
        cp.kubectl("create", "ns", NS)
    # pods are rejected until the controller-manager has made the namespace's `default` SA
    wait_for(lambda: cp.kubectl("get", "sa", "default", "-n", NS, check=False).returncode == 0,
             60, what=f"ServiceAccount {NS}/default")
    yield cp, node_agent
    cp.kubectl("delete", "ns", NS, "--wait=false", check=False)


def pod_json(cp, name):
    return cp.kubectl_json("get", "pod", name, "-n", NS)


def apply(cp, doc):
    cp.kubectl("apply", "-n", NS, "-f", "-", input=json.dumps(doc))


def make_pod(cp, name, containers, **spec):
    apply(cp, {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "labels": {"app": name}},
               "spec": {"containers": containers, "terminationGracePeriodSeconds": 5, **spec}})


def wait_pod(env, name, pred, what, timeout=30):
    """Poll the pod until pred(pod) holds; on timeout the message has its status, its first
    container's log and the agent's log."""
    cp, agent = env
    try:
        return wait_for(lambda: (lambda p: p if pred(p) else None)(pod_json(cp, name)),
                        timeout, what=f"pod {name}: {what}")
    except AssertionError as e:
        st = cp.kubectl("get", "pod", name, "-n", NS, "-o", "jsonpath={.status}", check=False)
        raise AssertionError(f"{e}\nstatus: {st.stdout}{st.stderr}\n"
                             f"log: {agent.pod_log(NS, name)[-1500:]}\n"
                             f"agent log:\n{agent.log_tail(15)}") from None


def running(p):
    return p["status"].get("phase") == "Running" and all(
        "running" in c["state"] for c in p["status"].get("containerStatuses", []))


def ready(p):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in p["status"].get("conditions", []))


def cstatus(p, i=0):
    return p["status"]["containerStatuses"][i]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def parse_time(s):
    s = s.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in s else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc)


def lease_renew(cp, node):
    lease = cp.kubectl_json("get", "lease", node, "-n", "kube-node-lease")
    return parse_time(lease["spec"]["renewTime"])


LEASE_AT_START = {}


def test_node_ready_and_schedulable(env):
    cp, agent = env
    node = cp.kubectl_json("get", "node", agent.name)
    conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conds.get("Ready") == "True", node["status"]["conditions"]
    assert not node["spec"].get("taints"), node["spec"]
    assert not node["spec"].get("unschedulable")
    assert node["status"]["allocatable"]["cpu"] == "64"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == agent.name
    renew = lease_renew(cp, agent.name)
    age = (datetime.now(timezone.utc) - renew).total_seconds()
    assert age < 15, f"lease renewed {age:.0f}s ago"
    LEASE_AT_START["t"] = renew


def test_sleep_pod_runs(env):
    cp, agent = env
    make_pod(cp, "sleeper", [{"name": "main", "image": "e2e-sleep:1.0", "args": ["3600"]}])
    p = wait_pod(env, "sleeper", running, "Running")
    ip = p["status"]["podIP"]
    assert ip.startswith(agent.ips.subnet + ".") and ip not in ("127.0.0.1",), ip
    assert p["status"]["hostIP"] == "127.0.0.1"
    assert p["spec"]["nodeName"] == agent.name
    cs = cstatus(p)
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0, cs
    pids = agent.pod_processes(NS, "sleeper")
    assert len(pids) == 1 and alive(pids[0]), pids
    assert cs["containerID"] == f"eddy-e2e://{pids[0]}"
    with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"/bin/sleep", b"3600"]
    assert os.readlink(f"/proc/{pids[0]}/cwd") == str(agent.pod_dir(NS, "sleeper"))
    wait_pod(env, "sleeper", ready, "Ready")


def test_env_volumes_and_log(env):
    """fieldRef/secretKeyRef/configMap envFrom, $(VAR) expansion in env and args, a secret
    volume with items, mounts.json, the service env, and the log file."""
    cp, agent = env
    apply(cp, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
               "stringData": {"password": "s3cret", "user": "eddy"}})
    apply(cp, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
               "data": {"mode": "fast", "level": "3"}})
    make_pod(cp, "envpod", [{
        "name": "sh", "image": "registry.example:5000/tools/e2e-shell:latest",
        "command": ["sh", "-c"],
        "args": ["env | sort; echo ARG=$(POD_NAME) 'LIT=$$(POD_NAME)'; exec sleep 3600"],
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                                "key": "password"}}},
            {"name": "ADDR", "value": "$(POD_IP):8080"},
            {"name": "UNDEFINED", "value": "$(NOT_SET)"},
        ],
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
        "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds", "readOnly": True}],
    }], volumes=[{"name": "creds", "secret": {"secretName": "creds", "items": [
        {"key": "password", "path": "nested/pw"}]}}])
    p = wait_pod(env, "envpod", running, "Running")
    ip = p["status"]["podIP"]
    out = wait_for(lambda: (lambda s: s if "ARG=" in s else None)(agent.pod_log(NS, "envpod")),
                   10, what="envpod log")
    lines = set(out.splitlines())
    api_port = cp.server.rsplit(":", 1)[1]
    for want in (f"POD_IP={ip}", "POD_NAME=envpod", f"NODE={agent.name}", "APP=envpod",
                 "PASSWORD=s3cret", f"ADDR={ip}:8080", "UNDEFINED=$(NOT_SET)",
                 "CM_mode=fast", "CM_level=3", "KUBERNETES_SERVICE_HOST=127.0.0.1",
                 f"KUBERNETES_SERVICE_PORT={api_port}", "ARG=envpod LIT=$(POD_NAME)"):
        assert want in lines, f"{want!r} not in the pod's env:\n{out}"
    d = agent.pod_dir(NS, "envpod")
    mounts = json.loads((d / "mounts.json").read_text())
    creds = mounts["/etc/creds"]
    assert open(os.path.join(creds, "nested", "pw")).read() == "s3cret"
    assert not os.path.exists(os.path.join(creds, "user")), "items must limit the keys"


def waiting(reason):
    return lambda p: cstatus(p)["state"].get("waiting", {}).get("reason") == reason


def test_missing_secret_then_created(env):
    """A missing Secret holds a pod back (env: CreateContainerConfigError; volume:
    ContainerCreating) until it is created."""
    cp, agent = env
    make_pod(cp, "waits", [{"name": "main", "image": "e2e-sleep", "args": ["3600"],
                            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {
                                "name": "late", "key": "k"}}}]}])
    make_pod(cp, "waitsvol", [{"name": "main", "image": "e2e-sleep", "args": ["3600"],
                               "volumeMounts": [{"name": "v", "mountPath": "/late"}]}],
             volumes=[{"name": "v", "secret": {"secretName": "late"}}])
    p = wait_pod(env, "waits", waiting("CreateContainerConfigError"), "CreateContainerConfigError")
    assert 'secret "late" not found' in cstatus(p)["state"]["waiting"]["message"]
    assert p["status"]["phase"] == "Pending"
    assert agent.pod_processes(NS, "waits") == []
    p = wait_pod(env, "waitsvol", waiting("ContainerCreating"), "ContainerCreating")
    assert 'secret "late" not found' in cstatus(p)["state"]["waiting"].get("message", ""), p
    assert agent.pod_processes(NS, "waitsvol") == []
    apply(cp, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "late"},
               "stringData": {"k": "v"}})
    wait_pod(env, "waits", running, "Running once the secret exists")
    wait_pod(env, "waitsvol", running, "Running once the secret exists")
    late = json.loads((agent.pod_dir(NS, "waitsvol") / "mounts.json").read_text())["/late"]
    assert open(os.path.join(late, "k")).read() == "v"


def test_unmapped_and_missing_images(env):
    cp, agent = env
    agent.images.images["e2e-unbuilt"] = "/nonexistent/eddy-e2e-unbuilt"
    try:
        make_pod(cp, "noimage", [{"name": "a", "image": "no-such-image:1"},
                                 {"name": "b", "image": "e2e-unbuilt"}])
        p = wait_pod(env, "noimage", lambda p: [c["state"].get("waiting", {}).get("reason")
                                                for c in p["status"]["containerStatuses"]]
                     == ["ImageNotMapped", "ImageBinaryMissing"], "image errors")
        assert "/nonexistent/eddy-e2e-unbuilt" in cstatus(p, 1)["state"]["waiting"]["message"]
    finally:
        del agent.images.images["e2e-unbuilt"]
        cp.kubectl("delete", "pod", "noimage", "-n", NS, "--wait=false", check=False)


def test_service_account_token(env):
    """The projected kube-api-access volume: a bound token that authenticates as the pod's
    ServiceAccount, the cluster CA and the namespace; EDDY_SERVICE_ACCOUNT_DIR points at it."""
    cp, agent = env
    wait_pod(env, "envpod", running, "Running")
    out = agent.pod_log(NS, "envpod")
    sa_dir = next((line.split("=", 1)[1] for line in out.splitlines()
                   if line.startswith("EDDY_SERVICE_ACCOUNT_DIR=")), None)
    assert sa_dir, f"EDDY_SERVICE_ACCOUNT_DIR not in the env:\n{out}"
    mounts = json.loads((agent.pod_dir(NS, "envpod") / "mounts.json").read_text())
    assert mounts["/var/run/secrets/kubernetes.io/serviceaccount"] == sa_dir
    with open(os.path.join(sa_dir, "namespace")) as f:
        assert f.read() == NS
    with open(os.path.join(sa_dir, "ca.crt")) as f, open(cp.pki / "ca.crt") as g:
        assert f.read() == g.read()
    with open(os.path.join(sa_dir, "token")) as f:
        token = f.read()
    ctx = ssl.create_default_context(cafile=os.path.join(sa_dir, "ca.crt"))
    req = urllib.request.Request(
        cp.server + "/apis/authentication.k8s.io/v1/selfsubjectreviews", method="POST",
        data=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                         "kind": "SelfSubjectReview"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        info = json.loads(r.read())["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{NS}:default", info
    assert info["extra"]["authentication.kubernetes.io/pod-name"] == ["envpod"], info


def test_init_container_then_succeeded(env):
    cp, agent = env
    make_pod(cp, "job", [{"name": "main", "image": "e2e-shell",
                          "args": ["-c", "cat from-init.txt; exit 0"]}],
             initContainers=[{"name": "prep", "image": "e2e-shell",
                              "args": ["-c", "echo prepared > from-init.txt"]}],
             restartPolicy="Never")
    p = wait_pod(env, "job", lambda p: p["status"].get("phase") == "Succeeded", "Succeeded")
    init = p["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["exitCode"] == 0, init
    term = cstatus(p)["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed", term
    assert agent.pod_log(NS, "job", "main") == "prepared\n"


def test_deployment_pod_restarted_after_sigkill(env):
    cp, agent = env
    apply(cp, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dep"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "dep"}},
                        "template": {"metadata": {"labels": {"app": "dep"}}, "spec": {
                            "terminationGracePeriodSeconds": 5,
                            "containers": [{"name": "main", "image": "e2e-sleep",
                                            "args": ["3600"]}]}}}})
    name = wait_for(lambda: next((p["metadata"]["name"] for p in cp.kubectl_json(
        "get", "pods", "-n", NS, "-l", "app=dep")["items"] if running(p)), None),
        30, what="the Deployment's pod Running")
    old = agent.kill_pod_process(NS, name, signal.SIGKILL)
    assert len(old) == 1
    p = wait_pod(env, name, lambda p: cstatus(p)["restartCount"] == 1 and running(p),
                 "restarted once")
    last = cstatus(p)["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["signal"] == 9 and last["reason"] == "Error", last
    new = agent.pod_processes(NS, name)
    assert new and new != old and not alive(old[0]), (old, new)
    cp.kubectl("delete", "deployment", "dep", "-n", NS, "--wait=false")


def test_never_pod_killed_goes_failed(env):
    cp, agent = env
    make_pod(cp, "once", [{"name": "main", "image": "e2e-sleep", "args": ["3600"]}],
             restartPolicy="Never")
    wait_pod(env, "once", running, "Running")
    pids = agent.kill_pod_process(NS, "once", signal.SIGKILL)
    assert pids
    p = wait_pod(env, "once", lambda p: p["status"].get("phase") == "Failed", "Failed")
    term = cstatus(p)["state"]["terminated"]
    assert term["exitCode"] == 137 and term["reason"] == "Error", term
    assert cstatus(p)["restartCount"] == 0
    assert not ready(p)
    assert agent.pod_processes(NS, "once") == []


def test_delete_terminates_processes(env):
    cp, agent = env
    make_pod(cp, "doomed", [{"name": "main", "image": "e2e-sleep", "args": ["3600"]}])
    wait_pod(env, "doomed", running, "Running")
    pids = agent.pod_processes(NS, "doomed")
    t0 = time.monotonic()
    cp.kubectl("delete", "pod", "doomed", "-n", NS, "--timeout=20s")
    took = time.monotonic() - t0
    assert took < 5, f"kubectl delete pod took {took:.1f}s"
    assert cp.kubectl("get", "pod", "doomed", "-n", NS, check=False).returncode != 0
    wait_for(lambda: not alive(pids[0]), 5, what=f"pid {pids[0]} gone")

    # a process ignoring SIGTERM is SIGKILLed after the grace period
    make_pod(cp, "stubborn", [{"name": "main", "image": "e2e-shell",
                               "args": ["-c", "trap '' TERM; echo trapped; sleep 3600"]}],
             terminationGracePeriodSeconds=2)
    wait_pod(env, "stubborn", running, "Running")
    wait_for(lambda: "trapped" in agent.pod_log(NS, "stubborn"), 10, what="trap set")
    pids = agent.pod_processes(NS, "stubborn")
    t0 = time.monotonic()
    cp.kubectl("delete", "pod", "stubborn", "-n", NS, "--timeout=20s")
    took = time.monotonic() - t0
    assert 1.5 < took < 8, f"delete of a SIGTERM-ignoring pod took {took:.1f}s (grace 2s)"
    wait_for(lambda: not alive(pids[0]), 5, what=f"pid {pids[0]} gone")


def test_readiness_probe_flips_ready(env):
    """An HTTP server on the pod IP; the readinessProbe (named port) asks for /ready, which exists
    only while the test makes it."""
    cp, agent = env
    make_pod(cp, "web", [{
        "name": "http", "image": "e2e-python",
        "args": ["-m", "http.server", "--bind", "$(POD_IP)", "8080"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "web", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "web"},
                           "periodSeconds": 1, "failureThreshold": 1}}])
    p = wait_pod(env, "web", running, "Running")
    ip = p["status"]["podIP"]
    # the server answers (404) but the pod is not Ready
    wait_for(lambda: "404" in agent.pod_log(NS, "web"), 15, what="probe requests reach the server")
    p = pod_json(cp, "web")
    assert not ready(p) and not cstatus(p)["ready"], p["status"]
    ready_file = agent.pod_dir(NS, "web") / "ready"
    ready_file.write_text("ok")
    wait_pod(env, "web", ready, "Ready after /ready exists", timeout=10)
    with urllib.request.urlopen(f"http://{ip}:8080/ready", timeout=5) as r:
        assert r.read() == b"ok"
    ready_file.unlink()
    wait_pod(env, "web", lambda p: not ready(p), "not Ready after /ready is gone", timeout=10)


def test_liveness_probe_restarts(env):
    """An exec liveness probe (`test -f alive` in the pod dir) failing restarts the container."""
    cp, agent = env
    make_pod(cp, "live", [{
        "name": "main", "image": "e2e-shell", "args": ["-c", "touch alive; exec sleep 3600"],
        "livenessProbe": {"exec": {"command": ["test", "-f", "alive"]},
                          "periodSeconds": 1, "failureThreshold": 2}}])
    wait_pod(env, "live", running, "Running")
    time.sleep(2.5)                                  # probes pass meanwhile
    p = pod_json(cp, "live")
    assert cstatus(p)["restartCount"] == 0, cstatus(p)
    old = agent.pod_processes(NS, "live")
    (agent.pod_dir(NS, "live") / "alive").unlink()
    p = wait_pod(env, "live", lambda p: cstatus(p)["restartCount"] == 1 and running(p),
                 "restarted by the liveness probe", timeout=15)
    assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 137
    assert agent.pod_processes(NS, "live") != old


def test_node_heartbeat_keeps_node_ready(env):
    """Last: by now the agent has renewed its Lease and the node is still Ready and untainted."""
    cp, agent = env
    start = LEASE_AT_START.get("t")
    if start is None:
        pytest.skip("test_node_ready_and_schedulable did not run")
    wait_for(lambda: lease_renew(cp, agent.name) > start, 15, what="lease renewed")
    node = cp.kubectl_json("get", "node", agent.name)
    ready_cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready_cond["status"] == "True", ready_cond
    assert parse_time(ready_cond["lastHeartbeatTime"]) > start.replace(microsecond=0)
    assert not node["spec"].get("taints"), node["spec"]
