"""S3 test harness: a real S3-compatible server (moto) and a fault-injecting TCP proxy.

Reusable by every test that needs object storage (the s3:// ObjectStore, checkpoints to S3):

    from s3_harness import S3Server, FaultProxy

    with S3Server() as s3, FaultProxy(s3.host, s3.port) as proxy:
        env = s3.env(endpoint=proxy.endpoint)       # AWS_* variables for an Eddy process
        ...
        proxy.outage(20.0, mode="refuse")           # S3 unreachable for 20 s, in the background
        proxy.wait_until_healthy()

S3Server runs moto's server (PyPI `moto[server]`, Apache-2.0; scripts/setup.sh installs it) in a
subprocess on an ephemeral loopback port and creates a bucket. With `auth=True` it also turns on
moto's IAM authentication: requests must then be signed with the keys of an IAM user the harness
creates (`access_key`/`secret_key`), so a wrong key or a bad signature is refused the way AWS
refuses it, and `assume_role()` hands out temporary credentials with a session token.

FaultProxy forwards TCP connections from its own loopback port to the server and can be switched
to fail them:
  "pass"      forward (the default);
  "refuse"    the listening socket is closed: connects fail with ECONNREFUSED;
  "reset"     connections are accepted and immediately reset (RST);
  "blackhole" connections are accepted and read, but never answered (timeouts).
Switching to a fault mode also resets every open connection, so pooled keep-alive connections fail
like new ones. A missing moto is an error, not a skip: a harness that silently skips proves
nothing.
"""

import json
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

__all__ = ["S3Server", "FaultProxy", "require_moto", "s3_tool_binary"]

# Runs in the server subprocess: moto's threaded server on port 0, which prints the port it got
# and stops when its stdin closes (so it never outlives the test process).
_LAUNCHER = r"""
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""

_ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:*"], "Resource": "*"}],
    }
)


def s3_tool_binary():
    """Path of Eddy's test program tests/tools/s3_tool.cc: $EDDY_S3_TOOL, else
    $EDDY_BINARY_DIR/tests/tools/eddy_s3_tool, else build/tests/tools/eddy_s3_tool."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates = []
    if os.environ.get("EDDY_S3_TOOL"):
        candidates.append(os.environ["EDDY_S3_TOOL"])
    binary_dir = os.environ.get("EDDY_BINARY_DIR", os.path.join(root, "build"))
    candidates.append(os.path.join(binary_dir, "tests", "tools", "eddy_s3_tool"))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise RuntimeError(
        f"eddy_s3_tool not found at {candidates}; build the target eddy_s3_tool first"
    )


def require_moto():
    """Raises with a hint when moto's server or boto3 is not installed."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as e:
        raise RuntimeError(
            f"{e}: the S3 tests need moto[server] and boto3 from PyPI; run scripts/setup.sh"
        ) from e


class S3Server:
    """moto's S3 (plus IAM and STS) on 127.0.0.1:<ephemeral>, with one bucket created.

    Attributes after start(): host, port, endpoint ("http://127.0.0.1:<port>"), bucket, region,
    access_key, secret_key. Log of the server: `log_path`.
    """

    def __init__(self, bucket="eddy-test", region="us-east-1", auth=False, start_timeout=60.0):
        self.bucket = bucket
        self.region = region
        self.auth = auth
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.port = None
        self.access_key = "testing"
        self.secret_key = "testing"
        self._proc = None
        self._tmp = tempfile.TemporaryDirectory(prefix="eddy-s3-")
        self.log_path = os.path.join(self._tmp.name, "moto.log")
        self._role_arn = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self):
        require_moto()
        env = dict(os.environ)
        # The server must not pick up the caller's AWS settings or authentication switches.
        for k in list(env):
            if k.startswith("AWS_") or k in ("INITIAL_NO_AUTH_ACTION_COUNT", "TEST_SERVER_MODE"):
                del env[k]
        log = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._proc.stdout], [], [], 0.5)
            if ready:
                line = self._proc.stdout.readline()
                break
            if self._proc.poll() is not None:
                break
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(f"moto server did not start; log:\n{self.log()}")
        self.port = int(line.split()[1])
        self._wait_ready(deadline)
        self.create_bucket(self.bucket)
        if self.auth:
            self._enable_auth()
        return self

    def stop(self):
        if self._proc is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self._tmp.cleanup()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-5000:]
        except OSError:
            return ""

    # ---- what clients need ----------------------------------------------------------------

    @property
    def endpoint(self):
        return f"http://{self.host}:{self.port}"

    def uri(self, prefix=""):
        """s3://bucket[/prefix]."""
        return f"s3://{self.bucket}" + (f"/{prefix.strip('/')}" if prefix.strip("/") else "")

    def env(self, endpoint=None, credentials=True):
        """AWS_* variables that point an Eddy process (or boto3) at this server."""
        env = {
            "AWS_ENDPOINT_URL_S3": endpoint or self.endpoint,
            "AWS_REGION": self.region,
        }
        if credentials:
            env["AWS_ACCESS_KEY_ID"] = self.access_key
            env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        return env

    def client(self, service="s3", access_key=None, secret_key=None, session_token=None):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            aws_session_token=session_token,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)

    def keys(self, prefix=""):
        """Every key in the bucket under `prefix` (boto3, independent of Eddy)."""
        out = []
        for page in (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        ):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def assume_role(self, seconds=3600):
        """Temporary credentials (auth=True only): AccessKeyId, SecretAccessKey, SessionToken."""
        assert self.auth, "assume_role needs S3Server(auth=True)"
        sts = self.client("sts")
        r = sts.assume_role(RoleArn=self._role_arn, RoleSessionName="eddy", DurationSeconds=seconds)
        return r["Credentials"]

    # ---- internals ------------------------------------------------------------------------

    def _wait_ready(self, deadline):
        last = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError(f"moto server on port {self.port} not ready: {last}; log:\n{self.log()}")

    def _enable_auth(self):
        iam = self.client("iam")
        iam.create_user(UserName="eddy")
        key = iam.create_access_key(UserName="eddy")["AccessKey"]
        iam.put_user_policy(UserName="eddy", PolicyName="all", PolicyDocument=_ALLOW_ALL)
        trust = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
                ],
            }
        )
        role = iam.create_role(RoleName="eddy-role", AssumeRolePolicyDocument=trust)["Role"]
        iam.put_role_policy(RoleName="eddy-role", PolicyName="all", PolicyDocument=_ALLOW_ALL)
        self._role_arn = role["Arn"]
        self.access_key = key["AccessKeyId"]
        self.secret_key = key["SecretAccessKey"]
        # From now on every request is authenticated against moto's IAM.
        req = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},  # a form body would not reach moto
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200, r.read()


class FaultProxy:
    """A TCP proxy 127.0.0.1:<ephemeral> → (target_host, target_port) with switchable faults.

    Modes: "pass", "refuse", "reset", "blackhole" (see the module docstring). `accepted` counts
    the connections accepted so far (every mode but "refuse" accepts).
    """

    MODES = ("pass", "refuse", "reset", "blackhole")

    def __init__(self, target_host, target_port, host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.host = host
        self.port = None
        self.accepted = 0
        self._mode = "pass"
        self._lock = threading.Lock()
        self._listener = None
        self._conns = set()  # every open socket (client and upstream sides)
        self._stopped = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = None
        self._timer = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self):
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            self._cut_all()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        return f"http://{self.host}:{self.port}"

    # ---- faults ---------------------------------------------------------------------------

    @property
    def mode(self):
        return self._mode

    def set_mode(self, mode):
        """Switches now; a fault mode also resets every open connection."""
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}")
        with self._lock:
            if self._timer is not None and threading.current_thread() is not self._timer:
                self._timer.cancel()
                self._timer = None
            if mode != "refuse" and self._listener is None:
                self._listener = self._listen(self.port)  # first: a failed bind changes nothing
            old, self._mode = self._mode, mode
            if mode != "pass" or old == "blackhole":
                self._cut_all()
            if mode == "refuse" and self._listener is not None:
                self._listener.close()
                self._listener = None
        os.write(self._wake_w, b"x")

    def outage(self, seconds, mode="refuse"):
        """Fails connections in `mode` for `seconds`, then passes again (in the background)."""
        self.set_mode(mode)
        self._timer = threading.Timer(seconds, self.set_mode, args=("pass",))
        self._timer.daemon = True
        self._timer.start()

    def wait_until_healthy(self, timeout=60.0):
        """Blocks until the proxy is back in "pass" mode."""
        deadline = time.monotonic() + timeout
        while self._mode != "pass":
            if time.monotonic() > deadline:
                raise TimeoutError("proxy still failing")
            time.sleep(0.05)

    # ---- internals ------------------------------------------------------------------------

    def _listen(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, port))
        s.listen(128)
        s.setblocking(False)
        return s

    @staticmethod
    def _reset(sock):
        """Closes `sock` with a RST; also wakes a thread blocked in recv on it."""
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    def _cut_all(self):
        for s in list(self._conns):
            self._reset(s)
        self._conns.clear()

    def _accept_loop(self):
        while not self._stopped.is_set():
            with self._lock:
                listener = self._listener
            fds = [self._wake_r] + ([listener] if listener is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.5)
            except (OSError, ValueError):
                continue  # the listener was closed by set_mode
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            if listener is None or listener not in ready:
                continue
            try:
                client, _ = listener.accept()
            except (BlockingIOError, OSError):
                continue
            client.setblocking(True)
            with self._lock:
                self.accepted += 1
                mode = self._mode
                if mode == "reset":
                    self._reset(client)
                    continue
                self._conns.add(client)
            if mode == "blackhole":
                threading.Thread(target=self._drain, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                with self._lock:
                    self._conns.discard(client)
                self._reset(client)
                continue
            with self._lock:
                self._conns.add(upstream)
            pair = {"done": 0}
            threading.Thread(target=self._pump, args=(client, upstream, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, pair), daemon=True).start()

    def _drain(self, sock):
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    def _pump(self, src, dst, pair):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self._lock:
            pair["done"] += 1
            if pair["done"] < 2:
                return
            # Both directions ended: close both sides.
            for sock in (src, dst):
                self._conns.discard(sock)
                try:
                    sock.close()
                except OSError:
                    pass
