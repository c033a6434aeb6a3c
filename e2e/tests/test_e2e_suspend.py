"""Scenario 5, suspend and resume with upgradeMode savepoint. `spec.state: suspended` stops the
job with a savepoint (triggerType suspend, recorded in status), removes the worker pods, and shows
lifecycle SUSPENDED and jobStatus.state SUSPENDED; `state: running` starts a new job from that
savepoint on new pods, and a keyed running count continues where it stopped (each count written
exactly once: nothing is emitted after a stop-with-savepoint's barrier)."""

import time

import pytest

from cluster import wait_for
from eddy_k8s import assert_counts_continue, counts_by_key, is_running, read_rows

SEEN = {}  # what test_suspend_and_resume observed, for the checks after it


def test_suspend_and_resume(eddy, ns, tmp_path):
    out = eddy.output_dir(tmp_path) / "counts.jsonl"
    sp_dir = eddy.s3.uri(f"{ns}/savepoints")
    doc = eddy.flinkjob("susp", {
        "sources": [{"name": "gen", "uid": "gen", "generator": {
            "rate": 150, "fields": {"k": "'k' + (n % 5)"}}}],
        "steps": [{"name": "c", "from": "gen", "keyBy": ["k"], "uid": "counts",
                   "aggregate": {"cnt": "count()"}}],
        "sinks": [{"name": "out", "from": "c", "file": {"path": str(out)}}],
    }, parallelism=2, upgradeMode="savepoint", savepointDir=sp_dir)

    with eddy.watch(ns, "susp") as w:
        eddy.apply(ns, doc)
        first = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE", 60, "RUNNING")
        uid = first.obj["metadata"]["uid"]
        wait_for(lambda: len(eddy.worker_pods(ns, "susp")) == 2, 30, 0.3, what="2 worker pods")
        wait_for(lambda: len(read_rows(out)) >= 100, 30, 0.3, what="100 output rows")

        # suspend
        mark = w.mark()
        t0 = time.monotonic()
        eddy.patch(ns, "susp", {"state": "suspended"})
        susp = w.wait(lambda s: s.lifecycle == "SUSPENDED", 60, "lifecycle SUSPENDED", since=mark)
        print(f"\nsuspend -> SUSPENDED: {susp.t - t0:.1f}s")
        assert susp.state == "SUSPENDED" and susp.task_managers == 0, susp
        last = susp.savepoint_info.get("lastSavepoint") or {}
        assert last.get("triggerType") == "suspend", susp.savepoint_info
        assert last["path"].startswith(sp_dir + "/savepoint-"), last
        assert eddy.s3.head(last["path"] + "/_metadata")["ContentLength"] > 0
        assert (susp.condition() or {}).get("reason") == "Suspended", susp.condition()
        wait_for(lambda: not eddy.worker_pods(ns, "susp", all_pods=True), 30, 0.3,
                 what="worker pods gone")
        eddy.wait_event(ns, uid, "SavepointCompleted",
                        lambda e: "suspend" in e["message"] and last["path"] in e["message"])
        SEEN["events at the suspend"] = [e["reason"] for e in eddy.events(ns, uid)]
        # nothing is written while suspended
        stopped = read_rows(out)
        before = assert_counts_continue(stopped, what="at the suspend")
        time.sleep(1.0)  # a window for stray writes, then the file must be unchanged
        assert len(read_rows(out)) == len(stopped), "output written while suspended"
        assert w.last.lifecycle == "SUSPENDED", w.last

        # resume
        mark = w.mark()
        t1 = time.monotonic()
        eddy.patch(ns, "susp", {"state": "running"})
        resumed = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE", 60,
                         "RUNNING again", since=mark)
        print(f"resume -> RUNNING: {resumed.t - t1:.1f}s")
        assert resumed.job_id != first.job_id
        pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 and all(map(is_running, ps))
                                 else None)(eddy.worker_pods(ns, "susp")), 30, 0.3,
                        what="2 new worker pods")
        assert all(p["metadata"]["labels"]["eddy.dev/run"] for p in pods)
        eddy.wait_event(ns, uid, "JobDeployed",
                        lambda e: resumed.job_id in e["message"] and last["path"] in e["message"])

        target = {k: v + 15 for k, v in before.items()}
        wait_for(lambda: all(max(counts_by_key(read_rows(out)).get(k, [0])) >= t
                             for k, t in target.items()), 30, 0.3,
                 what="every key counted 15 more after the resume")
        after = assert_counts_continue(read_rows(out), exactly_once=True, what="after the resume")
        assert all(after[k] > before[k] for k in before)


def test_suspended_event_with_savepoint():
    if "events at the suspend" not in SEEN:
        pytest.skip("test_suspend_and_resume did not get to the suspend")
    assert "Suspended" in SEEN["events at the suspend"], SEEN
