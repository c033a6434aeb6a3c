"""A real Kubernetes control plane on loopback for the e2e tests (test infrastructure only).

etcd, kube-apiserver, kube-controller-manager and kube-scheduler, from the binaries that
`e2e/tools/build-k8s.sh` builds (its bin dir: `EDDY_K8S_BIN`, else the script is run, which
reuses its cache), each started as a local process bound to 127.0.0.1 on free ports, with a
throw-away PKI made by openssl: a CA, the apiserver's serving cert, one client cert per
component (admin is in `system:masters`), and the service-account signing key. An admin
kubeconfig and a static bearer token are written into the state dir. No node runs here: pods are
scheduled but nothing runs them until a node agent registers a Node.

From Python:

    from cluster import ControlPlane
    with ControlPlane() as cp:                      # temp state dir, everything stopped at exit
        cp.kubectl("get", "ns")                     # CompletedProcess, check=True
        cp.kubeconfig                               # path, for helm / the operator

From a shell (the processes outlive the command; `down` stops exactly the pids it recorded):

    python3 e2e/harness/cluster.py up   [--dir DIR]   # prints `export KUBECONFIG=...`
    python3 e2e/harness/cluster.py down [--dir DIR] [--keep]
    python3 e2e/harness/cluster.py smoke               # up, the checks below, down

The default DIR is ${EDDY_CACHE:-~/.cache/eddy}/cluster. Logs: DIR/logs/<component>.log.
"""

import argparse
import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "e2e" / "tools" / "build-k8s.sh"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
SERVICE_CIDR = "10.0.0.0/24"      # only an allocation range; nothing is routed to it
SERVICE_IP = "10.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessDied(RuntimeError):
    """A component exited while we waited for it: reported at once, not retried."""


def wait_for(pred, timeout=30.0, interval=0.2, what="condition"):
    """Poll `pred` until it returns a truthy value (returned); AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except ProcessDied:
            raise
        except Exception as e:  # noqa: BLE001 - the last error is reported on timeout
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last})" if last else ""))
        time.sleep(interval)


def k8s_bin_dir():
    """The bin dir with kube-apiserver & co: EDDY_K8S_BIN, else what build-k8s.sh prints
    (it builds on first use, which takes tens of minutes, and returns at once when cached)."""
    env = os.environ.get("EDDY_K8S_BIN")
    if env:
        return Path(env)
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "etcd", "k8s"], check=True,
                         stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(d: Path):
    """CA, serving cert for the apiserver, client certs, service-account key pair, in `d`."""
    d.mkdir(parents=True, exist_ok=True)
    if (d / "ca.crt").exists():
        return
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "3650", "-subj", "/CN=eddy-e2e-ca", cwd=d)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)

    def leaf(name, subj, ext):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", subj, cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "3650", "-extfile",
                 f"{name}.ext", cwd=d)

    leaf("apiserver", "/CN=kube-apiserver",
         "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
         "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:" + SERVICE_IP +
         ",DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
         "DNS:kubernetes.default.svc.cluster.local\n")
    client = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" \
             "extendedKeyUsage=clientAuth\n"
    leaf("admin", "/O=system:masters/CN=eddy-e2e-admin", client)
    leaf("controller-manager", "/CN=system:kube-controller-manager", client)
    leaf("scheduler", "/CN=system:kube-scheduler", client)


def write_kubeconfig(path: Path, server, pki: Path, user):
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "eddy-e2e",
        "clusters": [{"name": "eddy-e2e", "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(pki / f"{user}.crt"),
            "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": "eddy-e2e", "context": {"cluster": "eddy-e2e", "user": user}}],
    }, indent=1))


def _die_with_parent():
    """preexec_fn: SIGKILL the child when the Python process that started it exits (it died
    without stop(): kube-apiserver ignores a SIGTERM for tens of seconds, and nothing of a
    throw-away control plane needs a graceful end)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ControlPlane:
    def __init__(self, workdir=None, bin_dir=None, detach=False, kubectl=None):
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="eddy-k8s-")
            workdir = self._tmp
        self.dir = Path(workdir)
        self.bin = Path(bin_dir) if bin_dir else k8s_bin_dir()
        self.detach = detach
        self.kubectl_bin = kubectl or (str(self.bin / "kubectl") if (self.bin / "kubectl").exists()
                                       else shutil.which("kubectl"))
        self.pki = self.dir / "pki"
        self.logs = self.dir / "logs"
        self.kubeconfig = self.dir / "admin.kubeconfig"
        self.token = base64.b32encode(os.urandom(20)).decode().lower()
        self.procs = {}
        self.ports = {}
        self.timings = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, name, args):
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")
        p = subprocess.Popen(
            [str(self.bin / name), *args], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True,
            preexec_fn=None if self.detach else _die_with_parent)
        log.close()
        self.procs[name] = p
        self._save_state()
        return p

    def _check_alive(self, name):
        p = self.procs[name]
        if p.poll() is not None:
            raise ProcessDied(f"{name} exited with {p.returncode}; last log lines:\n"
                               + self.log_tail(name))

    def log_tail(self, name, n=30):
        try:
            return "\n".join((self.logs / f"{name}.log").read_text(errors="replace")
                             .splitlines()[-n:])
        except OSError:
            return "(no log)"

    def _https_ok(self, port, path, client=None):
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt")) if client else \
            ssl._create_unverified_context()  # components' self-signed serving certs
        if client:
            ctx.load_cert_chain(str(self.pki / f"{client}.crt"), str(self.pki / f"{client}.key"))
        with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx,
                                    timeout=5) as r:
            return r.status == 200

    def start(self, timeout=120):
        t0 = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        make_pki(self.pki)
        for k in ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler"):
            self.ports[k] = free_port()
        self.server = f"https://127.0.0.1:{self.ports['apiserver']}"
        write_kubeconfig(self.kubeconfig, self.server, self.pki, "admin")
        write_kubeconfig(self.dir / "controller-manager.kubeconfig", self.server, self.pki,
                         "controller-manager")
        write_kubeconfig(self.dir / "scheduler.kubeconfig", self.server, self.pki, "scheduler")
        (self.dir / "tokens.csv").write_text(f'{self.token},eddy-e2e-admin,1000,"system:masters"\n')
        self.timings["pki"] = time.monotonic() - t0

        # --- etcd
        e, ep = self.ports["etcd"], self.ports["etcd_peer"]
        etcd_url, peer_url = f"http://127.0.0.1:{e}", f"http://127.0.0.1:{ep}"
        self._spawn("etcd", [
            "--name", "e2e", "--data-dir", str(self.dir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"e2e={peer_url}", "--initial-cluster-state", "new",
            "--snapshot-count", "10000", "--quota-backend-bytes", str(2 << 30), "--logger", "zap"])
        wait_for(lambda: self._check_alive("etcd") or
                 urllib.request.urlopen(etcd_url + "/health", timeout=2).status == 200,
                 timeout, what="etcd /health")
        self.timings["etcd"] = time.monotonic() - t0

        # --- kube-apiserver
        p = self.pki
        self._spawn("kube-apiserver", [
            "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.ports["apiserver"]),
            "--tls-cert-file", str(p / "apiserver.crt"), "--tls-private-key-file", str(p / "apiserver.key"),
            "--client-ca-file", str(p / "ca.crt"),
            "--token-auth-file", str(self.dir / "tokens.csv"),
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(p / "sa.pub"),
            "--service-account-signing-key-file", str(p / "sa.key"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--authorization-mode", "Node,RBAC",
            "--enable-admission-plugins", "NodeRestriction",
            "--allow-privileged=true",
            # the `kubernetes` Service cannot point at a loopback address: no endpoint reconciler
            "--endpoint-reconciler-type", "none",
            # PodTemplates (which nothing else here uses) are watched straight from etcd, so that
            # after an etcd compaction a watch from an old resourceVersion gets 410 Gone: the
            # client test's informer must re-list (the watch cache would answer from memory).
            "--watch-cache-sizes", "podtemplates#0",
            "--profiling=false",
            "--v", "1"])
        wait_for(lambda: self._check_alive("kube-apiserver") or
                 self._https_ok(self.ports["apiserver"], "/readyz", client="admin"),
                 timeout, what="kube-apiserver /readyz")
        self.timings["kube-apiserver"] = time.monotonic() - t0

        # --- kube-controller-manager and kube-scheduler
        cm = str(self.dir / "controller-manager.kubeconfig")
        self._spawn("kube-controller-manager", [
            "--kubeconfig", cm, "--authentication-kubeconfig", cm, "--authorization-kubeconfig", cm,
            "--bind-address", "127.0.0.1", "--secure-port", str(self.ports["controller_manager"]),
            "--service-account-private-key-file", str(p / "sa.key"),
            "--root-ca-file", str(p / "ca.crt"),
            "--cluster-signing-cert-file", str(p / "ca.crt"),
            "--cluster-signing-key-file", str(p / "ca.key"),
            "--use-service-account-credentials=true",
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--leader-elect=false", "--profiling=false", "--v", "1"])
        sc = str(self.dir / "scheduler.kubeconfig")
        self._spawn("kube-scheduler", [
            "--kubeconfig", sc, "--authentication-kubeconfig", sc, "--authorization-kubeconfig", sc,
            "--bind-address", "127.0.0.1", "--secure-port", str(self.ports["scheduler"]),
            "--leader-elect=false", "--profiling=false", "--v", "1"])
        for name, port in (("kube-controller-manager", self.ports["controller_manager"]),
                           ("kube-scheduler", self.ports["scheduler"])):
            wait_for(lambda: self._check_alive(name) or self._https_ok(port, "/healthz"),
                     timeout, what=f"{name} /healthz")
            self.timings[name] = time.monotonic() - t0
        self._save_state()
        return self

    def stop(self, keep=False):
        """SIGTERM every process this object started (newest first), SIGKILL after 15 s."""
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        if self._tmp and not keep:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _save_state(self):
        if not self.dir.exists():
            return
        (self.dir / "state.json").write_text(json.dumps({
            "pids": {n: p.pid for n, p in self.procs.items()},
            "ports": self.ports, "server": getattr(self, "server", None),
            "kubeconfig": str(self.kubeconfig), "token": self.token, "bin": str(self.bin),
        }, indent=1))

    # ------------------------------------------------------------------ clients
    def env(self):
        e = dict(os.environ)
        e["KUBECONFIG"] = str(self.kubeconfig)
        e["PATH"] = f"{self.bin}:{e.get('PATH', '')}"
        return e

    def kubectl(self, *args, input=None, check=True, timeout=60):
        r = subprocess.run([self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *map(str, args)],
                           input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(map(str, args))} failed ({r.returncode}):\n"
                                 f"{r.stderr}{r.stdout}")
        return r

    def kubectl_json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


class ExternalCluster(ControlPlane):
    """Any existing cluster (kind, a real one) from KUBECONFIG: the same kubectl helpers, nothing
    started or stopped. No `pki`/`token`: tests that need them skip on it."""

    def __init__(self, kubeconfig=None, kubectl=None):
        self._tmp = None
        self.dir = None
        self.procs = {}
        self.kubeconfig = Path(kubeconfig or os.environ["KUBECONFIG"])
        self.kubectl_bin = kubectl or shutil.which("kubectl")
        self.bin = Path(self.kubectl_bin).parent
        self.token = None

    def start(self, timeout=0):
        return self

    def stop(self, keep=False):
        pass


def stop_recorded(d: Path):
    """`down`: stop the pids recorded in d/state.json (each checked to be the binary we started)."""
    state = json.loads((d / "state.json").read_text())
    for name in reversed(COMPONENTS):
        pid = state["pids"].get(name)
        if not pid:
            continue
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue                                    # already gone
        if Path(exe).name != name and not exe.endswith("/etcd"):
            print(f"pid {pid} is {exe}, not {name}: left alone", file=sys.stderr)
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
        print(f"stopped {name} (pid {pid})", file=sys.stderr)


SMOKE_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.smoke.eddy.dev}
spec:
  group: smoke.eddy.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
            x-kubernetes-validations:
            - rule: "self.size <= 10"
              message: "size must be at most 10"
"""

SMOKE_NODE = {
    "apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "smoke-node", "labels": {"kubernetes.io/hostname": "smoke-node"}},
}


def smoke(cp: ControlPlane):
    """The checks the README lists; prints one line per check."""
    def ok(msg):
        print(f"ok   {msg}", flush=True)

    t0 = time.monotonic()
    v = cp.kubectl("version", "-o", "json", check=False)
    server_version = json.loads(v.stdout)["serverVersion"]["gitVersion"]
    ok(f"server version {server_version} (kubectl {json.loads(v.stdout)['clientVersion']['gitVersion']})")
    ns = cp.kubectl("get", "ns").stdout
    assert all(n in ns for n in ("default", "kube-system", "kube-public", "kube-node-lease")), ns
    ok("kubectl get ns: default, kube-system, kube-public, kube-node-lease")
    # the controller-manager's serviceaccount controller creates `default` in each namespace
    wait_for(lambda: cp.kubectl("get", "serviceaccount", "default", "-n", "default",
                                check=False).returncode == 0, 60, what="default ServiceAccount")
    ok("controller-manager: ServiceAccount default/default created")

    cp.kubectl("apply", "-f", "-", input=SMOKE_CRD)
    cp.kubectl("wait", "--for=condition=Established", "crd/widgets.smoke.eddy.dev", "--timeout=60s")
    ok("CRD widgets.smoke.eddy.dev applied and Established")
    wait_for(lambda: cp.kubectl("apply", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "smoke.eddy.dev/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 3}})).returncode == 0,
        30, what="custom resource apply (discovery of the new group)")
    got = cp.kubectl_json("get", "widgets", "w1", "-n", "default")
    assert got["spec"]["size"] == 3, got
    listed = cp.kubectl("get", "wg", "-n", "default").stdout
    assert "w1" in listed, listed
    ok("custom resource Widget default/w1 applied and read back (also by short name)")
    bad = cp.kubectl("apply", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "smoke.eddy.dev/v1", "kind": "Widget",
        "metadata": {"name": "w2", "namespace": "default"}, "spec": {"size": 11}}))
    assert bad.returncode != 0 and "size must be at most 10" in bad.stderr, bad.stderr
    ok("CEL validation rule rejects size 11")

    # scheduler: a Ready Node object (nothing behind it) and a Pod that gets bound to it
    cp.kubectl("apply", "-f", "-", input=json.dumps(SMOKE_NODE))
    cp.kubectl("patch", "node", "smoke-node", "--subresource=status", "--type=merge", "-p",
               json.dumps({"status": {
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Smoke",
                                   "lastHeartbeatTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}],
                   "capacity": {"cpu": "4", "memory": "8Gi", "pods": "10"},
                   "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}))
    cp.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "eddy-worker:smoke"}],
                 # pinned: a node agent's Node may be in the cluster too
                 "nodeSelector": {"kubernetes.io/hostname": "smoke-node"},
                 "tolerations": [{"operator": "Exists"}]}}))
    node = wait_for(lambda: cp.kubectl_json("get", "pod", "p1", "-n", "default")["spec"].get("nodeName"),
                    60, what="pod p1 scheduled")
    assert node == "smoke-node", node
    ok("scheduler bound pod default/p1 to node smoke-node")
    cp.kubectl("delete", "pod", "p1", "-n", "default", "--grace-period=0", "--force", check=False)
    cp.kubectl("delete", "node", "smoke-node")
    cp.kubectl("delete", "crd", "widgets.smoke.eddy.dev")
    ok(f"checks took {time.monotonic() - t0:.1f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["up", "down", "smoke"])
    ap.add_argument("--dir", type=Path,
                    default=Path(os.environ.get("EDDY_CACHE", Path.home() / ".cache" / "eddy")) / "cluster")
    ap.add_argument("--keep", action="store_true", help="down: keep the state dir (logs, etcd data)")
    a = ap.parse_args()
    if a.cmd == "down":
        if (a.dir / "state.json").exists():
            stop_recorded(a.dir)
        if not a.keep:
            shutil.rmtree(a.dir, ignore_errors=True)
        return
    if a.cmd == "up":
        if (a.dir / "state.json").exists():
            sys.exit(f"{a.dir}/state.json exists: `down --dir {a.dir}` first")
        cp = ControlPlane(a.dir, detach=True)
        try:
            cp.start()
        except BaseException:
            cp.stop()
            raise
        print(f"# control plane up in {cp.timings['kube-scheduler']:.1f}s; logs in {cp.logs}",
              file=sys.stderr)
        print(f"export KUBECONFIG={cp.kubeconfig}")
        return
    with ControlPlane() as cp:
        print(f"ok   control plane up in {cp.timings['kube-scheduler']:.1f}s "
              f"(etcd {cp.timings['etcd']:.1f}s, apiserver ready {cp.timings['kube-apiserver']:.1f}s)",
              flush=True)
        try:
            smoke(cp)
        except BaseException:
            for n in COMPONENTS:
                print(f"--- {n} log tail ---\n{cp.log_tail(n)}", file=sys.stderr)
            raise
    print("smoke: all checks passed")


if __name__ == "__main__":
    main()
