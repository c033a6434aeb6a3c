"""The e2e node agent: a kubelet stand-in that runs pods as local processes (TEST INFRASTRUCTURE).

The e2e harness (cluster.py) runs a real control plane but no kubelet and no container runtime.
This agent fills the gap for tests, and only for tests: it registers a Node, keeps it Ready
(Lease in kube-node-lease and the Ready condition's heartbeat every ~10 s), watches the pods bound
to it and runs each container as a plain process on this machine, reporting pod status the way
the kubelet does (phase, conditions, container states, restarts, probes, graceful deletion).

What it is NOT: no isolation (every container sees the host's filesystem, network and pids), no
cgroups or resource limits, no image pulls (an image name maps to a local executable), no
volume mounts (volumes are materialized into a per-pod directory; only the service-account
mount is made visible, through EDDY_SERVICE_ACCOUNT_DIR; `<pod dir>/mounts.json` lists where the
rest went), no exec/attach/logs endpoint (read `<pod dir>/<container>.log`).

    from node_agent import NodeAgent
    with NodeAgent(cp, images={"eddy-worker": "build/worker/eddy-worker"}) as agent:
        ...                                   # pods scheduled to `eddy-e2e-node` now run
        agent.pod_processes("ns", "pod")      # pids of its running containers
        agent.pod_log("ns", "pod", "main")    # what the container wrote
        agent.kill_pod_process("ns", "pod", signal.SIGKILL)

    python3 e2e/harness/node_agent.py --kubeconfig ~/.cache/eddy/cluster/admin.kubeconfig \\
        --images eddy-worker=build/worker/eddy-worker       # until SIGINT/SIGTERM

Image lookup: the image reference without digest and tag, then without its registry, then its
last path component (`reg.io:5000/org/eddy-worker:1.2` tries `reg.io:5000/org/eddy-worker`,
`org/eddy-worker`, `eddy-worker`). A mapped file that is missing leaves the container waiting
with reason ImageBinaryMissing; an unmapped image with reason ImageNotMapped.

Threads: one for the Node heartbeat, one for the pod list/watch, one per pod (it starts, probes,
restarts and stops that pod's processes and patches its status). Each container runs in its own
process group (when its main process exits, the rest of the group is killed, as a pid namespace
would); `stop()` kills the groups. If the agent dies any other way (even SIGKILL), the main
processes get PR_SET_PDEATHSIG and a small watchdog process (`Reaper`, fed the group ids over a
pipe) SIGKILLs the groups when the pipe closes, so nothing is left behind.
"""

import argparse
import base64
import ctypes
import http.client
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kube_rest import ApiError, KubeRest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_NODE = "eddy-e2e-node"
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
HOST_IP = "127.0.0.1"
HEARTBEAT_S = 10
LEASE_S = 40
MAX_GRACE_S = 30
BACKOFF_CAP_S = 10
TICK_S = 0.2
DEFAULT_POD_SUBNET = "127.0.0"
AGENT_LABEL = "eddy.dev/e2e-node-agent"
CONDITION_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
KINDS = {"secret": "Secret", "configmap": "ConfigMap"}

log = logging.getLogger("eddy.e2e.node_agent")


def eddy_build_dir():
    """Where Eddy's binaries are: $EDDY_BUILD_DIR (e.g. a snapshot of another build), else the
    repository's build/."""
    env = os.environ.get("EDDY_BUILD_DIR")
    return Path(env).resolve() if env else REPO / "build"


def default_images(build_dir=None):
    """The image map the e2e fixture and the CLI use: Eddy's binaries from the build dir
    (default: eddy_build_dir(), i.e. $EDDY_BUILD_DIR or build/; they may not be built yet: a pod
    using one then waits with ImageBinaryMissing) and a few test images backed by system tools."""
    b = Path(build_dir) if build_dir else eddy_build_dir()
    return {
        "eddy-worker": str(b / "worker" / "eddy-worker"),
        "eddy-operator": str(b / "operator" / "eddy-operator"),
        "e2e-sleep": "/bin/sleep",
        "e2e-shell": "/bin/sh",
        "e2e-python": sys.executable,
    }


# ---------------------------------------------------------------------- small helpers
def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def now_micro():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


_libc = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded before any fork (see _child_setup)
_PR_SET_PDEATHSIG = 1


def _child_setup(parent_pid):
    """preexec_fn: die with the agent. Only a prctl call: the libc handle is loaded already,
    since loading libraries in a child forked from a threaded process can deadlock."""
    def setup():
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the agent died between fork and prctl
            os._exit(1)
    return setup


# The reaper: a watchdog process reading "+pgid" / "-pgid" lines; when its stdin reaches EOF
# (the agent exited or was SIGKILLed: the kernel closes the pipe) it SIGKILLs the groups left.
_REAPER_SRC = """# eddy e2e node agent: reaper (test infrastructure)
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    n = int(line)
    (groups.add if n > 0 else groups.discard)(abs(n))
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
"""


class Reaper:
    """Kills the containers' process groups (grandchildren included) whenever the agent dies,
    even by SIGKILL. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._proc = subprocess.Popen([sys.executable, "-c", _REAPER_SRC], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, start_new_session=True)

    def _send(self, line):
        with self._lock:
            try:
                self._proc.stdin.write(f"{line}\n".encode())
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass

    def add(self, pgid):
        self._send(pgid)

    def remove(self, pgid):
        self._send(-pgid)

    def close(self):
        with self._lock:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_VAR_RE = re.compile(r"\$(\$|\(([^)]*)\))")


def expand(s, env):
    """Kubernetes' $(VAR) expansion: a defined VAR is replaced, an undefined one is left as is,
    `$$` is a literal `$` (so `$$(VAR)` stays `$(VAR)`)."""
    def sub(m):
        if m.group(1) == "$":
            return "$"
        name = m.group(2)
        return env[name] if name in env else m.group(0)
    return _VAR_RE.sub(sub, s)


def image_keys(image):
    """Lookup keys for an image reference, most specific first (see the module doc)."""
    ref = image.split("@", 1)[0]
    slash = ref.rfind("/")
    if ref.rfind(":") > slash:
        ref = ref[:ref.rfind(":")]
    keys = [ref]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        keys.append("/".join(parts[1:]))
    keys.append(parts[-1])
    return list(dict.fromkeys(keys))


class ContainerConfigError(Exception):
    """The container cannot be started yet (missing secret, image binary, ...): it stays
    waiting with `reason` and is retried."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


class VolumeError(Exception):
    """A volume cannot be materialized yet (missing secret, ...): the pod stays
    ContainerCreating and setup is retried."""


class IpPool:
    """Loopback pod IPs <subnet>.2 .. <subnet>.254, subnet 127.0.0 unless told otherwise (all of
    127/8 is local on Linux). Another subnet (e.g. 127.42.7) keeps the pods of two agents on one
    machine (two e2e sessions) from fighting over the same IP:port."""

    def __init__(self, subnet=DEFAULT_POD_SUBNET):
        parts = subnet.split(".")
        if len(parts) != 3 or parts[0] != "127" or not all(
                p.isdigit() and 0 <= int(p) <= 255 for p in parts):
            raise ValueError(f"pod subnet must look like 127.X.Y, got {subnet!r}")
        self.subnet = subnet
        self._lock = threading.Lock()
        self._owner = {}

    def alloc(self, uid, prefer=None):
        with self._lock:
            for ip, owner in self._owner.items():
                if owner == uid:
                    return ip
            cands = [f"{self.subnet}.{n}" for n in range(2, 255)]
            if prefer in cands and prefer not in self._owner:
                cands.insert(0, prefer)
            for ip in cands:
                if ip not in self._owner:
                    self._owner[ip] = uid
                    return ip
        raise RuntimeError("no free loopback pod IP (253 pods running)")

    def release(self, uid):
        with self._lock:
            for ip in [ip for ip, o in self._owner.items() if o == uid]:
                del self._owner[ip]


class ImageMap:
    def __init__(self, images):
        if isinstance(images, (str, Path)):
            images = json.loads(Path(images).read_text())
        self.images = {k: str(v) for k, v in dict(images).items()}

    def mapped(self, image):
        """The path an image maps to (existing or not), None if unmapped."""
        return next((self.images[k] for k in image_keys(image) if k in self.images), None)

    def binary(self, image):
        for k in image_keys(image):
            if k in self.images:
                path = self.images[k]
                if not os.access(path, os.X_OK):
                    raise ContainerConfigError(
                        "ImageBinaryMissing",
                        f"image {image!r} maps to {path}, which is not an executable file "
                        f"(not built yet?)")
                return path
        raise ContainerConfigError(
            "ImageNotMapped", f"image {image!r} is not mapped to an executable "
            f"(node agent images: {', '.join(sorted(self.images))})")

    @staticmethod
    def resolve_command(cmd0, binary):
        """The executable for command[0]: the image's own binary when the names match, else an
        existing absolute path, else a name on PATH; None when nothing fits."""
        if binary and os.path.basename(cmd0) == os.path.basename(binary):
            return binary
        if os.path.isabs(cmd0) and os.access(cmd0, os.X_OK):
            return cmd0
        if "/" not in cmd0:
            return shutil.which(cmd0)
        return None


# ---------------------------------------------------------------------- probes
class Probe:
    """Result tracking of one probe spec, the kubelet's way: None until decided, then flips
    after successThreshold successes / failureThreshold failures in a row."""

    def __init__(self, spec, kind):
        self.spec = spec
        self.kind = kind
        self.period = spec.get("periodSeconds", 10)
        self.initial = spec.get("initialDelaySeconds", 0)
        self.timeout = spec.get("timeoutSeconds", 1)
        self.success_threshold = spec.get("successThreshold", 1)
        self.failure_threshold = spec.get("failureThreshold", 3)
        self.reset(time.monotonic())

    def reset(self, started):
        self.next_at = started + self.initial
        self.successes = self.failures = 0
        self.result = None
        self.last_error = ""

    def due(self, now):
        return now >= self.next_at

    def record(self, ok, now, error=""):
        self.next_at = now + self.period
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.success_threshold:
                self.result = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            self.last_error = error
            if self.failures >= self.failure_threshold:
                self.result = False


class Ctr:
    """Run state of one container of a pod; owned by its PodWorker's thread."""

    def __init__(self, spec, init):
        self.spec = spec
        self.name = spec["name"]
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.proc = None
        self.started_at = None
        self.started_mono = 0.0
        self.state = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state = {}
        self.restart_count = 0
        self.next_start = 0.0
        self.backoff = 0.0
        self.done = False          # init: exited 0; app: terminated and not restarted
        self.exit_code = None
        self.ever_started = False
        self.ready = False
        self.started = False
        self.container_id = None
        self.image_id = ""
        self.env = None
        self.probes = {k: Probe(spec[k], k) for k in ("startupProbe", "livenessProbe",
                                                      "readinessProbe") if spec.get(k)}

    @property
    def running(self):
        return self.proc is not None

    def status(self):
        s = {"name": self.name, "image": self.spec.get("image", ""), "imageID": self.image_id,
             "ready": self.ready, "started": self.started, "restartCount": self.restart_count,
             "state": self.state, "lastState": self.last_state}
        if self.container_id:
            s["containerID"] = self.container_id
        return s


# ---------------------------------------------------------------------- one pod
class PodWorker:
    """Runs one pod (by uid) from first sight until it is deleted or vanishes, on its own thread
    (`thread`). The watch thread hands it new versions of the pod with `update()`; everything
    else happens on the pod's thread."""

    OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")

    def __init__(self, agent, pod):
        md = pod["metadata"]
        self.thread = threading.Thread(target=self.run, name=f"pod-{md['namespace']}/{md['name']}",
                                       daemon=True)
        self.agent = agent
        self.api = agent.api
        self.ns, self.pod_name, self.uid = md["namespace"], md["name"], md["uid"]
        self._pod = pod
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._vanished = False
        self._shutdown = False
        self.finished = threading.Event()
        spec = pod["spec"]
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.init = [Ctr(c, True) for c in spec.get("initContainers", [])]
        self.app = [Ctr(c, False) for c in spec.get("containers", [])]
        self.dir = agent.workdir / f"{self.ns}_{self.pod_name}_{self.uid}"
        self.phase = pod.get("status", {}).get("phase", "Pending")
        self.terminal = self.phase in ("Succeeded", "Failed")
        self.pod_ip = pod.get("status", {}).get("podIP")
        if spec.get("hostNetwork"):
            self.pod_ip = HOST_IP
        elif not self.terminal:
            self.pod_ip = agent.ips.alloc(self.uid, prefer=self.pod_ip)
        self.start_time = pod.get("status", {}).get("startTime") or now_iso()
        self.volumes_ready = False
        self.volume_dirs = {}
        self.tokens = []            # [path, source, obtained_mono, expiration_s]
        self.init_done = not self.init
        self.failed_init = False
        self.cond_times = {}
        self.last_status = None
        self.next_volume_try = 0.0
        self.volume_error = None
        self.terminating = False
        # a pod restored after an agent restart keeps its restart counts
        for key, ctrs in (("initContainerStatuses", self.init), ("containerStatuses", self.app)):
            for cs in pod.get("status", {}).get(key, []) or []:
                for c in ctrs:
                    if c.name == cs.get("name"):
                        c.restart_count = cs.get("restartCount", 0)

    # -- called from other threads
    def update(self, pod):
        with self._lock:
            self._pod = pod
        self._wake.set()

    def vanish(self):
        self._vanished = True
        self._wake.set()

    def shutdown(self):
        self._shutdown = True
        self._wake.set()

    def pids(self, container=None):
        return [c.proc.pid for c in self.init + self.app
                if c.proc is not None and c.proc.returncode is None
                and (container is None or c.name == container)]

    @property
    def pod(self):
        with self._lock:
            return self._pod

    # -- the thread
    def run(self):
        try:
            self._loop()
        except Exception:  # noqa: BLE001 - a bug here must not take the agent down
            log.exception("pod %s/%s: worker failed", self.ns, self.pod_name)
        finally:
            try:
                self._kill_all(grace=0)
            except Exception:  # noqa: BLE001
                log.exception("pod %s/%s: cleanup failed", self.ns, self.pod_name)
            self.agent.ips.release(self.uid)
            self.finished.set()
            self.agent._worker_done(self)

    def _loop(self):
        if not self.terminal:
            self.dir.mkdir(parents=True, exist_ok=True)
            log.info("pod %s/%s (%s): ip %s, dir %s", self.ns, self.pod_name, self.uid,
                     self.pod_ip, self.dir)
        while True:
            if self._vanished:
                log.info("pod %s/%s vanished: killing its processes", self.ns, self.pod_name)
                self._kill_all(grace=0)
                return
            if self._shutdown:
                self._kill_all(grace=3)
                return
            pod = self.pod
            if pod["metadata"].get("deletionTimestamp"):
                self._terminate_pod(pod)
                return
            if not self.terminal:
                self._step(pod)
                self._sync_status(pod)
            self._wake.wait(TICK_S if not self.terminal else 5)
            self._wake.clear()

    def _step(self, pod):
        now = time.monotonic()
        if not self.volumes_ready:
            if now < self.next_volume_try:
                return
            try:
                self._setup_volumes(pod)
            except VolumeError as e:
                msg = f"MountVolume.SetUp failed: {e}"
                for c in self.init + self.app:
                    c.state = {"waiting": {"reason": "ContainerCreating", "message": msg}}
                self.next_volume_try = now + 1
                if str(e) != self.volume_error:
                    log.warning("pod %s/%s: %s (retrying)", self.ns, self.pod_name, e)
                    self.volume_error = str(e)
                return
            self.volumes_ready = True
            waiting = {"waiting": {"reason": "PodInitializing"}}
            for c in self.init + (self.app if self.init else []):
                c.state = waiting
        self._refresh_tokens(pod)
        for c in self.init + self.app:
            self._reap(c, pod)
        if self.failed_init:
            self._go_terminal("Failed")
            return
        if not self.init_done:
            done = True
            for c in self.init:
                if c.done:
                    continue
                if not c.running and now >= c.next_start:
                    self._start(c, pod)
                if c.sidecar and c.started:
                    continue
                done = False
                break
            self.init_done = done
        else:
            for c in self.init:       # sidecars keep being restarted
                if c.sidecar and not c.running and not c.done and now >= c.next_start:
                    self._start(c, pod)
        if self.init_done:
            for c in self.app:
                if not c.running and not c.done and now >= c.next_start:
                    self._start(c, pod)
        self._probe(pod)
        phase = self._phase()
        if phase in ("Succeeded", "Failed"):
            self._go_terminal(phase)
        else:
            self.phase = phase

    def _phase(self):
        if self.failed_init:
            return "Failed"
        if not self.init_done:
            return "Pending"
        if self.app and all(c.done for c in self.app):
            return "Succeeded" if all(c.exit_code == 0 for c in self.app) else "Failed"
        return "Running" if all(c.ever_started for c in self.app) else "Pending"

    def _go_terminal(self, phase):
        self.terminating = True
        self._kill_all(grace=5)
        self.phase = phase
        self.terminal = True
        for c in self.init + self.app:
            c.ready = False
        self.agent.ips.release(self.uid)
        log.info("pod %s/%s: %s", self.ns, self.pod_name, phase)
        self._sync_status(self.pod)

    # -- processes
    def _start(self, c, pod):
        now = time.monotonic()
        try:
            binary = self.agent.images.binary(c.spec.get("image", ""))
            env = self._container_env(c, pod)
            argv = self._argv(c, binary, env)
        except ContainerConfigError as e:
            if c.state.get("waiting", {}).get("message") != e.message:
                log.warning("pod %s/%s container %s: %s: %s", self.ns, self.pod_name, c.name,
                            e.reason, e.message)
            c.state = {"waiting": {"reason": e.reason, "message": e.message}}
            c.next_start = now + 1
            return
        c.env = env
        c.image_id = f"eddy-e2e://{binary}"
        logf = open(self.dir / f"{c.name}.log", "ab")
        started = now_iso()
        try:
            if argv is None:
                raise FileNotFoundError(c.spec.get("command", ["?"])[0])
            c.proc = subprocess.Popen(
                argv, env=env, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_child_setup(os.getpid()))
        except OSError as e:
            logf.close()
            c.started_at, c.started_mono = started, now
            msg = f"failed to start {argv[0] if argv else c.spec.get('command')}: {e}"
            log.warning("pod %s/%s container %s: %s", self.ns, self.pod_name, c.name, msg)
            self._exited(c, 128, None, pod, reason="StartError", message=msg)
            return
        logf.close()
        self.agent.reaper.add(c.proc.pid)
        c.started_at, c.started_mono = started, now
        c.ever_started = True
        c.container_id = f"eddy-e2e://{c.proc.pid}"
        c.state = {"running": {"startedAt": started}}
        for p in c.probes.values():
            p.reset(now)
        c.started = "startupProbe" not in c.probes
        c.ready = False
        log.info("pod %s/%s container %s: started pid %d: %s", self.ns, self.pod_name, c.name,
                 c.proc.pid, " ".join(argv))

    def _argv(self, c, binary, env):
        cmd = [expand(a, env) for a in c.spec.get("command") or []]
        args = [expand(a, env) for a in c.spec.get("args") or []]
        if not cmd:
            return [binary] + args
        exe = ImageMap.resolve_command(cmd[0], binary)
        if exe is None:
            return None
        return [exe] + cmd[1:] + args

    def _reap(self, c, pod):
        if c.proc is None:
            return
        rc = c.proc.poll()
        if rc is None:
            return
        pid = c.proc.pid
        try:                       # the container's other processes go with it (like a pid ns)
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        self.agent.reaper.remove(pid)
        c.proc = None
        if rc < 0:
            self._exited(c, 128 - rc, -rc, pod)
        else:
            self._exited(c, rc, None, pod)

    def _exited(self, c, code, sig, pod, reason=None, message=None):
        finished = now_iso()
        term = {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error"),
                "startedAt": c.started_at, "finishedAt": finished}
        if sig:
            term["signal"] = sig
        if c.container_id:
            term["containerID"] = c.container_id
        if message:
            term["message"] = message
        elif code != 0 and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            term["message"] = self._tail(c.name, 2048)
        log.info("pod %s/%s container %s exited: code %s%s", self.ns, self.pod_name, c.name,
                 code, f" (signal {sig})" if sig else "")
        c.ready = c.started = False
        c.exit_code = code
        if c.init and not c.sidecar:
            restart = code != 0 and self.restart_policy != "Never"
            if code != 0 and not restart:
                self.failed_init = True
        elif c.sidecar:
            restart = True
        else:
            restart = self.restart_policy == "Always" or (
                self.restart_policy == "OnFailure" and code != 0)
        if self.terminating or not restart:
            c.state = {"terminated": term}
            c.done = True
            if c.init and code == 0:
                c.ready = True
            return
        ran = time.monotonic() - c.started_mono
        c.backoff = 1.0 if ran > 60 or c.backoff == 0 else min(c.backoff * 2, BACKOFF_CAP_S)
        c.next_start = time.monotonic() + c.backoff
        c.restart_count += 1
        c.last_state = {"terminated": term}
        c.state = {"waiting": {"reason": "CrashLoopBackOff", "message":
                               f"back-off {c.backoff:g}s restarting failed container={c.name} "
                               f"pod={self.pod_name}_{self.ns}({self.uid})"}}

    def _signal(self, c, sig):
        if c.proc is not None and c.proc.returncode is None:
            try:
                os.killpg(c.proc.pid, sig)
            except OSError:
                pass

    def _kill_all(self, grace):
        """SIGTERM every running container's process group, SIGKILL after `grace` seconds."""
        self.terminating = True
        running = [c for c in self.init + self.app if c.running]
        if not running:
            return
        for c in running:
            self._signal(c, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(c.proc.poll() is None for c in running):
            if self._vanished:
                break
            time.sleep(0.05)
        for c in running:
            if c.proc is not None and c.proc.poll() is None:
                self._signal(c, signal.SIGKILL)
                c.proc.wait()
            self._reap(c, self.pod)

    def _terminate_pod(self, pod):
        """Graceful deletion: SIGTERM, wait (deletionGracePeriodSeconds, at most 30 s), SIGKILL,
        report the final status, then delete the object for good (grace 0, uid precondition) —
        without that last step the pod would stay Terminating forever."""
        md = pod["metadata"]
        if not self.terminal:
            grace = md.get("deletionGracePeriodSeconds")
            if grace is None:
                grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
            grace = min(grace, MAX_GRACE_S)
            log.info("pod %s/%s: deleting, grace %ss", self.ns, self.pod_name, grace)
            self._kill_all(grace=grace)
            exits = [c.exit_code for c in self.app]
            self.phase = "Succeeded" if exits and all(x == 0 for x in exits) else "Failed"
            self.terminal = True
            for c in self.init + self.app:
                c.ready = False
            try:
                self._sync_status(pod)
            except Exception as e:  # noqa: BLE001 - best effort, the object goes away next
                log.info("pod %s/%s: final status not written: %s", self.ns, self.pod_name, e)
        for attempt in range(10):      # a transient failure must not leave it Terminating
            try:
                self.api.delete(f"/api/v1/namespaces/{self.ns}/pods/{self.pod_name}", {
                    "kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                    "preconditions": {"uid": self.uid}})
                log.info("pod %s/%s: deleted", self.ns, self.pod_name)
                return
            except ApiError as e:
                if e.status in (404, 409):   # gone already / a new pod of the same name
                    return
                err = e
            except OSError as e:
                err = e
            log.warning("pod %s/%s: delete failed (attempt %d): %s", self.ns, self.pod_name,
                        attempt + 1, err)
            if self._vanished or self._shutdown:
                return
            time.sleep(1)

    # -- probes
    def _probe(self, pod):
        now = time.monotonic()
        for c in self.init + self.app:
            if not c.running:
                continue
            if c.init and not c.sidecar:
                continue
            sp = c.probes.get("startupProbe")
            if sp and not c.started:
                if sp.due(now):
                    ok, err = self._run_probe(c, sp)
                    sp.record(ok, time.monotonic(), err)
                    if sp.result:
                        c.started = True
                    elif sp.result is False:
                        self._probe_kill(c, sp)
                        continue
                if not c.started:
                    continue
            lp = c.probes.get("livenessProbe")
            if lp and lp.due(now):
                ok, err = self._run_probe(c, lp)
                lp.record(ok, time.monotonic(), err)
                if lp.result is False:
                    self._probe_kill(c, lp)
                    continue
            rp = c.probes.get("readinessProbe")
            if rp:
                if rp.due(now):
                    ok, err = self._run_probe(c, rp)
                    rp.record(ok, time.monotonic(), err)
                    if not ok:
                        log.debug("pod %s/%s container %s: readiness probe failed: %s",
                                  self.ns, self.pod_name, c.name, err)
                c.ready = bool(rp.result)
            else:
                c.ready = True

    def _probe_kill(self, c, p):
        log.info("pod %s/%s container %s: %s failed %d times (%s): killing", self.ns,
                 self.pod_name, c.name, p.kind, p.failures, p.last_error)
        self._signal(c, signal.SIGKILL)
        c.proc.wait()
        self._reap(c, self.pod)

    def _run_probe(self, c, p):
        """(ok, error text) of one probe attempt."""
        spec = p.spec
        try:
            if "httpGet" in spec:
                h = spec["httpGet"]
                host = h.get("host") or self.pod_ip
                port = self._port(c, h.get("port"))
                if h.get("scheme", "HTTP").upper() == "HTTPS":
                    conn = http.client.HTTPSConnection(host, port, timeout=p.timeout,
                                                       context=ssl._create_unverified_context())
                else:
                    conn = http.client.HTTPConnection(host, port, timeout=p.timeout)
                try:
                    conn.request("GET", h.get("path", "/"), headers={
                        x["name"]: x["value"] for x in h.get("httpHeaders", [])})
                    r = conn.getresponse()
                    r.read()
                finally:
                    conn.close()
                return 200 <= r.status < 400, f"HTTP {r.status}"
            if "tcpSocket" in spec:
                t = spec["tcpSocket"]
                with socket.create_connection((t.get("host") or self.pod_ip,
                                               self._port(c, t.get("port"))), timeout=p.timeout):
                    return True, ""
            if "exec" in spec:
                cmd = list(spec["exec"].get("command", []))
                exe = cmd and ImageMap.resolve_command(
                    cmd[0], self.agent.images.mapped(c.spec.get("image", "")))
                if not exe:
                    return False, f"exec probe: {cmd[:1]} not found"
                r = subprocess.run([exe] + cmd[1:], env=c.env, cwd=self.dir,
                                   stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=p.timeout)
                return r.returncode == 0, f"exit {r.returncode}: {r.stdout[-200:]!r}"
            log.warning("pod %s/%s container %s: unsupported %s handler, treated as success",
                        self.ns, self.pod_name, c.name, p.kind)
            return True, ""
        except Exception as e:  # noqa: BLE001 - any failure is a probe failure
            return False, str(e)

    @staticmethod
    def _port(c, port):
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            return int(port)
        for cp in c.spec.get("ports", []):
            if cp.get("name") == port:
                return cp["containerPort"]
        raise ValueError(f"no containerPort named {port!r}")

    # -- status
    def _condition(self, ctype, ok, reason=None, message=None):
        status = "True" if ok else "False"
        prev = self.cond_times.get(ctype)
        if prev is None or prev[0] != status:
            self.cond_times[ctype] = (status, now_iso())
        c = {"type": ctype, "status": status, "lastProbeTime": None,
             "lastTransitionTime": self.cond_times[ctype][1]}
        if not ok and reason:
            c["reason"] = reason
        if not ok and message:
            c["message"] = message
        return c

    def _build_status(self, pod):
        unready = [c.name for c in self.app if not c.ready]
        uninit = [c.name for c in self.init if not (c.done or (c.sidecar and c.started))]
        ready_reason = "PodCompleted" if self.terminal else "ContainersNotReady"
        ready_msg = None if self.terminal else f"containers with unready status: [{' '.join(unready)}]"
        containers_ready = not unready
        gates = [g["conditionType"] for g in pod["spec"].get("readinessGates", [])]
        existing = pod.get("status", {}).get("conditions", []) or []
        gates_ok = all(any(x["type"] == g and x["status"] == "True" for x in existing)
                       for g in gates)
        owned = [
            self._condition("PodReadyToStartContainers", self.volumes_ready and not self.terminal),
            self._condition("Initialized", self.init_done, "ContainersNotInitialized",
                            f"containers with incomplete status: [{' '.join(uninit)}]"),
            self._condition("ContainersReady", containers_ready, ready_reason, ready_msg),
            self._condition("Ready", containers_ready and gates_ok, ready_reason,
                            ready_msg if not containers_ready
                            else "the status of pod readiness gate is not True"),
        ]
        conds = [x for x in existing if x.get("type") not in self.OWNED_CONDITIONS] + owned
        st = {"phase": self.phase, "conditions": conds,
              "hostIP": HOST_IP, "hostIPs": [{"ip": HOST_IP}],
              "startTime": self.start_time,
              "containerStatuses": [c.status() for c in self.app]}
        if self.pod_ip:
            st["podIP"] = self.pod_ip
            st["podIPs"] = [{"ip": self.pod_ip}]
        if self.init:
            st["initContainerStatuses"] = [c.status() for c in self.init]
        return st

    def _sync_status(self, pod):
        st = self._build_status(pod)
        if st == self.last_status:
            return
        try:
            self.api.patch(f"/api/v1/namespaces/{self.ns}/pods/{self.pod_name}/status",
                           {"metadata": {"uid": self.uid}, "status": st})
            self.last_status = st
        except ApiError as e:
            if e.status == 404:
                self.vanish()
            else:
                log.warning("pod %s/%s: status patch failed: %s", self.ns, self.pod_name, e)
        except OSError as e:
            log.warning("pod %s/%s: status patch failed: %s", self.ns, self.pod_name, e)

    def _tail(self, container, limit):
        try:
            data = (self.dir / f"{container}.log").read_bytes()[-limit:]
        except OSError:
            return ""
        return data.decode(errors="replace")

    # -- env
    def _field(self, pod, path):
        md = pod["metadata"]
        m = re.fullmatch(r"metadata\.(labels|annotations)\[['\"](.*)['\"]\]", path)
        if m:
            return (md.get(m.group(1)) or {}).get(m.group(2), "")
        if path in ("metadata.labels", "metadata.annotations"):
            d = md.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(d.items()))
        values = {
            "metadata.name": md["name"], "metadata.namespace": md["namespace"],
            "metadata.uid": md["uid"], "spec.nodeName": pod["spec"].get("nodeName", ""),
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
            "status.podIP": self.pod_ip or "", "status.podIPs": self.pod_ip or "",
            "status.hostIP": HOST_IP, "status.hostIPs": HOST_IP,
        }
        if path not in values:
            raise ContainerConfigError("CreateContainerConfigError",
                                       f"unsupported fieldRef {path!r}")
        return values[path]

    def _get_obj(self, kind, name):
        """data of a Secret/ConfigMap as {key: bytes}, None if it does not exist."""
        try:
            o = self.api.get(f"/api/v1/namespaces/{self.ns}/{kind}s/{name}")
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        if kind == "secret":
            return {k: base64.b64decode(v) for k, v in (o.get("data") or {}).items()}
        d = {k: v.encode() for k, v in (o.get("data") or {}).items()}
        d.update({k: base64.b64decode(v) for k, v in (o.get("binaryData") or {}).items()})
        return d

    def _container_env(self, c, pod):
        """The container's environment, in Kubernetes' precedence order (service env, envFrom,
        env; later wins) plus what a process outside a container needs (PATH, HOME)."""
        port = str(self.api.port)
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir),
                "HOSTNAME": pod["spec"].get("hostname") or self.pod_name}
        for k in ("LANG", "LC_ALL", "TZ", "LD_LIBRARY_PATH", "TMPDIR"):
            if k in os.environ:
                base[k] = os.environ[k]
        env = {"KUBERNETES_SERVICE_HOST": HOST_IP, "KUBERNETES_SERVICE_PORT": port,
               "KUBERNETES_SERVICE_PORT_HTTPS": port,
               "KUBERNETES_PORT": f"tcp://{HOST_IP}:{port}",
               f"KUBERNETES_PORT_{port}_TCP": f"tcp://{HOST_IP}:{port}",
               f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
               f"KUBERNETES_PORT_{port}_TCP_PORT": port,
               f"KUBERNETES_PORT_{port}_TCP_ADDR": HOST_IP}
        for vm in c.spec.get("volumeMounts", []):
            if vm.get("mountPath", "").rstrip("/") == SA_MOUNT and vm["name"] in self.volume_dirs:
                env["EDDY_SERVICE_ACCOUNT_DIR"] = str(self.volume_dirs[vm["name"]])

        def missing(kind, name, key=None):
            what = f'{kind} "{name}" not found' if key is None else \
                f"couldn't find key {key} in {KINDS[kind]} {self.ns}/{name}"
            return ContainerConfigError("CreateContainerConfigError", what)

        for src in c.spec.get("envFrom", []):
            kind, ref = ("secret", src["secretRef"]) if "secretRef" in src else \
                ("configmap", src.get("configMapRef", {}))
            data = self._get_obj("secret" if kind == "secret" else "configmap", ref.get("name", ""))
            if data is None:
                if ref.get("optional"):
                    continue
                raise missing(kind, ref.get("name"))
            for k, v in data.items():
                name = src.get("prefix", "") + k
                if re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", name):
                    env[name] = v.decode(errors="replace")
        for e in c.spec.get("env", []):
            vf = e.get("valueFrom")
            if not vf:
                env[e["name"]] = expand(e.get("value", ""), env)
                continue
            if "fieldRef" in vf:
                env[e["name"]] = self._field(pod, vf["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in vf or "configMapKeyRef" in vf:
                kind = "secret" if "secretKeyRef" in vf else "configmap"
                ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
                data = self._get_obj(kind, ref["name"])
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise missing(kind, ref["name"], None if data is None else ref["key"])
                env[e["name"]] = data[ref["key"]].decode(errors="replace")
            else:
                log.warning("pod %s/%s container %s: env %s: %s not supported, skipped", self.ns,
                            self.pod_name, c.name, e["name"], ",".join(vf))
        base.update(env)
        return base

    # -- volumes
    def _write(self, root, rel, data, mode):
        rel = os.path.normpath(rel)
        if rel.startswith("..") or os.path.isabs(rel):
            raise VolumeError(f"bad path {rel!r}")
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.parent / f".{p.name}.{uuid.uuid4().hex[:8]}"
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode())
        os.chmod(tmp, mode)
        os.replace(tmp, p)

    def _keys(self, root, kind, name, src, data, default_mode):
        if data is None:
            if src.get("optional"):
                return
            raise VolumeError(f'{kind} "{name}" not found')
        items = src.get("items")
        if not items:
            items = [{"key": k, "path": k} for k in data]
        for it in items:
            if it["key"] not in data:
                if src.get("optional"):
                    continue
                raise VolumeError(f"key {it['key']!r} not found in {kind} {name}")
            self._write(root, it["path"], data[it["key"]], it.get("mode", default_mode))

    def _token(self, pod, src):
        sa = pod["spec"].get("serviceAccountName") or "default"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": src.get("expirationSeconds", 3600),
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                            "name": self.pod_name, "uid": self.uid}}}
        if src.get("audience"):
            body["spec"]["audiences"] = [src["audience"]]
        try:
            r = self.api.post(f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token", body)
        except ApiError as e:
            raise VolumeError(f"token for service account {self.ns}/{sa}: {e}") from e
        return r["status"]["token"]

    def _setup_volumes(self, pod):
        vroot = self.dir / "volumes"
        dirs = {}
        tokens = []
        for v in pod["spec"].get("volumes", []):
            name = v["name"]
            d = vroot / name
            mode = 0o644
            if "hostPath" in v:
                dirs[name] = Path(v["hostPath"]["path"])
                continue
            d.mkdir(parents=True, exist_ok=True)
            dirs[name] = d
            if "emptyDir" in v:
                pass
            elif "secret" in v:
                s = v["secret"]
                self._keys(d, "secret", s["secretName"], s, self._get_obj("secret", s["secretName"]),
                           s.get("defaultMode", mode))
            elif "configMap" in v:
                s = v["configMap"]
                self._keys(d, "configmap", s["name"], s, self._get_obj("configmap", s["name"]),
                           s.get("defaultMode", mode))
            elif "downwardAPI" in v:
                s = v["downwardAPI"]
                self._downward(d, pod, s.get("items", []), s.get("defaultMode", mode))
            elif "projected" in v:
                pm = v["projected"].get("defaultMode", mode)
                for src in v["projected"].get("sources", []):
                    if "serviceAccountToken" in src:
                        t = src["serviceAccountToken"]
                        self._write(d, t["path"], self._token(pod, t), pm)
                        tokens.append([d / t["path"], t, time.monotonic(),
                                       t.get("expirationSeconds", 3600)])
                    elif "configMap" in src:
                        s = src["configMap"]
                        data = self._get_obj("configmap", s["name"])
                        if data is None and s["name"] == "kube-root-ca.crt" and self.api.ca_pem():
                            data = {"ca.crt": self.api.ca_pem()}  # not published yet
                        self._keys(d, "configmap", s["name"], s, data, pm)
                    elif "secret" in src:
                        s = src["secret"]
                        self._keys(d, "secret", s["name"], s, self._get_obj("secret", s["name"]), pm)
                    elif "downwardAPI" in src:
                        self._downward(d, pod, src["downwardAPI"].get("items", []), pm)
                    else:
                        log.warning("pod %s/%s volume %s: projected source %s not supported",
                                    self.ns, self.pod_name, name, ",".join(src))
            else:
                log.warning("pod %s/%s volume %s: type %s not supported, an empty dir instead",
                            self.ns, self.pod_name, name, ",".join(k for k in v if k != "name"))
        self.volume_dirs = dirs
        self.tokens = tokens
        mounts = {}
        for c in pod["spec"].get("initContainers", []) + pod["spec"].get("containers", []):
            for vm in c.get("volumeMounts", []):
                if vm["name"] in dirs:
                    local = dirs[vm["name"]] / vm["subPath"] if vm.get("subPath") \
                        else dirs[vm["name"]]
                    mounts[vm["mountPath"]] = str(local)
        (self.dir / "mounts.json").write_text(json.dumps(mounts, indent=1, sort_keys=True) + "\n")

    def _downward(self, d, pod, items, mode):
        for it in items:
            if "fieldRef" in it:
                try:
                    val = self._field(pod, it["fieldRef"]["fieldPath"])
                except ContainerConfigError as e:
                    raise VolumeError(e.message) from e
                self._write(d, it["path"], val, it.get("mode", mode))
            else:
                log.warning("pod %s/%s: downwardAPI item %s: only fieldRef is supported",
                            self.ns, self.pod_name, it.get("path"))

    def _refresh_tokens(self, pod):
        """Re-request projected tokens at 80 % of their lifetime, as the kubelet does."""
        now = time.monotonic()
        for t in self.tokens:
            path, src, obtained, exp = t
            if now - obtained > 0.8 * exp:
                try:
                    self._write(path.parent, path.name, self._token(pod, src), 0o644)
                    t[2] = now
                except VolumeError as e:
                    log.warning("pod %s/%s: token refresh failed: %s", self.ns, self.pod_name, e)


# ---------------------------------------------------------------------- the agent
class NodeAgent:
    """Registers Node `name`, keeps it Ready and runs the pods bound to it as local processes.

    `control_plane`: a cluster.ControlPlane (its `kubeconfig` and `dir` are used) or a kubeconfig
    path. `images`: {image name: executable} or a JSON file of that. `workdir`: where per-pod
    dirs and node-agent.log go (default: control_plane.dir/"node", else a temp dir).
    Lifecycle: start() (returns once the Node is Ready and untainted) ... stop(); or `with`.
    The query/kill methods may be called from any thread."""

    def __init__(self, control_plane, images, workdir=None, name=DEFAULT_NODE, pod_subnet=None):
        kubeconfig = getattr(control_plane, "kubeconfig", control_plane)
        self.api = KubeRest.from_kubeconfig(kubeconfig)
        self.images = ImageMap(images)
        self.name = name
        self._tmp = None
        if workdir is None:
            cp_dir = getattr(control_plane, "dir", None)
            if cp_dir:
                workdir = Path(cp_dir) / "node"
            else:
                workdir = self._tmp = tempfile.mkdtemp(prefix="eddy-node-")
        self.workdir = Path(workdir)
        self.ips = IpPool(pod_subnet or os.environ.get("EDDY_NODE_AGENT_SUBNET")
                          or DEFAULT_POD_SUBNET)
        self._workers = {}
        self._wlock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._log_handler = None
        self.reaper = None
        self._boot_id = str(uuid.uuid4())
        self._since = now_iso()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    @property
    def log_path(self):
        return self.workdir / "node-agent.log"

    def start(self, timeout=60):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_handler = logging.FileHandler(self.log_path)
        self._log_handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(threadName)s: %(message)s"))
        log.addHandler(self._log_handler)
        log.setLevel(logging.DEBUG if os.environ.get("EDDY_NODE_AGENT_DEBUG") else logging.INFO)
        self._version = self.api.get("/version").get("gitVersion", "v0.0.0")
        self.reaper = Reaper()
        self._register()
        for target, tname in ((self._heartbeat_loop, "node-heartbeat"),
                              (self._pods_loop, "node-pods")):
            t = threading.Thread(target=target, name=tname, daemon=True)
            t.start()
            self._threads.append(t)
        self._wait_schedulable(timeout)
        log.info("node %s ready and schedulable (workdir %s)", self.name, self.workdir)
        return self

    def stop(self):
        """Stop watching and kill every container process (SIGTERM, SIGKILL after 3 s). The Node
        object is left as it is (its lease expires)."""
        self._stop.set()
        self.api.close_watches()
        for t in self._threads:        # first: no new pod workers after this
            t.join(timeout=35)
        self._threads.clear()
        with self._wlock:
            workers = list(self._workers.values())
        for w in workers:
            w.shutdown()
        for w in workers:
            w.thread.join(timeout=10)
        if self.reaper:
            self.reaper.close()       # idempotent; late calls from a stuck worker are no-ops
        if self._log_handler:
            log.removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # -- node
    def _node_status(self):
        now = now_iso()
        conds = [("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                 ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                 ("PIDPressure", "False", "KubeletHasSufficientPID"),
                 ("Ready", "True", "KubeletReady")]
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        res = {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "100Gi"}
        machine_id = ""
        try:
            machine_id = Path("/etc/machine-id").read_text().strip()
        except OSError:
            pass
        return {
            "capacity": res, "allocatable": res,
            "conditions": [{"type": t, "status": s, "reason": r,
                            "message": "eddy e2e node agent (test infrastructure) is posting "
                                       "status" if t == "Ready" else r,
                            "lastHeartbeatTime": now, "lastTransitionTime": self._since}
                           for t, s, r in conds],
            "addresses": [{"type": "InternalIP", "address": HOST_IP},
                          {"type": "Hostname", "address": self.name}],
            "nodeInfo": {"machineID": machine_id, "systemUUID": machine_id,
                         "bootID": self._boot_id, "kernelVersion": platform.release(),
                         "osImage": "eddy e2e node agent (processes on the host)",
                         "containerRuntimeVersion": "eddy-e2e://1",
                         "kubeletVersion": self._version, "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": arch},
        }

    def _register(self):
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        meta = {"name": self.name, "labels": {
            "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch, AGENT_LABEL: "true"},
            "annotations": {AGENT_LABEL: "test infrastructure: pods run as local processes "
                                         "(e2e/harness/node_agent.py)"}}
        try:
            self.api.post("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": meta,
                                            "spec": {}, "status": self._node_status()})
            log.info("node %s registered", self.name)
        except ApiError as e:
            if e.status != 409:
                raise
            self.api.patch(f"/api/v1/nodes/{self.name}", {"metadata": meta})
            log.info("node %s existed: re-registered", self.name)
        self._heartbeat()

    def _heartbeat(self):
        self.api.patch(f"/api/v1/nodes/{self.name}/status", {"status": self._node_status()})
        lease = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        try:
            self.api.patch(lease, {"spec": {"holderIdentity": self.name,
                                            "leaseDurationSeconds": LEASE_S,
                                            "renewTime": now_micro()}})
        except ApiError as e:
            if e.status != 404:
                raise
            node = self.api.get(f"/api/v1/nodes/{self.name}")
            self.api.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": "kube-node-lease",
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                                  "name": self.name,
                                                  "uid": node["metadata"]["uid"]}]},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_S,
                         "renewTime": now_micro()}})

    def _heartbeat_loop(self):
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._heartbeat()
            except ApiError as e:
                if e.status == 404:          # someone deleted the Node: register again
                    log.warning("node %s is gone: registering again", self.name)
                    try:
                        self._register()
                    except Exception as e2:  # noqa: BLE001
                        log.warning("node re-registration failed: %s", e2)
                else:
                    log.warning("heartbeat failed: %s", e)
            except Exception as e:  # noqa: BLE001 - keep beating
                log.warning("heartbeat failed: %s", e)

    def node(self):
        return self.api.get(f"/api/v1/nodes/{self.name}")

    def _wait_schedulable(self, timeout):
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            n = self.node()
            ready = any(c["type"] == "Ready" and c["status"] == "True"
                        for c in n.get("status", {}).get("conditions", []))
            taints = n["spec"].get("taints") or []
            if ready and not taints:
                return
            if ready and any(t["key"] in CONDITION_TAINTS for t in taints):
                self._drop_condition_taints(n)
                continue
            if taints != seen:
                log.info("node %s: ready=%s, taints %s: waiting", self.name, ready, taints)
                seen = taints
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.name} not schedulable after {timeout}s: "
                                   f"ready={ready} taints={taints}")
            time.sleep(0.2)

    def _drop_condition_taints(self, node):
        """Remove the not-ready/unreachable taints once Ready is posted. The TaintNodesByCondition
        admission plugin puts not-ready on every new Node and the node lifecycle controller
        would lift it only on its next pass (~5 s); a kubelet waits for that, the tests need
        not. The resourceVersion makes it a no-op if the controller changed the Node meanwhile."""
        keep = [t for t in node["spec"].get("taints") or [] if t["key"] not in CONDITION_TAINTS]
        try:
            self.api.patch(f"/api/v1/nodes/{self.name}", {
                "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"taints": keep or None}})
            log.info("node %s: removed the condition taints (Ready is posted)", self.name)
        except ApiError as e:
            if e.status != 409:
                raise

    # -- pods
    def _pods_loop(self):
        sel = {"fieldSelector": f"spec.nodeName={self.name}"}
        rv = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    lst = self.api.get("/api/v1/pods", sel)
                    rv = lst["metadata"]["resourceVersion"]
                    uids = set()
                    for pod in lst.get("items", []):
                        uids.add(pod["metadata"]["uid"])
                        self._on_pod(pod)
                    with self._wlock:
                        gone = [w for u, w in self._workers.items() if u not in uids]
                    for w in gone:
                        w.vanish()
                for ev in self.api.watch("/api/v1/pods", dict(
                        sel, resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="60"),
                        timeout=90):
                    if ev["type"] == "ERROR":
                        log.info("pod watch: %s: re-listing", ev["object"].get("message"))
                        rv = None
                        break
                    obj = ev["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self._on_pod(obj)
                    elif ev["type"] == "DELETED":
                        with self._wlock:
                            w = self._workers.get(obj["metadata"]["uid"])
                        if w:
                            w.update(obj)
                            w.vanish()
            except Exception as e:  # noqa: BLE001 - re-list after any error
                if self._stop.is_set():
                    return
                log.warning("pod watch failed (%s: %s): re-listing", type(e).__name__, e)
                rv = None
                self._stop.wait(1)

    def _on_pod(self, pod):
        uid = pod["metadata"]["uid"]
        with self._wlock:
            w = self._workers.get(uid)
            if w is None:
                if self._stop.is_set():
                    return
                w = PodWorker(self, pod)
                self._workers[uid] = w
                w.thread.start()
                return
        w.update(pod)

    def _worker_done(self, w):
        with self._wlock:
            if self._workers.get(w.uid) is w:
                del self._workers[w.uid]

    def _worker(self, ns, name):
        with self._wlock:
            ws = [w for w in self._workers.values() if w.ns == ns and w.pod_name == name]
        return ws[-1] if ws else None

    # -- for tests
    def pod_dir(self, ns, name):
        """The newest per-pod dir of pod ns/name (it outlives the pod), None if there is none."""
        w = self._worker(ns, name)
        if w:
            return w.dir
        dirs = sorted(self.workdir.glob(f"{ns}_{name}_*"), key=lambda p: p.stat().st_mtime)
        return dirs[-1] if dirs else None

    def pod_processes(self, ns, name, container=None):
        """pids of the pod's running containers' main processes ([] if none)."""
        w = self._worker(ns, name)
        return w.pids(container) if w else []

    def pod_log(self, ns, name, container=None):
        """What the container (default: the pod's first container) wrote, all restarts."""
        d = self.pod_dir(ns, name)
        if d is None:
            return ""
        if container is None:
            w = self._worker(ns, name)
            if w and w.app:
                container = w.app[0].name
            else:
                logs = sorted(d.glob("*.log"))
                if not logs:
                    return ""
                container = logs[0].stem
        try:
            return (d / f"{container}.log").read_text(errors="replace")
        except OSError:
            return ""

    def kill_pod_process(self, ns, name, sig=signal.SIGKILL, container=None):
        """Send `sig` to the main process of the pod's running containers (or of one);
        returns the pids signalled. The agent notices the exit like any other."""
        pids = self.pod_processes(ns, name, container)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def log_tail(self, n=40):
        """The agent's own log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no node agent log)"


def main():
    ap = argparse.ArgumentParser(description="e2e node agent (test infrastructure): runs the pods "
                                             "bound to a Node as local processes")
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                    help="admin kubeconfig (default $KUBECONFIG)")
    ap.add_argument("--name", default=DEFAULT_NODE, help=f"node name (default {DEFAULT_NODE})")
    ap.add_argument("--workdir", type=Path,
                    help="per-pod dirs and node-agent.log (default: <kubeconfig dir>/node)")
    ap.add_argument("--images", action="append", default=[], metavar="IMAGE=PATH",
                    help="map an image name to an executable (repeatable)")
    ap.add_argument("--images-file", type=Path, help="JSON object {image: path}")
    ap.add_argument("--pod-subnet", default=os.environ.get("EDDY_NODE_AGENT_SUBNET"),
                    help="pods get <subnet>.2..254 (default $EDDY_NODE_AGENT_SUBNET, else "
                         f"{DEFAULT_POD_SUBNET}); another 127.X.Y keeps two agents apart")
    ap.add_argument("--no-default-images", action="store_true",
                    help="do not map eddy-worker/eddy-operator from $EDDY_BUILD_DIR (default "
                         "build/) and the e2e-* images")
    a = ap.parse_args()
    if not a.kubeconfig:
        ap.error("--kubeconfig or KUBECONFIG is required")
    images = {} if a.no_default_images else default_images()
    if a.images_file:
        images.update(json.loads(a.images_file.read_text()))
    for kv in a.images:
        k, sep, v = kv.partition("=")
        if not sep:
            ap.error(f"--images wants IMAGE=PATH, got {kv!r}")
        images[k] = os.path.abspath(v)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s: "
                                                   "%(message)s")
    workdir = a.workdir or Path(a.kubeconfig).resolve().parent / "node"
    agent = NodeAgent(a.kubeconfig, images, workdir=workdir, name=a.name, pod_subnet=a.pod_subnet)
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    with agent:
        print(f"node agent: node {a.name} ready; pods under {workdir}; Ctrl-C to stop",
              file=sys.stderr)
        while not stop.wait(1):
            pass
    print("node agent: stopped, all pod processes killed", file=sys.stderr)


if __name__ == "__main__":
    main()
