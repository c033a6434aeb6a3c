#!/usr/bin/env python3
"""How fast Eddy reacts on Kubernetes: deploying a FlinkJob and recovering from a lost worker pod.

  EDDY_BUILD_DIR=build python3 bench/k8s_bench.py [--reps 5] [--restart default|fixed]

Runs on the e2e harness (e2e/harness): a real kube-apiserver, controller-manager and scheduler
(cluster.py), the node agent running pods as local processes (node_agent.py), and eddy-operator
installed with the Helm chart (eddy_k8s.py, as the e2e scenarios do). Nothing outside this machine
is used; everything is stopped at the end.

Per repetition, a new FlinkJob (a generator at 200 records/s, keyed running count into a file
sink, parallelism 2 on two 1-slot worker pods, exactly-once checkpoints every second to file://):

(a) `kubectl apply` -> status.jobStatus.state RUNNING (seen through a watch of the FlinkJob), and
    -> both worker pods Running;
(b) once a checkpoint completed, `kubectl delete pod` of one worker pod -> the job RUNNING again
    with restarts + 1, seen in the operator's REST API (/jobs/:id, polled every 50 ms) and in the
    FlinkJob status (refreshed by the operator every 2 s, or at once when it reconciles), and ->
    the first new output row (the sink's file grows after the restart began).

--restart default keeps the job spec's default restart strategy (exponential-delay, 1 s initial
delay: what users get); --restart fixed uses fixed-delay 0 ms, i.e. the platform's own time.
Prints one row per measurement: median, min, max over the repetitions, and the target.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "e2e" / "harness"))

from cluster import ControlPlane, wait_for  # noqa: E402
from eddy_k8s import EddyK8s, is_running  # noqa: E402
from node_agent import NodeAgent, default_images  # noqa: E402

NS = "k8s-bench"
TARGETS = {"apply": 10.0, "failover": 5.0}


def job_doc(eddy, name, out, chk, restart):
    spec = {"parallelism": 2, "taskManager": {"slots": 1},
            "checkpointing": {"interval": "1s", "mode": "exactly-once", "storage": chk}}
    if restart == "fixed":
        spec["restartStrategy"] = {"type": "fixed-delay", "attempts": 100, "delay": "0ms"}
    return eddy.flinkjob(name, {
        "sources": [{"name": "gen", "uid": "gen", "generator": {
            "rate": 200, "fields": {"k": "'k' + (n % 16)"}}}],
        "steps": [{"name": "c", "from": "gen", "keyBy": ["k"], "uid": "counts",
                   "aggregate": {"cnt": "count()"}}],
        "sinks": [{"name": "out", "from": "c", "file": {"path": str(out)}}],
    }, **spec)


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def size(path):
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def one_rep(eddy, i, workdir, restart):
    name = f"bench-{i}"
    out = workdir / f"{name}.jsonl"
    res = {}
    with eddy.watch(NS, name) as w:
        t0 = time.monotonic()
        eddy.apply(NS, job_doc(eddy, name, out, f"file://{workdir}/chk-{i}", restart))
        run = w.wait(lambda s: s.state == "RUNNING", 60, "RUNNING")
        res["apply -> status RUNNING"] = run.t - t0
        pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 and all(map(is_running, ps))
                                 else None)(eddy.worker_pods(NS, name)), 60, 0.05,
                        what="2 worker pods Running")
        res["apply -> worker pods Running (polled)"] = time.monotonic() - t0
        job_id = run.job_id
        wait_for(lambda: (eddy.get_fast(NS, name)["status"].get("jobStatus") or {})
                 .get("lastCheckpoint"), 30, 0.2, what="a checkpoint")
        wait_for(lambda: size(out) > 0, 30, 0.1, what="output")

        operator = eddy.operator_pod()
        restarts = json.loads(eddy.pod_http(operator, 8081, f"/jobs/{job_id}")[1])["restarts"]
        mark = w.mark()
        t1 = time.monotonic()
        eddy.cp.kubectl("delete", "pod", pods[0]["metadata"]["name"], "-n", NS, "--wait=false")
        seen = {}
        size_at_restart = None
        while time.monotonic() - t1 < 60 and len(seen) < 2:
            now = time.monotonic()
            code, body = eddy.pod_http(operator, 8081, f"/jobs/{job_id}")
            if code == 200:
                j = json.loads(body)
                if j["restarts"] > restarts and size_at_restart is None:
                    size_at_restart = size(out)
                if j["restarts"] > restarts and j["state"] == "RUNNING" and "rest" not in seen:
                    seen["rest"] = now - t1
            if size_at_restart is not None and "output" not in seen and size(out) > size_at_restart:
                seen["output"] = now - t1
            time.sleep(0.05)
        back = w.wait(lambda s: s.state == "RUNNING" and s.restarts > restarts, 60,
                      "RUNNING again", since=mark)
        res["pod deleted -> RUNNING (REST)"] = seen.get("rest", float("nan"))
        res["pod deleted -> RUNNING (status)"] = back.t - t1
        res["pod deleted -> new output"] = seen.get("output", float("nan"))
    eddy.cp.kubectl("delete", "flinkjob", name, "-n", NS, "--wait=true", "--timeout=60s")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--restart", choices=["default", "fixed"], default="default")
    a = ap.parse_args()
    os.environ.setdefault("EDDY_NODE_AGENT_SUBNET", f"127.{100 + os.getpid() % 150}.251")
    workdir = Path(tempfile.mkdtemp(prefix="eddy-k8s-bench-"))
    t_setup = time.monotonic()
    with ControlPlane() as cp, NodeAgent(cp, default_images()) as agent:
        eddy = EddyK8s(cp, agent, workdir / "eddy")
        try:
            eddy.start()
            print(f"# control plane + node agent + helm install: "
                  f"{time.monotonic() - t_setup:.1f}s", file=sys.stderr)
            eddy.create_namespace(NS)
            results = []
            for i in range(a.reps):
                r = one_rep(eddy, i, workdir, a.restart)
                print("# rep %d: %s" % (i + 1, ", ".join(f"{k} {v:.2f}s" for k, v in r.items())),
                      file=sys.stderr)
                results.append(r)
        except BaseException:
            print(eddy.diagnostics([NS]), file=sys.stderr)
            raise
        finally:
            eddy.delete_namespace(NS)
            eddy.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()
    strategy = "exponential-delay (1 s initial, the default)" if a.restart == "default" \
        else "fixed-delay 0 ms"
    print(f"\nmachine: {os.cpu_count()} cores ({cpu_model()}), load average {load[0]:.1f}; "
          f"restart strategy: {strategy}; {a.reps} repetitions\n")
    print(f"| {'measurement':38} | median | min    | max    | target |")
    print(f"|{'-' * 40}|--------|--------|--------|--------|")
    for key in results[0]:
        vals = [r[key] for r in results]
        target = TARGETS["apply"] if key.startswith("apply") else TARGETS["failover"]
        print(f"| {key:38} | {statistics.median(vals):5.2f}s | {min(vals):5.2f}s | "
              f"{max(vals):5.2f}s | {f'< {target:.0f} s':6} |")


if __name__ == "__main__":
    main()
