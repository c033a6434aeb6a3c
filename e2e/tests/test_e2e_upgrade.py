"""Scenario 3, stateful upgrades. A keyed running count (an aggregate without a window: one row
per input record with the key's count so far) writes to a file sink.

- upgradeMode savepoint: `kubectl scale fj/x --replicas=3` changes the parallelism; the operator
  stops the job with a savepoint (lifecycle UPGRADING), starts the new spec from it (a new job id,
  STABLE again) on 3 worker pods instead of 2, and records an `upgrade` savepoint in the history.
  Keyed state is intact: every key's counts continue where they stopped — each of 1..max written
  exactly once (stop-with-savepoint emits nothing after the barrier).
- upgradeMode last-state: a change of the parallelism starts the new job from the newest
  checkpoint; counts continue (no restart at 1, none missing) while records after that checkpoint
  may be written twice (a plain file sink is at-least-once)."""

import time

from cluster import wait_for
from eddy_k8s import assert_counts_continue, counts_by_key, read_rows


def counting_job(out, rate=150):
    return {
        "sources": [{"name": "gen", "uid": "gen", "generator": {
            "rate": rate, "fields": {"k": "'k' + (n % 6)", "v": "n"}}}],
        "steps": [{"name": "c", "from": "gen", "keyBy": ["k"], "uid": "counts",
                   "aggregate": {"cnt": "count()", "total": "sum(v)"}}],
        "sinks": [{"name": "out", "from": "c", "file": {"path": str(out)}}],
    }


def n_rows(out):
    return len(read_rows(out))


def pods_of_run(eddy, ns, name):
    """Worker pods by eddy.dev/run label."""
    runs = {}
    for p in eddy.worker_pods(ns, name):
        runs.setdefault(p["metadata"]["labels"]["eddy.dev/run"], []).append(p)
    return runs


def test_scale_with_savepoint_keeps_state(eddy, ns, tmp_path):
    out = eddy.output_dir(tmp_path) / "counts.jsonl"
    doc = eddy.flinkjob("counts", counting_job(out), parallelism=2, maxParallelism=64,
                        upgradeMode="savepoint", savepointDir=eddy.s3.uri(f"{ns}/savepoints"),
                        checkpointing={"interval": "2s", "storage": eddy.s3.uri(f"{ns}/chk")})
    with eddy.watch(ns, "counts") as w:
        eddy.apply(ns, doc)
        first = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE", 60, "RUNNING")
        wait_for(lambda: len(eddy.worker_pods(ns, "counts")) == 2, 20, 0.3, what="2 pods")
        wait_for(lambda: n_rows(out) >= 150, 30, 0.3, what="150 output rows")
        before = assert_counts_continue(read_rows(out), what="before the upgrade")

        mark = w.mark()
        t0 = time.monotonic()
        eddy.cp.kubectl("scale", "-n", ns, "fj/counts", "--replicas=3")
        w.wait(lambda s: s.lifecycle == "UPGRADING", 30, "lifecycle UPGRADING", since=mark)
        new = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE"
                     and s.job_id != first.job_id, 60, "STABLE with a new job id", since=mark)
        print(f"\nscale 2 -> 3 (savepoint): STABLE with a new job after {new.t - t0:.1f}s")
        assert new.status["parallelism"] == 3
        # three worker pods of one new run; the old run's pods are gone
        runs = wait_for(lambda: (lambda r: r if len(r) == 1 and len(next(iter(r.values()))) == 3
                                 else None)(pods_of_run(eddy, ns, "counts")),
                        30, 0.3, what="3 worker pods of a single run")
        assert all(p["status"].get("phase") in ("Pending", "Running")
                   for p in next(iter(runs.values())))
        history = new.savepoint_info.get("history") or []
        assert [h["triggerType"] for h in history] == ["upgrade"], history
        sp = history[-1]["path"]
        assert sp.startswith(eddy.s3.uri(f"{ns}/savepoints") + "/"), sp
        assert eddy.s3.head(sp + "/_metadata")["ContentLength"] > 0
        uid = new.obj["metadata"]["uid"]
        eddy.wait_event(ns, uid, "SpecChanged")
        eddy.wait_event(ns, uid, "JobDeployed",
                        lambda e: new.job_id in e["message"] and sp in e["message"])

        # state intact: counts continue past what was written before, none twice, none reset
        target = {k: v + 20 for k, v in before.items()}
        wait_for(lambda: all(max(counts_by_key(read_rows(out)).get(k, [0])) >= t
                             for k, t in target.items()), 30, 0.3,
                 what="every key counted 20 more after the upgrade")
        after = assert_counts_continue(read_rows(out), exactly_once=True, what="after the upgrade")
        assert all(after[k] > before[k] for k in before), (before, after)


def test_last_state_upgrade_continues_from_checkpoint(eddy, ns, tmp_path):
    out = eddy.output_dir(tmp_path) / "counts.jsonl"
    doc = eddy.flinkjob("ls", counting_job(out), parallelism=1, maxParallelism=64,
                        upgradeMode="last-state",
                        checkpointing={"interval": "1s", "storage": eddy.s3.uri(f"{ns}/chk")})
    with eddy.watch(ns, "ls") as w:
        eddy.apply(ns, doc)
        first = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE"
                       and (s.status.get("jobStatus") or {}).get("lastCheckpoint"), 60,
                       "RUNNING with a checkpoint")
        wait_for(lambda: n_rows(out) >= 150, 30, 0.3, what="150 output rows")
        before = assert_counts_continue(read_rows(out), what="before the upgrade")

        mark = w.mark()
        eddy.cp.kubectl("scale", "-n", ns, "fj/ls", "--replicas=2")
        new = w.wait(lambda s: s.state == "RUNNING" and s.job_id != first.job_id, 60,
                     "RUNNING with a new job id", since=mark)
        uid = new.obj["metadata"]["uid"]
        ev = eddy.wait_event(ns, uid, "JobDeployed", lambda e: new.job_id in e["message"])
        assert eddy.s3.uri(f"{ns}/chk/{first.job_id}/chk-") in ev[0]["message"], ev[0]["message"]
        wait_for(lambda: len(eddy.worker_pods(ns, "ls")) == 2, 30, 0.3, what="2 worker pods")
        # no savepoint was taken: last-state restores the newest checkpoint
        assert not new.savepoint_info.get("history"), new.savepoint_info

        target = {k: v + 20 for k, v in before.items()}
        wait_for(lambda: all(max(counts_by_key(read_rows(out)).get(k, [0])) >= t
                             for k, t in target.items()), 30, 0.3,
                 what="every key counted 20 more after the upgrade")
        after = assert_counts_continue(read_rows(out), exactly_once=False, what="after last-state")
        assert all(after[k] > before[k] for k in before), (before, after)


def test_two_last_state_upgrades_before_a_checkpoint(eddy, ns, tmp_path):
    """The second upgrade comes before the first upgraded job took a checkpoint: it must resume
    from the snapshot that job started from, not start empty (counts reset to 1)."""
    out = eddy.output_dir(tmp_path) / "counts.jsonl"
    doc = eddy.flinkjob("ls2", counting_job(out), parallelism=1, maxParallelism=64,
                        upgradeMode="last-state",
                        checkpointing={"interval": "1s", "storage": eddy.s3.uri(f"{ns}/chk")})
    with eddy.watch(ns, "ls2") as w:
        eddy.apply(ns, doc)
        first = w.wait(lambda s: s.state == "RUNNING"
                       and (s.status.get("jobStatus") or {}).get("lastCheckpoint"), 60,
                       "RUNNING with a checkpoint")
        wait_for(lambda: n_rows(out) >= 150, 30, 0.3, what="150 output rows")
        before = assert_counts_continue(read_rows(out), what="before the upgrades")

        # upgrade 1: checkpoints every 10 min from now on, so the new job takes none
        mark = w.mark()
        eddy.patch(ns, "ls2", {"checkpointing": {"interval": "10m"}})
        second = w.wait(lambda s: s.state == "RUNNING" and s.job_id != first.job_id, 60,
                        "the first upgrade RUNNING", since=mark)
        # upgrade 2, at once
        mark = w.mark()
        eddy.cp.kubectl("scale", "-n", ns, "fj/ls2", "--replicas=2")
        third = w.wait(lambda s: s.state == "RUNNING" and s.job_id not in (first.job_id,
                                                                          second.job_id), 60,
                       "the second upgrade RUNNING", since=mark)
        uid = third.obj["metadata"]["uid"]
        ev = eddy.wait_event(ns, uid, "JobDeployed", lambda e: third.job_id in e["message"])
        assert eddy.s3.uri(f"{ns}/chk/{first.job_id}/chk-") in ev[0]["message"], ev[0]["message"]
        target = {k: v + 20 for k, v in before.items()}
        wait_for(lambda: all(max(counts_by_key(read_rows(out)).get(k, [0])) >= t
                             for k, t in target.items()), 30, 0.3,
                 what="every key counted 20 more after the second upgrade")
        assert_counts_continue(read_rows(out), exactly_once=False, what="after two upgrades")


def test_failed_upgrade_savepoint_leaves_the_job_and_says_so(eddy, ns, tmp_path):
    """The stop-with-savepoint of an upgrade fails (an unwritable savepointDir): the job keeps
    running the previous spec, and the status says that instead of claiming the new one."""
    out = eddy.output_dir(tmp_path) / "counts.jsonl"
    doc = eddy.flinkjob("badsp", counting_job(out), parallelism=1, maxParallelism=64,
                        upgradeMode="savepoint", savepointDir="file:///proc/eddy-no-such-dir")
    with eddy.watch(ns, "badsp") as w:
        eddy.apply(ns, doc)
        first = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE", 60, "RUNNING")
        gen1 = first.obj["metadata"]["generation"]
        mark = w.mark()
        eddy.cp.kubectl("scale", "-n", ns, "fj/badsp", "--replicas=2")
        failed = w.wait(lambda s: (s.condition() or {}).get("reason") == "UpgradeFailed", 60,
                        "Ready False, reason UpgradeFailed", since=mark)
    assert failed.job_id == first.job_id and failed.state == "RUNNING"
    assert "savepoint failed" in failed.status.get("error", ""), failed.status
    assert failed.status["parallelism"] == 1 and failed.status["observedGeneration"] == gen1
    uid = failed.obj["metadata"]["uid"]
    assert len(eddy.events(ns, uid, "SpecChanged")) == 1
    assert len(eddy.worker_pods(ns, "badsp")) == 1
