"""Scenario 4, failover with exactly-once output. A bounded generator feeds a keyed running count
into a transactional file sink (two-phase commit), exactly-once checkpoints every second. While
the job runs, one of its worker pods is deleted: the JobMaster (inside the operator) fails the job
over from the newest checkpoint, the operator creates a new pod, jobStatus.restarts goes up, the
job FINISHES, and the committed output is exactly the rows computed here — none lost, none twice.

Printed: pod deletion -> the job RUNNING again (the operator's REST API, polled every 0.1 s, and
the FlinkJob status, which the operator refreshes every 2 s) and -> the first part file the new
attempt commits."""

import json
import re
import threading
import time

from cluster import wait_for
from eddy_k8s import is_running, read_rows, running_count_job, running_count_rows

COUNT, RATE, KEYS = 5000, 500, 7
PART = re.compile(r"^part-(\d+)-(\d+)-(\d+)\.jsonl$")


def expected_rows():
    """Every row the job writes: for each record, its key's count and sum so far."""
    return sorted(running_count_rows(COUNT, KEYS))


def committed_parts(out):
    return {f.name: PART.match(f.name).group(2) for f in out.glob("part-*") if PART.match(f.name)}


def test_worker_pod_deleted_exactly_once(eddy, ns, tmp_path):
    out = eddy.output_dir(tmp_path) / "out"
    doc = eddy.flinkjob("failover", running_count_job(out, COUNT, RATE, KEYS),
                        parallelism=2, taskManager={"slots": 1},
        checkpointing={"interval": "1s", "mode": "exactly-once",
                       "storage": eddy.s3.uri(f"{ns}/chk")},
        restartStrategy={"type": "fixed-delay", "attempts": 10, "delay": "200ms"})

    with eddy.watch(ns, "failover") as w:
        eddy.apply(ns, doc)
        run = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE", 60, "RUNNING")
        job_id = run.job_id
        pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 and all(map(is_running, ps))
                                 else None)(eddy.worker_pods(ns, "failover")),
                        30, 0.3, what="2 worker pods Running")
        # some output committed (a checkpoint completed) before the failure
        wait_for(lambda: committed_parts(out), 30, 0.2, what="a committed part file")
        assert eddy.rest(f"/jobs/{job_id}")["state"] == "RUNNING"

        victim = pods[0]["metadata"]["name"]
        operator = eddy.operator_pod()
        tokens_before = set(committed_parts(out).values())
        restarts_before = eddy.rest(f"/jobs/{job_id}").get("restarts", 0)
        mark = w.mark()
        t0 = time.monotonic()
        eddy.cp.kubectl("delete", "pod", victim, "-n", ns, "--wait=false")

        # timings, polled together
        seen = {}
        stop = threading.Event()

        def poll():
            while not stop.is_set() and len(seen) < 2:
                now = time.monotonic()
                code, body = eddy.pod_http(operator, 8081, f"/jobs/{job_id}")
                if code == 200 and "rest" not in seen:
                    j = json.loads(body)
                    if j.get("restarts", 0) > restarts_before and j["state"] == "RUNNING":
                        seen["rest"] = now - t0
                if "output" not in seen and set(committed_parts(out).values()) - tokens_before:
                    seen["output"] = now - t0
                time.sleep(0.1)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()

        back = w.wait(lambda s: s.state == "RUNNING" and s.restarts > restarts_before, 60,
                      "RUNNING again with restarts increased", since=mark)
        assert back.job_id == job_id, "a failover keeps the job (same id)"
        # a replacement pod of the same run, the deleted one gone
        new_pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 and victim not in
                                     [p["metadata"]["name"] for p in ps] and
                                     all(map(is_running, ps)) else None)(
            eddy.worker_pods(ns, "failover")), 30, 0.3, what="a replacement worker pod")
        assert len({p["metadata"]["labels"]["eddy.dev/run"] for p in new_pods}) == 1

        done = w.wait(lambda s: s.state == "FINISHED", 90, "FINISHED", since=mark)
        stop.set()
        poller.join(timeout=5)
        assert done.restarts >= 1 and done.lifecycle == "STABLE"
        print(f"\npod deletion -> RUNNING again: {seen.get('rest', float('nan')):.2f}s (REST), "
              f"{back.t - t0:.2f}s (FlinkJob status); -> first part file committed by the new "
              f"attempt: {seen.get('output', float('nan')):.2f}s; restarts {done.restarts}")
        assert "rest" in seen and "output" in seen, seen

    rows = read_rows(out)
    got = sorted((r["k"], r["cnt"], r["total"]) for r in rows)
    exp = expected_rows()
    if got != exp:
        dup = len(got) - len(set(got))
        lost = len(set(exp) - set(got))
        raise AssertionError(f"output not exactly-once: {len(got)} rows, {len(exp)} expected, "
                             f"{dup} duplicates, {lost} lost")
    assert len(set(committed_parts(out).values())) >= 2, "the output of two attempts"
