"""Running the real `eddy` binary from pytest: a subprocess whose output is collected line by
line, with waits on log patterns. Shared by the distributed-runtime tests."""

import os
import re
import subprocess
import threading
import time
from pathlib import Path

BIN = Path(os.environ.get("EDDY_BINARY_DIR", Path(__file__).resolve().parents[2] / "build"))
EDDY = BIN / "operator" / "eddy"


class EddyProcess:
    """`eddy ARGS` in `cwd`; stderr lines in `lines`, stdout lines in `out` when captured."""

    def __init__(self, args, cwd, capture_stdout=False, env=None):
        self.proc = subprocess.Popen(
            [str(EDDY), *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.out = []
        self.cv = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stderr, self.lines),
                                         daemon=True)]
        if capture_stdout:
            self.readers.append(threading.Thread(target=self._read,
                                                 args=(self.proc.stdout, self.out), daemon=True))
        for r in self.readers:
            r.start()

    def _read(self, stream, sink):
        for line in stream:
            with self.cv:
                sink.append(line.rstrip("\n"))
                self.cv.notify_all()

    def _ended(self):
        return self.proc.poll() is not None and not any(r.is_alive() for r in self.readers)

    def wait_for_all(self, pattern, n, timeout=30):
        """The first `n` matches of `pattern` in the log (waits for them)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                found = [m for m in (rx.search(line) for line in self.lines) if m]
                if len(found) >= n:
                    return found[:n]
                left = deadline - time.monotonic()
                if left <= 0 or self._ended():
                    raise AssertionError(f"not {n} log lines matching {pattern!r}:\n" + self.log())
                self.cv.wait(min(left, 0.2))

    def wait_for(self, pattern, timeout=30):
        return self.wait_for_all(pattern, 1, timeout)[0]

    def wait_until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 0.1))
            return True

    def log(self):
        with self.cv:
            return "\n".join(self.lines + (["--- stdout ---"] + self.out if self.out else []))

    def finish(self, timeout=120):
        rc = self.proc.wait(timeout=timeout)
        for r in self.readers:
            r.join(timeout=5)
        return rc

    def stop(self):
        """SIGTERM (the job is cancelled), SIGKILL after 30 s; the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for r in self.readers:
            r.join(timeout=5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()


def free_port():
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A standing `eddy cluster start` under EDDY_HOME=`home`, driven through the CLI and REST.
    `env` adds to (or, for AWS_*, replaces) the test process's environment."""

    def __init__(self, home: Path, env=None):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        if env is not None:
            self.env = {k: v for k, v in self.env.items() if not k.startswith("AWS_")}
            self.env.update(env)
        self.env["EDDY_HOME"] = str(home)
        self.env.pop("EDDY_REST", None)

    def start(self, workers=2, slots=4):
        r = self.eddy("cluster", "start", "--workers", workers, "--slots", slots, "--rest-port",
                      self.port, "--rpc-port", "0", timeout=90)
        assert r.returncode == 0, r.stderr
        return self

    def stop(self):
        self.eddy("cluster", "stop", timeout=60)

    def eddy(self, *args, timeout=120):
        return subprocess.run([str(EDDY), *map(str, args)], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def get(self, path):
        import json
        import urllib.request

        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def submit(self, job: Path, *extra):
        r = self.eddy("submit", job, *extra)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def wait_until(self, pred, timeout=60, what="condition"):
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n" + self.log()
            time.sleep(0.1)

    def log(self):
        p = self.home / "cluster" / "cluster.log"
        return p.read_text()[-8000:] if p.exists() else ""
