"""Prometheus test harness: check an exposition with promtool, scrape it with a real Prometheus.

Reusable for every Eddy process that serves /metrics (eddy-worker, the control plane, the test
program tests/tools/metrics_demo.cc). The tools come from Debian's `prometheus` package
(scripts/setup.sh installs it); PROMTOOL / PROMETHEUS override where they are looked up. A missing
tool is an error, not a skip: a harness that silently skips proves nothing.

    from prom_harness import MetricsProcess, check_metrics, fetch_metrics
    from prom_harness import start_prometheus  # noqa: F401  (a pytest fixture)

    def test_scraped(start_prometheus):
        proc = MetricsProcess([binary, "--listen", "127.0.0.1:0"])  # prints port=<n>
        assert check_metrics(fetch_metrics(proc.url)) == []
        prom = start_prometheus({"eddy-worker": [f"127.0.0.1:{proc.port}"]})
        prom.wait_up("eddy-worker")
        assert prom.wait_for_value('eddy_process_open_fds{job="eddy-worker"}') > 0

Each Prometheus gets its own free port on 127.0.0.1 (--web.listen-address) and its own temporary
--storage.tsdb.path, so tests can run in parallel and never touch a system Prometheus on :9090.
"""
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

__all__ = [
    "MetricsProcess",
    "PrometheusServer",
    "Sample",
    "check_metrics",
    "fetch_metrics",
    "find_tool",
    "free_port",
    "parse_metrics",
    "sample_value",
    "start_prometheus",
]


# ---- tools ----------------------------------------------------------------------------------


def find_tool(name, env_var=None):
    """Path of `name` (promtool, prometheus): $env_var if set, else PATH, else /usr/bin."""
    env_var = env_var or name.upper()
    path = os.environ.get(env_var) or shutil.which(name) or f"/usr/bin/{name}"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"{name} not found (looked at ${env_var}, PATH and /usr/bin); "
            "run scripts/setup.sh, which installs Debian's 'prometheus' package"
        )
    return path


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (the kernel's choice of an ephemeral port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- exposition -----------------------------------------------------------------------------


def fetch_metrics(url, timeout=5.0):
    """GETs a /metrics URL (or `host:port`, or a port on 127.0.0.1) and returns the text."""
    if isinstance(url, int):
        url = f"http://127.0.0.1:{url}/metrics"
    elif "://" not in url:
        url = f"http://{url}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200, f"GET {url}: HTTP {response.status}"
        return response.read().decode("utf-8")


def check_metrics(text):
    """Runs `promtool check metrics` on an exposition; returns its problems ([] when clean).

    promtool both parses the text format and lints names (counters end in _total, base units,
    help present, ...)."""
    result = subprocess.run(
        [find_tool("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode == 0:
        return []
    output = (result.stdout + result.stderr).splitlines()
    problems = [line.strip() for line in output if line.strip()]
    return problems or [f"promtool check metrics exited {result.returncode}"]


class Sample:
    """One line of an exposition: name, labels (dict), value (float)."""

    __slots__ = ("name", "labels", "value")

    def __init__(self, name, labels, value):
        self.name, self.labels, self.value = name, labels, value

    def __repr__(self):
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{labels}}} {self.value}"


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_metrics(text):
    """The samples of a text exposition (comments skipped). Raises ValueError on a bad line."""
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"line {number}: not a sample: {line!r}")
        name, label_text, value = m.groups()
        labels = {}
        pos = 0
        label_text = label_text or ""
        while pos < len(label_text):
            lm = _LABEL.match(label_text, pos)
            if not lm:
                raise ValueError(f"line {number}: bad labels: {line!r}")
            labels[lm.group(1)] = _unescape(lm.group(2))
            pos = lm.end()
        samples.append(Sample(name, labels, float(value)))
    return samples


def sample_value(text_or_samples, name, **labels):
    """The value of the one sample called `name` whose labels include `labels`.

    Raises AssertionError if there is none or more than one."""
    samples = text_or_samples
    if isinstance(samples, str):
        samples = parse_metrics(samples)
    found = [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{len(found)} samples match {name} {labels}: {found}"
    return found[0].value


# ---- a process serving /metrics ---------------------------------------------------------------


class MetricsProcess:
    """Runs a program that serves /metrics and prints its bound port (`port=<n>` by default).

    `stop()` sends SIGTERM and returns the exit code; the process is killed if it does not exit
    within `stop_timeout` seconds (then the code is the negative signal number)."""

    def __init__(self, cmd, port_pattern=r"port=(\d+)", host="127.0.0.1", timeout=15.0, env=None):
        self.cmd = [str(c) for c in cmd]
        self.host = host
        self._lines = queue.Queue()
        self._output = []
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = self._wait_for_port(re.compile(port_pattern), timeout)

    def _pump(self):
        for line in self.proc.stdout:
            self._output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_port(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            line = None
            if remaining > 0:
                try:
                    line = self._lines.get(timeout=remaining)
                except queue.Empty:
                    continue
            if line is None:  # timed out, or the process closed its output
                self.stop()
                raise AssertionError(
                    f"{self.cmd[0]} printed no port within {timeout}s "
                    f"(exit {self.proc.poll()}); output:\n{self.output}"
                )
            m = pattern.search(line)
            if m:
                return int(m.group(1))

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/metrics"

    @property
    def output(self):
        return "".join(self._output)

    def stop(self, stop_timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ---- a real Prometheus ----------------------------------------------------------------------


class PrometheusError(RuntimeError):
    pass


class PrometheusServer:
    """A Prometheus scraping `targets`, on a free port of 127.0.0.1 with a temporary TSDB.

    targets: {job_name: ["host:port", ...]}, or a list of "host:port" (job "eddy").
    honor_labels (default True): Eddy's metrics carry their own `job` label (the Flink job), which
    must win over the scrape job's name; with False Prometheus renames it to `exported_job`.
    Every sample still gets `instance`, and a `job` label (the scrape job's name) when it has none.
    """

    def __init__(self, targets, scrape_interval="1s", honor_labels=True, startup_timeout=60.0):
        if not isinstance(targets, dict):
            targets = {"eddy": list(targets)}
        self.targets = {job: list(ts) for job, ts in targets.items()}
        self.scrape_interval = scrape_interval
        self.honor_labels = honor_labels
        self.startup_timeout = startup_timeout
        self.workdir = None
        self.proc = None
        self.port = None

    # -- lifecycle --

    def _write_config(self):
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": job,
                    "honor_labels": self.honor_labels,
                    "static_configs": [{"targets": targets}],
                }
                for job, targets in self.targets.items()
            ],
        }
        path = os.path.join(self.workdir, "prometheus.yml")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)  # JSON is YAML
        return path

    def start(self):
        binary = find_tool("prometheus")
        self.workdir = tempfile.mkdtemp(prefix="eddy-prometheus-")
        config = self._write_config()
        last_error = None
        for _attempt in range(3):  # a free port can be taken between free_port() and bind()
            self.port = free_port()
            self._log = open(os.path.join(self.workdir, "prometheus.log"), "w")
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={os.path.join(self.workdir, 'data')}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=info",
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
            try:
                self._wait_ready()
                return self
            except PrometheusError as e:
                last_error = e
                self._terminate()
                if "address already in use" not in self.log_tail():
                    break
        self.stop()
        raise last_error

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise PrometheusError(
            f"prometheus not ready within {self.startup_timeout}s:\n{self.log_tail()}"
        )

    def _terminate(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def stop(self):
        """Stops Prometheus and removes its directory. Idempotent."""
        self._terminate()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, lines=30):
        if not self.workdir:
            return ""
        try:
            with open(os.path.join(self.workdir, "prometheus.log")) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    # -- HTTP API --

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def api(self, path, **params):
        """GETs /api/v1/<path> and returns its `data`; PrometheusError unless status is success."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:  # 400/422 carry a JSON error
            body = json.load(e)
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr):
        """Instant query: the result list of /api/v1/query (for a vector, dicts with `metric` and
        `value` = [timestamp, "string value"])."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_value(self, expr):
        """The value of a query returning at most one sample: a float, or None if it is empty."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{expr} returned {len(result)} series: {result}")
        return float(result[0]["value"][1])

    def wait_for_value(self, expr, predicate=lambda v: v is not None, timeout=30.0):
        """Polls `query_value(expr)` until `predicate(value)` holds; returns the value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.query_value(expr)
            if predicate(value):
                return value
            time.sleep(0.25)
        raise AssertionError(f"{expr} = {value} after {timeout}s\n{self.describe_targets()}")

    def targets_status(self):
        return self.api("targets", state="active")["activeTargets"]

    def describe_targets(self):
        return "\n".join(
            f"  {t['labels'].get('job')} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}"
            for t in self.targets_status()
        )

    def wait_up(self, job=None, instance=None, timeout=30.0):
        """Waits until a target of `job` (and `instance`, "host:port", if given) has been scraped
        successfully; returns its /api/v1/targets entry. AssertionError with every target's last
        error on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for target in self.targets_status():
                labels = target["labels"]
                if job is not None and labels.get("job") != job:
                    continue
                if instance is not None and labels.get("instance") != instance:
                    continue
                if target["health"] == "up":
                    return target
            time.sleep(0.2)
        raise AssertionError(
            f"no target job={job} instance={instance} up after {timeout}s:\n"
            f"{self.describe_targets()}\nprometheus log:\n{self.log_tail()}"
        )


@pytest.fixture
def start_prometheus():
    """`start_prometheus(targets, scrape_interval="1s", **kwargs)` starts a PrometheusServer
    (see there) and returns it; every server started is stopped at teardown."""
    servers = []

    def start(targets, scrape_interval="1s", **kwargs):
        server = PrometheusServer(targets, scrape_interval=scrape_interval, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
