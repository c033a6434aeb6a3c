"""Scenario 6, invalid FlinkJobs.

(a) The API server refuses what the CRD's schema and CEL rules can see (test_crd.py has the long
    list; two here, through the same kubectl apply a user runs).
(b) What only the operator's job-spec compiler can see — an expression naming a field the input
    does not have, an unknown key inside an untyped window value — passes the API server; the
    operator then starts nothing (no pods), sets lifecycleState FAILED, Ready False with reason
    InvalidSpec and a message naming the field, and sends a Warning Event InvalidSpec per spec
    version. Fixing the spec deploys the job."""

import time

import pytest

from cluster import wait_for
from eddy_k8s import read_rows

SEEN = {}  # what test_compiler_rejects_then_fix_deploys observed, for the checks after it


def window_job(out, window, aggregate):
    return {
        "sources": [{"name": "gen", "generator": {
            "count": 400, "rate": 400, "fields": {"k": "'k' + (n % 4)", "ts": "n * 10"}},
            "timestamp": "ts"}],
        "steps": [{"name": "per_key", "from": "gen", "keyBy": ["k"], "window": window,
                   "aggregate": aggregate}],
        "sinks": [{"name": "out", "from": "per_key", "file": {"path": str(out)}}],
    }


def test_api_server_rejects(eddy, ns, tmp_path):
    out = tmp_path / "never.jsonl"
    ok_job = window_job(out, {"tumbling": "1s"}, {"cnt": "count()"})
    cases = [
        # CEL: upgradeMode savepoint needs a savepointDir
        (eddy.flinkjob("no-dir", ok_job, parallelism=1, upgradeMode="savepoint"),
         "spec.upgradeMode"),
        # schema pattern on a duration string
        (eddy.flinkjob("bad-dur", window_job(out, {"tumbling": "10 parsecs"}, {"cnt": "count()"}),
                       parallelism=1), "spec.job.steps[0].window.tumbling"),
    ]
    for doc, field in cases:
        r = eddy.apply(ns, doc, check=False)
        assert r.returncode != 0 and field in r.stderr, (doc["metadata"]["name"], r.stderr)
    assert eddy.cp.kubectl_json("get", "flinkjobs", "-n", ns)["items"] == []


def test_compiler_rejects_then_fix_deploys(eddy, ns, tmp_path):
    out = eddy.output_dir(tmp_path) / "windows.jsonl"
    bad_expr = eddy.flinkjob("inv", window_job(out, {"tumbling": "1s"},
                                               {"cnt": "count()", "hot": "max(temperature)"}),
                             parallelism=1)
    with eddy.watch(ns, "inv") as w:
        r = eddy.apply(ns, bad_expr, check=False)
        assert r.returncode == 0, f"the API server cannot see expressions: {r.stderr}"
        failed = w.wait(lambda s: s.lifecycle == "FAILED", 30, "lifecycle FAILED")
        cond = failed.condition()
        assert cond["status"] == "False" and cond["reason"] == "InvalidSpec", cond
        msg = cond["message"]
        assert "steps[0] (per_key).aggregate.hot" in msg and "unknown field 'temperature'" in msg, \
            msg
        assert failed.status.get("error") == msg, failed.status
        uid = failed.obj["metadata"]["uid"]
        ev = eddy.wait_event(ns, uid, "InvalidSpec")
        assert ev[0]["type"] == "Warning" and "unknown field 'temperature'" in ev[0]["message"]
        assert eddy.worker_pods(ns, "inv", all_pods=True) == [], "pods for an invalid spec"
        assert not failed.job_id, failed.status

        # another mistake the API server lets through: an unknown key in {size, offset}
        mark = w.mark()
        eddy.patch(ns, "inv", {"job": {"steps": [{
            "name": "per_key", "from": "gen", "keyBy": ["k"],
            "window": {"tumbling": {"size": "1s", "ofset": "0s"}},
            "aggregate": {"cnt": "count()"}}]}})
        again = w.wait(lambda s: "ofset" in ((s.condition() or {}).get("message") or ""), 30,
                       "InvalidSpec naming 'ofset'", since=mark)
        assert again.lifecycle == "FAILED"
        assert "steps[0] (per_key).window.tumbling" in again.condition()["message"]
        evs = eddy.wait_event(ns, uid, "InvalidSpec", lambda e: "ofset" in e["message"])
        assert evs[0]["type"] == "Warning"
        assert len(eddy.events(ns, uid, "InvalidSpec")) == 2, "one Event per spec version"
        assert eddy.worker_pods(ns, "inv", all_pods=True) == []

        # fixed: deployed, Ready, the output there
        mark = w.mark()
        eddy.patch(ns, "inv", {"job": {"steps": [{
            "name": "per_key", "from": "gen", "keyBy": ["k"],
            "window": {"tumbling": {"size": "1s", "offset": "0s"}},
            "aggregate": {"cnt": "count()"}}]}})
        fixed = w.wait(lambda s: s.state in ("RUNNING", "FINISHED"), 60, "the fixed job deployed",
                       since=mark)
        assert fixed.job_id
        done = w.wait(lambda s: s.state == "FINISHED", 60, "FINISHED", since=mark)
        cond = done.condition()
        assert cond["status"] == "True" and done.lifecycle == "STABLE", cond
        SEEN["status.error after the fix"] = done.status.get("error")
        eddy.wait_event(ns, uid, "JobDeployed")
        wait_for(lambda: out.exists(), 10, what="output file")
        rows = read_rows(out)
        # 400 records, ts = n * 10 ms: 4 windows of 1 s, each with 25 records per key
        assert sorted((r["k"], r["window_start"], r["cnt"]) for r in rows) == sorted(
            (f"k{k}", w0, 25) for k in range(4) for w0 in (0, 1000, 2000, 3000))


def test_error_cleared_after_fix():
    if "status.error after the fix" not in SEEN:
        pytest.skip("test_compiler_rejects_then_fix_deploys did not get to the fix")
    assert not SEEN["status.error after the fix"], SEEN


def test_malformed_pod_template_is_refused_not_fatal(eddy, ns, tmp_path):
    """spec.taskManager.podTemplate is not validated by the API server; a wrong shape is an
    InvalidSpec naming the place, and the operator keeps running (it once crashed on it)."""
    out = eddy.output_dir(tmp_path) / "never.jsonl"
    doc = eddy.flinkjob("bad-tpl", window_job(out, {"tumbling": "1s"}, {"cnt": "count()"}),
                        parallelism=1)
    doc["spec"]["taskManager"] = {"slots": 1, "podTemplate": {"spec": {"containers": ["eddy-worker"]}}}
    with eddy.watch(ns, "bad-tpl") as w:
        r = eddy.apply(ns, doc, check=False)
        assert r.returncode == 0, r.stderr
        failed = w.wait(lambda s: s.lifecycle == "FAILED", 30, "lifecycle FAILED")
        cond = failed.condition()
        assert cond["reason"] == "InvalidSpec", cond
        assert "spec.taskManager.podTemplate.spec.containers[0]" in cond["message"], cond
    assert eddy.worker_pods(ns, "bad-tpl", all_pods=True) == []
    assert eddy.pod_http(eddy.operator_pod(), 8085, "/healthz")[0] == 200


def test_fatal_deployment_error_is_not_retried(eddy, ns, tmp_path):
    """A deployment that cannot work (initialSavepointPath names nothing) fails once with an
    Event and the reason in status; it is not retried every 10 s until the spec changes."""
    out = eddy.output_dir(tmp_path) / "never.jsonl"
    doc = eddy.flinkjob("nosp", window_job(out, {"tumbling": "1s"}, {"cnt": "count()"}),
                        parallelism=1, initialSavepointPath=f"file://{tmp_path}/no-such-savepoint")
    with eddy.watch(ns, "nosp") as w:
        eddy.apply(ns, doc)
        failed = w.wait(lambda s: (s.condition() or {}).get("reason") == "DeploymentFailed", 30,
                        "Ready False, reason DeploymentFailed")
    assert "no-such-savepoint" in failed.status.get("error", ""), failed.status
    uid = failed.obj["metadata"]["uid"]
    # the retry interval of retryable failures is 10 s: a fatal one must not come back
    time.sleep(12)
    assert len(eddy.events(ns, uid, "DeploymentFailed")) == 1
    # a new spec is tried again (and fails again, once)
    eddy.patch(ns, "nosp", {"initialSavepointPath": f"file://{tmp_path}/still-nothing"})
    wait_for(lambda: len(eddy.events(ns, uid, "DeploymentFailed")) == 2, 30, 0.3,
             what="a second DeploymentFailed for the new spec")
