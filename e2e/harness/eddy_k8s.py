"""Eddy on the e2e cluster (TEST INFRASTRUCTURE): the Helm-installed operator, an S3 server,
FlinkJobs in per-test namespaces, waits, and diagnostics for failure messages.

Used by the scenarios in e2e/tests/test_e2e_*.py (through the `eddy` and `ns` fixtures of
e2e/conftest.py) and by bench/k8s_bench.py:

    from eddy_k8s import EddyK8s
    eddy = EddyK8s(control_plane, node_agent, workdir).start()   # S3 + helm install, operator Ready
    eddy.create_namespace("e2e-x")                      # + the S3 credentials Secret
    eddy.apply("e2e-x", eddy.flinkjob("job", {...job spec...}, parallelism=2))
    with eddy.watch("e2e-x", "job") as w:               # every status the API server stored
        w.wait(lambda s: s.state == "RUNNING", 60, "RUNNING")
    eddy.stop()                                         # helm uninstall, S3 stopped

Under the node agent (node_agent is not None) every "pod" is a process of this machine: pod IPs
(127.X.Y.N) are reachable from the test and output files written by workers are files here.
With EDDY_E2E_EXTERNAL=1 (node_agent None) pod ports are reached through the API server's pod
proxy, and scenarios that read local files skip unless EDDY_E2E_SHARED_DIR is shared with the
pods (see e2e/README.md, section 5).
"""

import collections
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))

from cluster import BUILD_SCRIPT, k8s_bin_dir, wait_for  # noqa: E402
from kube_rest import KubeRest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "eddy"
CRD = REPO / "crds" / "flinkjob.yaml"
RELEASE, RELEASE_NS = "eddy", "eddy-system"
OPERATOR_CONTAINER = "eddy-operator"
WORKER_CONTAINER = "eddy-worker"
FJ_API = "/apis/eddy.dev/v1alpha1"
S3_SECRET = "eddy-e2e-s3"
TAG = os.environ.get("EDDY_E2E_IMAGE_TAG", "e2e")
OPERATOR_IMAGE_REPO = os.environ.get("EDDY_E2E_OPERATOR_IMAGE", "eddy-operator")
WORKER_IMAGE = os.environ.get("EDDY_E2E_WORKER_IMAGE", f"eddy-worker:{TAG}")
SELECT_OPERATOR = "app.kubernetes.io/component=operator"


def helm_binary():
    """$EDDY_HELM, else the e2e cache's helm (build-k8s.sh builds it on first use), else PATH's."""
    if os.environ.get("EDDY_HELM"):
        return Path(os.environ["EDDY_HELM"])
    path = k8s_bin_dir() / "helm"
    if not path.exists():
        out = subprocess.run(["bash", str(BUILD_SCRIPT), "helm"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        path = Path(out.strip().splitlines()[-1]) / "helm"
    if not path.exists():
        import shutil
        found = shutil.which("helm")
        assert found, f"no helm at {path} and none on PATH"
        path = Path(found)
    return path


# ---------------------------------------------------------------------- S3
class S3Store:
    """Where checkpoints, savepoints and S3 outputs go: moto (tests/python/s3_harness.py) on
    127.0.0.1, or with EDDY_E2E_S3_ENDPOINT an existing S3-compatible server reachable from the
    test and from the pods (bucket EDDY_E2E_S3_BUCKET, keys from AWS_ACCESS_KEY_ID /
    AWS_SECRET_ACCESS_KEY)."""

    def __init__(self):
        self._server = None
        self.endpoint = os.environ.get("EDDY_E2E_S3_ENDPOINT")
        self.bucket = os.environ.get("EDDY_E2E_S3_BUCKET", "eddy-e2e")
        self.region = "us-east-1"
        self.access_key = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        self.secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")

    def start(self):
        if not self.endpoint:
            from s3_harness import S3Server
            self._server = S3Server(bucket=self.bucket).start()
            self.endpoint = self._server.endpoint
            self.access_key, self.secret_key = self._server.access_key, self._server.secret_key
        return self

    def stop(self):
        if self._server:
            self._server.stop()
            self._server = None

    def client(self):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 3}))

    def uri(self, prefix):
        return f"s3://{self.bucket}/{prefix.strip('/')}"

    def split(self, uri):
        """s3://bucket/key -> (bucket, key)."""
        assert uri.startswith("s3://"), uri
        bucket, _, key = uri[5:].partition("/")
        return bucket, key

    def keys(self, uri_prefix):
        bucket, prefix = self.split(uri_prefix)
        out = []
        for page in self.client().get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def head(self, uri):
        """The object's HeadObject answer (ClientError when it does not exist)."""
        bucket, key = self.split(uri)
        return self.client().head_object(Bucket=bucket, Key=key)


# ---------------------------------------------------------------------- status watch
class Snap:
    """One stored version of a FlinkJob, as a watch delivered it."""

    def __init__(self, obj, t):
        self.t = t
        self.obj = obj
        self.deleted = False
        st = obj.get("status") or {}
        js = st.get("jobStatus") or {}
        self.status = st
        self.lifecycle = st.get("lifecycleState")
        self.state = js.get("state")
        self.job_id = js.get("jobId")
        self.restarts = js.get("restarts", 0)
        self.task_managers = st.get("taskManagers")
        self.savepoint_info = js.get("savepointInfo") or {}

    def condition(self, ctype="Ready"):
        for c in self.status.get("conditions") or []:
            if c.get("type") == ctype:
                return c
        return None

    def key(self):
        return (self.lifecycle, self.state, self.job_id, self.restarts, self.task_managers,
                self.deleted)

    def __repr__(self):
        return (f"<{self.lifecycle} {self.state} job={self.job_id} restarts={self.restarts} "
                f"tm={self.task_managers}{' DELETED' if self.deleted else ''}>")


class StatusWatch:
    """Records every version of one FlinkJob (list + watch in a background thread), so that
    short-lived states (UPGRADING for half a second) are seen, and the time each appeared.
    Use as a context manager; `history` holds the Snaps whose key fields changed."""

    def __init__(self, kubeconfig, ns, name):
        self.api = KubeRest.from_kubeconfig(kubeconfig)
        self.ns, self.name = ns, name
        self.history = []
        self.cv = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{ns}/{name}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop.set()
        self.api.close_watches()
        self._thread.join(timeout=10)

    def _record(self, obj, deleted=False):
        s = Snap(obj, time.monotonic())
        s.deleted = deleted
        with self.cv:
            if not self.history or self.history[-1].key() != s.key() or \
                    self.history[-1].status != s.status:
                self.history.append(s)
                self.cv.notify_all()

    def _run(self):
        path = f"{FJ_API}/namespaces/{self.ns}/flinkjobs"
        sel = {"fieldSelector": f"metadata.name={self.name}"}
        rv = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    lst = self.api.get(path, sel)
                    rv = lst["metadata"]["resourceVersion"]
                    for item in lst.get("items", []):
                        self._record(item)
                for ev in self.api.watch(path, dict(sel, resourceVersion=rv,
                                                    allowWatchBookmarks="true",
                                                    timeoutSeconds="60"), timeout=90):
                    if ev["type"] == "ERROR":
                        rv = None
                        break
                    rv = ev["object"]["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self._record(ev["object"])
                    elif ev["type"] == "DELETED":
                        self._record(ev["object"], deleted=True)
            except Exception:  # noqa: BLE001 - re-list after any error
                if self._stop.is_set():
                    return
                rv = None
                self._stop.wait(0.5)

    @property
    def last(self):
        with self.cv:
            return self.history[-1] if self.history else None

    def mark(self):
        """An index into history: wait(..., since=mark) only looks at versions after it."""
        with self.cv:
            return len(self.history)

    def wait(self, pred, timeout, what, since=0):
        """The first recorded version (from index `since`) for which pred(snap) holds."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for s in self.history[since:]:
                    if pred(s):
                        return s
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"FlinkJob {self.ns}/{self.name}: timed out after {timeout}s waiting for "
                        f"{what}; versions seen: {self.history[since:][-12:]}")
                self.cv.wait(min(left, 0.5))

    def seen(self, pred, since=0):
        with self.cv:
            return [s for s in self.history[since:] if pred(s)]


# ---------------------------------------------------------------------- outputs
def running_count_job(out, count, rate, keys):
    """A keyed running count and sum over a bounded generator (one source subtask, so every
    key's records arrive in n order and the sums are deterministic) into a transactional file
    sink at `out`: rows {k, cnt, total}; expected rows: running_count_rows(count, keys)."""
    return {
        "sources": [{"name": "gen", "uid": "gen", "parallelism": 1, "generator": {
            "count": count, "rate": rate, "fields": {"k": f"'k' + (n % {keys})", "v": "n"}}}],
        "steps": [{"name": "c", "from": "gen", "keyBy": ["k"], "uid": "counts",
                   "aggregate": {"cnt": "count()", "total": "sum(v)"}}],
        "sinks": [{"name": "out", "from": "c", "uid": "sink",
                   "file": {"path": str(out), "transactional": True}}],
    }


def running_count_rows(count, keys):
    """The rows of a keyed running count and sum over a generator's n = 0 … count-1 keyed
    "k{n % keys}": (key, count so far, sum of n so far), in n order."""
    cnt, total, rows = collections.Counter(), collections.Counter(), []
    for n in range(count):
        k = f"k{n % keys}"
        cnt[k] += 1
        total[k] += n
        rows.append((k, cnt[k], total[k]))
    return rows


def read_rows(path):
    """JSON rows of a file sink: a file (plain sink), or a directory of committed part files
    (transactional sink; hidden/staged files are skipped). Only complete lines count: a
    concurrent writer may be in the middle of one."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(
        f for f in p.glob("*") if f.is_file() and not f.name.startswith(".")) if p.is_dir() else []
    rows = []
    for f in files:
        try:
            text = f.read_text()
        except FileNotFoundError:
            continue
        for line in text.splitlines(keepends=True):
            if line.endswith("\n") and line.strip():
                rows.append(json.loads(line))
    return rows


def counts_by_key(rows, key="k", count="cnt"):
    """key -> list of the `count` values written for it, in file order."""
    out = {}
    for r in rows:
        out.setdefault(r[key], []).append(r[count])
    return out


def assert_counts_continue(rows, key="k", count="cnt", exactly_once=True, what=""):
    """A keyed running count that survived restarts: for every key the values written are
    1..max with none missing; with `exactly_once` none repeated (stop-with-savepoint), else
    repeats are allowed (a replay after a checkpoint restore), but a count never restarts at 1."""
    by_key = counts_by_key(rows, key, count)
    assert by_key, f"{what}: no output rows"
    problems = []
    for k, vals in sorted(by_key.items()):
        top = max(vals)
        missing = sorted(set(range(1, top + 1)) - set(vals))
        if missing:
            problems.append(f"{k}: {len(missing)} counts missing, e.g. {missing[:5]}")
        if vals.count(1) > 1:
            problems.append(f"{k}: the count restarted at 1 ({vals.count(1)} times)")
        if exactly_once and len(vals) != len(set(vals)):
            dup = sorted({v for v in vals if vals.count(v) > 1})
            problems.append(f"{k}: {len(vals) - len(set(vals))} counts written twice, "
                            f"e.g. {dup[:5]}")
    assert not problems, f"{what}: " + "; ".join(problems)
    return {k: max(v) for k, v in by_key.items()}


# ---------------------------------------------------------------------- the installation
class EddyK8s:
    """The chart installed into RELEASE_NS, the S3 store, and FlinkJob helpers.

    `cp`: cluster.ControlPlane (or ExternalCluster); `agent`: the NodeAgent, None on a real
    cluster; `workdir`: for helm's homes and outputs. Not thread-safe (one test at a time)."""

    def __init__(self, cp, agent, workdir):
        self.cp = cp
        self.agent = agent
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.s3 = S3Store()
        self.helm_bin = helm_binary()
        self.values = []            # the --set list of the current install
        self.namespaces = []        # created by the running test (for diagnostics)
        self.external = agent is None
        self.shared_dir = os.environ.get("EDDY_E2E_SHARED_DIR")

    # -- lifecycle
    def start(self, timeout=120):
        self.s3.start()
        self._wait_release_namespace_free(timeout)
        self.install(timeout=timeout)
        return self

    def stop(self):
        try:
            self.helm("uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout", "60s",
                      check=False)
            self.cp.kubectl("delete", "ns", RELEASE_NS, "--wait=false", check=False)
        finally:
            self.s3.stop()

    def _wait_release_namespace_free(self, timeout):
        """Another test (test_helm.py) may have just deleted RELEASE_NS: wait until it is gone."""
        def free():
            r = self.cp.kubectl("get", "ns", RELEASE_NS, "-o", "json", check=False)
            return r.returncode != 0 or json.loads(r.stdout)["status"].get("phase") != "Terminating"
        wait_for(free, timeout, 0.5, what=f"namespace {RELEASE_NS} (terminating) to be gone")

    # -- helm
    def helm(self, *args, check=True, timeout=180):
        home = self.workdir / "helm-home"
        env = self.cp.env()
        env.update(HELM_CACHE_HOME=str(home / "cache"), HELM_CONFIG_HOME=str(home / "config"),
                   HELM_DATA_HOME=str(home / "data"))
        r = subprocess.run([str(self.helm_bin), *map(str, args), "--kubeconfig",
                            str(self.cp.kubeconfig)], env=env, capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, f"helm {' '.join(map(str, args))}:\n{r.stderr}{r.stdout}"
        return r

    def base_values(self):
        """The values every install of the scenarios uses: images named as the node agent maps
        them (or as EDDY_E2E_*_IMAGE say), the S3 endpoint and a credentials Secret, fast
        readiness probes, and under the node agent bindPodIP (all pods share one host)."""
        v = ["image.repository=" + OPERATOR_IMAGE_REPO, "image.tag=" + TAG,
             "worker.image=" + WORKER_IMAGE,
             "s3.endpoint=" + self.s3.endpoint, "s3.region=" + self.s3.region,
             "s3.credentials.create=true", "s3.credentials.accessKeyId=" + self.s3.access_key,
             "s3.credentials.secretAccessKey=" + self.s3.secret_key,
             "readinessProbe.initialDelaySeconds=0", "readinessProbe.periodSeconds=1",
             "readinessProbe.failureThreshold=1",
             f"bindPodIP={'false' if self.external else 'true'}"]
        return v

    def install(self, *extra, replicas=1, timeout=120, wait=True):
        """`helm upgrade --install` with base_values() + extra (KEY=VALUE strings), then (with
        `wait`) waits until `replicas` operator pods run and one of them is Ready. Every value
        not given is reset to the chart's default (no --reuse-values)."""
        values = self.base_values() + [f"replicas={replicas}"] + list(extra)
        args = ["upgrade", "--install", RELEASE, CHART, "-n", RELEASE_NS, "--create-namespace",
                "--reset-values", "--timeout", f"{timeout}s"]
        for v in values:
            args += ["--set", v]
        self.helm(*args, timeout=timeout + 30)
        self.values = values
        self.cp.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        "crd/flinkjobs.eddy.dev")
        if not wait:
            return
        if replicas:
            self.wait_operator(replicas, timeout)
        else:
            wait_for(lambda: not self.operator_pods(all_pods=True), timeout, 0.3,
                     what="operator pods gone")

    def operator_pods(self, all_pods=False):
        """Operator pods (newest first); without all_pods only Running ones not being deleted."""
        pods = self.cp.kubectl_json("get", "pods", "-n", RELEASE_NS, "-l", SELECT_OPERATOR)["items"]
        if not all_pods:
            pods = [p for p in pods if p["status"].get("phase") == "Running"
                    and "deletionTimestamp" not in p["metadata"]]
        return sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)

    def wait_operator(self, replicas=1, timeout=120):
        """Until exactly `replicas` operator pods of the current ReplicaSet run and are Ready,
        with leader election one of them labelled eddy.dev/leader=true; returns the leader."""
        def ready_pod():
            pods = self.operator_pods(all_pods=True)
            hashes = {p["metadata"]["labels"].get("pod-template-hash") for p in pods}
            running = self.operator_pods()
            if len(hashes) != 1 or len(running) != replicas or len(pods) != replicas:
                return None
            ready = [p for p in running if is_ready(p)]
            if replicas == 1:
                return ready[0] if ready else None
            # leader election: every healthy replica is Ready; the leader labels its pod
            leaders = [p for p in ready
                       if p["metadata"].get("labels", {}).get("eddy.dev/leader") == "true"]
            return leaders[0] if len(leaders) == 1 and len(ready) == replicas else None
        try:
            return wait_for(ready_pod, timeout, 0.3,
                            what=f"{replicas} operator pod(s) Ready, one of them the leader")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diagnostics(namespaces=[])}") from None

    def operator_pod(self):
        """The Ready operator pod (the leader)."""
        return self.wait_operator(len(self.operator_pods()) or 1, timeout=60)

    # -- reaching pods
    def pod_http(self, pod, port, path, timeout=5):
        """GET http://<pod>:<port><path> -> (status, body). Under the node agent directly at
        the pod IP; on a real cluster through the API server's pod proxy."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if not self.external:
            url = f"http://{pod['status']['podIP']}:{port}{path}"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    return r.status, r.read().decode(errors="replace")
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(errors="replace")
        r = self.cp.kubectl("get", "--raw",
                            f"/api/v1/namespaces/{ns}/pods/{name}:{port}/proxy{path}", check=False)
        if r.returncode == 0:
            return 200, r.stdout
        code = 503 if "503" in r.stderr or "ServiceUnavailable" in r.stderr else 500
        return code, r.stderr

    def rest(self, path):
        """The leader operator's REST API (Flink's paths, port 8081): the JSON answer."""
        status, body = self.pod_http(self.operator_pod(), 8081, path)
        assert status == 200, f"GET {path}: {status} {body}"
        return json.loads(body)

    # -- namespaces and FlinkJobs
    def create_namespace(self, name):
        """A namespace for one test, with the S3 credentials Secret FlinkJobs reference."""
        self.cp.kubectl("create", "ns", name)
        self.namespaces.append(name)
        self.cp.kubectl("create", "secret", "generic", S3_SECRET, "-n", name,
                        f"--from-literal=AWS_ACCESS_KEY_ID={self.s3.access_key}",
                        f"--from-literal=AWS_SECRET_ACCESS_KEY={self.s3.secret_key}")
        # pods are refused until the controller-manager has made the namespace's default SA
        wait_for(lambda: self.cp.kubectl("get", "sa", "default", "-n", name,
                                         check=False).returncode == 0,
                 60, 0.2, what=f"ServiceAccount {name}/default")
        return name

    def delete_namespace(self, name, timeout=60):
        """FlinkJobs first (the operator stops their jobs and releases its finalizer), then the
        namespace, without waiting for it."""
        self.cp.kubectl("delete", "flinkjobs", "--all", "-n", name, "--wait=true",
                        f"--timeout={timeout}s", check=False, timeout=timeout + 10)
        self.cp.kubectl("delete", "ns", name, "--wait=false", check=False)

    def flinkjob(self, name, job, **spec):
        """A FlinkJob document: `job` is spec.job (its name defaults to `name`), `spec` the other
        spec fields. The worker image and S3 settings (endpoint, the test namespace's Secret)
        are filled in; under EDDY_E2E_SHARED_DIR the shared dir is mounted into the workers."""
        job = dict(job)
        job.setdefault("name", name)
        s = {"image": WORKER_IMAGE,
             "s3": {"endpoint": self.s3.endpoint, "credentialsSecret": {"name": S3_SECRET}}}
        s.update(spec)
        s["job"] = job
        if self.external and self.shared_dir:
            d = self.shared_dir
            s.setdefault("taskManager", {})["podTemplate"] = {"spec": {
                "volumes": [{"name": "e2e-shared", "hostPath": {"path": d}}],
                "containers": [{"name": WORKER_CONTAINER,
                                "volumeMounts": [{"name": "e2e-shared", "mountPath": d}]}]}}
        return {"apiVersion": "eddy.dev/v1alpha1", "kind": "FlinkJob",
                "metadata": {"name": name}, "spec": s}

    def output_dir(self, tmp_path):
        """A directory the worker pods write and this test reads: pytest's tmp_path under the
        node agent, EDDY_E2E_SHARED_DIR on a real cluster (else the test is skipped)."""
        if not self.external:
            return Path(tmp_path)
        import pytest
        if not self.shared_dir:
            pytest.skip("reads worker output files: needs the node agent or EDDY_E2E_SHARED_DIR")
        d = Path(self.shared_dir) / uuid.uuid4().hex[:10]
        d.mkdir(parents=True)
        return d

    def apply(self, ns, doc, check=True):
        return self.cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc), check=check)

    def get(self, ns, name):
        return self.cp.kubectl_json("get", "flinkjob", name, "-n", ns)

    @property
    def api(self):
        """A REST client of the API server (faster than kubectl where timing matters)."""
        if getattr(self, "_api", None) is None:
            self._api = KubeRest.from_kubeconfig(self.cp.kubeconfig)
        return self._api

    def get_fast(self, ns, name):
        return self.api.get(f"{FJ_API}/namespaces/{ns}/flinkjobs/{name}")

    def patch(self, ns, name, spec):
        self.cp.kubectl("patch", "flinkjob", name, "-n", ns, "--type=merge",
                        "-p", json.dumps({"spec": spec}))

    def watch(self, ns, name):
        return StatusWatch(self.cp.kubeconfig, ns, name)

    def events(self, ns, uid=None, reason=None):
        """Events of FlinkJobs in ns (of the one with `uid`), oldest first."""
        items = self.cp.kubectl_json("get", "events", "-n", ns)["items"]
        out = [e for e in items if e["involvedObject"].get("kind") == "FlinkJob"
               and (uid is None or e["involvedObject"].get("uid") == uid)
               and (reason is None or e["reason"] == reason)]
        return sorted(out, key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or "",
                                          e["metadata"]["creationTimestamp"]))

    def wait_event(self, ns, uid, reason, pred=lambda e: True, timeout=30):
        return wait_for(lambda: [e for e in self.events(ns, uid, reason) if pred(e)], timeout,
                        0.3, what=f"Event {reason} in {ns}")

    def worker_pods(self, ns, name, all_pods=False):
        pods = self.cp.kubectl_json("get", "pods", "-n", ns, "-l", f"eddy.dev/job={name}")["items"]
        if not all_pods:
            pods = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
        return pods

    def kill_operator(self, sig=9):
        """SIGKILL (or `sig`) the leader operator's process through the node agent; returns the
        pod. The agent restarts the container (restartPolicy Always)."""
        assert self.agent is not None, "needs the node agent"
        pod = self.operator_pod()
        pids = self.agent.kill_pod_process(RELEASE_NS, pod["metadata"]["name"], sig,
                                           container=OPERATOR_CONTAINER)
        assert pids, f"no process of operator pod {pod['metadata']['name']}"
        return pod

    # -- diagnostics
    def operator_logs(self, tail=60):
        if self.agent is None:
            out = []
            for p in self.operator_pods(all_pods=True):
                r = self.cp.kubectl("logs", "-n", RELEASE_NS, p["metadata"]["name"],
                                    f"--tail={tail}", check=False)
                out.append(f"--- {p['metadata']['name']}\n{r.stdout}{r.stderr}")
            return "\n".join(out)
        out = []
        dirs = self.agent.workdir.glob(f"{RELEASE_NS}_*")
        for d in sorted(dirs, key=lambda d: d.stat().st_mtime):
            f = d / f"{OPERATOR_CONTAINER}.log"
            if f.exists():
                lines = f.read_text(errors="replace").splitlines()[-tail:]
                out.append(f"--- {d.name}\n" + "\n".join(lines))
        return "\n".join(out[-3:])

    def worker_logs(self, ns, tail=25):
        if self.agent is None:
            return ""
        out = []
        for d in sorted(self.agent.workdir.glob(f"{ns}_*"), key=lambda d: d.stat().st_mtime):
            f = d / f"{WORKER_CONTAINER}.log"
            if f.exists():
                lines = f.read_text(errors="replace").splitlines()[-tail:]
                out.append(f"--- {d.name}\n" + "\n".join(lines))
        return "\n".join(out[-6:])

    def diagnostics(self, namespaces=None):
        """Everything useful after a failure: FlinkJob statuses, pods and Events of the test's
        namespaces, the operator's and workers' logs, the node agent's log."""
        parts = []
        for ns in (self.namespaces if namespaces is None else namespaces):
            for args in (("get", "flinkjobs", "-n", ns, "-o", "yaml"),
                         ("get", "pods", "-n", ns, "-o", "wide"),
                         ("get", "events", "-n", ns, "--sort-by=.lastTimestamp")):
                r = self.cp.kubectl(*args, check=False)
                parts.append(f"=== kubectl {' '.join(args)}\n{r.stdout}{r.stderr}")
            parts.append(f"=== worker logs ({ns})\n{self.worker_logs(ns)}")
        r = self.cp.kubectl("get", "pods", "-n", RELEASE_NS, "-o", "wide", check=False)
        parts.append(f"=== operator pods\n{r.stdout}{r.stderr}")
        parts.append(f"=== operator logs\n{self.operator_logs()}")
        if self.agent is not None:
            parts.append(f"=== node agent log\n{self.agent.log_tail(20)}")
        return "\n".join(parts)


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions") or [])


def is_running(pod):
    return pod["status"].get("phase") == "Running" and "deletionTimestamp" not in pod["metadata"]


def generated(count, fields):
    """The records of a generator source, computed here: fields maps a name to a Python
    function of n (mirroring the job's expressions)."""
    return [{f: fn(n) for f, fn in fields.items()} for n in range(count)]
