"""Scenario 1, deploy: the Helm-installed operator is Running and ready; a FlinkJob applied with
kubectl gets its worker pods (⌈parallelism / slots⌉), a headless Service, status RUNNING /
STABLE / Ready and a JobDeployed Event; a bounded job FINISHES with exactly the window counts
computed here; deleting a running FlinkJob removes its pods and the FlinkJob itself (the
operator releases its finalizer)."""

import collections
import time

from cluster import wait_for
from eddy_k8s import WORKER_IMAGE, generated, is_ready, is_running, read_rows

WINDOW_MS = 1000
COUNT, RATE = 3000, 600          # ~5 s of input: long enough to look at the running job


def window_job(out):
    return {
        "sources": [{"name": "gen",
                     "generator": {"count": COUNT, "rate": RATE,
                                   "fields": {"k": "'k' + (n % 5)", "v": "n", "ts": "n * 10"}},
                     "timestamp": "ts"}],
        "steps": [{"name": "per_key", "from": "gen", "keyBy": ["k"],
                   "window": {"tumbling": f"{WINDOW_MS}ms"},
                   "aggregate": {"cnt": "count()", "total": "sum(v)"}}],
        "sinks": [{"name": "out", "from": "per_key", "file": {"path": str(out)}}],
    }


def expected_windows():
    """(k, window_start) -> (count, sum) of the generator's records, computed here."""
    exp = collections.defaultdict(lambda: [0, 0])
    for r in generated(COUNT, {"k": lambda n: f"k{n % 5}", "v": lambda n: n,
                               "ts": lambda n: n * 10}):
        w = exp[(r["k"], r["ts"] // WINDOW_MS * WINDOW_MS)]
        w[0] += 1
        w[1] += r["v"]
    return {k: tuple(v) for k, v in exp.items()}


def test_operator_running_and_ready(eddy):
    pod = eddy.operator_pod()
    assert is_running(pod) and is_ready(pod)
    assert pod["spec"]["containers"][0]["image"].split("/")[-1].startswith("eddy-operator:")
    status, body = eddy.pod_http(pod, 8085, "/readyz")
    assert status == 200, body
    status, body = eddy.pod_http(pod, 8085, "/healthz")
    assert status == 200, body
    assert isinstance(eddy.rest("/flinkjobs")["flinkjobs"], list)


def test_deploy_window_job_and_delete(eddy, ns, tmp_path):
    out = eddy.output_dir(tmp_path) / "windows.jsonl"
    # a bounded window job (parallelism 3 on 2-slot workers: 2 pods) ...
    bounded = eddy.flinkjob("windows", window_job(out), parallelism=3,
                            taskManager={"slots": 2})
    # ... and an unbounded one, deleted while it runs
    live = eddy.flinkjob("live", {
        "sources": [{"name": "gen", "generator": {"rate": 50, "fields": {"k": "'k' + (n % 3)"}}}],
        "steps": [{"name": "c", "from": "gen", "keyBy": ["k"], "aggregate": {"cnt": "count()"}}],
        "sinks": [{"name": "out", "from": "c", "discard": {}}]}, parallelism=1)

    with eddy.watch(ns, "windows") as w, eddy.watch(ns, "live") as wl:
        t0 = time.monotonic()
        eddy.apply(ns, bounded)
        eddy.apply(ns, live)
        running = w.wait(lambda s: s.state == "RUNNING", 60, "jobStatus.state RUNNING")
        print(f"\nkubectl apply -> RUNNING in status: {running.t - t0:.1f}s")
        stable = w.wait(lambda s: s.lifecycle == "STABLE" and s.state == "RUNNING"
                        and (s.condition() or {}).get("status") == "True", 30,
                        "STABLE and Ready while RUNNING")
        assert stable.condition()["reason"] == "JobRunning", stable.condition()
        assert stable.status["observedGeneration"] == stable.obj["metadata"]["generation"]
        job_id = stable.job_id

        fj = eddy.get(ns, "windows")
        uid = fj["metadata"]["uid"]
        assert "eddy.dev/finalizer" in fj["metadata"]["finalizers"]

        # worker pods: ceil(3 / 2) = 2, Running, labelled and owned by the FlinkJob
        pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 and all(map(is_running, ps))
                                 else None)(eddy.worker_pods(ns, "windows")),
                        30, 0.3, what="2 worker pods Running")
        for p in pods:
            labels = p["metadata"]["labels"]
            assert labels["eddy.dev/job"] == "windows", labels
            assert labels["app.kubernetes.io/name"] == "eddy-worker", labels
            assert labels.get("eddy.dev/run"), labels
            assert p["spec"]["restartPolicy"] == "Never"
            (owner,) = p["metadata"]["ownerReferences"]
            assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == \
                ("FlinkJob", "windows", uid, True), owner
            ann = p["metadata"]["annotations"]
            assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9249"
            ports = {pt["name"]: pt["containerPort"] for pt in p["spec"]["containers"][0]["ports"]}
            assert ports == {"data": 6121, "metrics": 9249}, ports
        assert len({p["metadata"]["labels"]["eddy.dev/run"] for p in pods}) == 1
        wait_for(lambda: eddy.get(ns, "windows")["status"].get("taskManagers") == 2, 15, 0.3,
                 what="status.taskManagers 2")

        # the headless Service, owned by the FlinkJob
        svc = eddy.cp.kubectl_json("get", "service", "windows-taskmanager", "-n", ns)
        assert svc["spec"]["clusterIP"] == "None"
        assert svc["spec"]["selector"] == {"eddy.dev/job": "windows"}
        assert svc["metadata"]["ownerReferences"][0]["uid"] == uid

        # a Normal Event JobDeployed naming the job id
        ev = eddy.wait_event(ns, uid, "JobDeployed", lambda e: job_id in e["message"])
        assert ev[0]["type"] == "Normal" and "2 worker pod(s)" in ev[0]["message"], ev

        # the operator's REST API serves the job (Flink's /jobs/overview)
        jobs = eddy.rest("/jobs/overview")["jobs"]
        assert job_id in [j["jid"] for j in jobs], jobs

        # the bounded job finishes; its output is exactly the windows computed here
        done = w.wait(lambda s: s.state == "FINISHED", 60, "FINISHED")
        assert done.lifecycle == "STABLE" and done.job_id == job_id
        assert done.condition()["reason"] == "JobFinished", done.condition()
        got = {(r["k"], r["window_start"]): (r["cnt"], r["total"]) for r in read_rows(out)}
        assert len(read_rows(out)) == len(got), "a window was written twice"
        assert got == expected_windows()
        for r in read_rows(out):
            assert r["window_end"] == r["window_start"] + WINDOW_MS
        eddy.wait_event(ns, uid, "JobFINISHED")
        wait_for(lambda: not eddy.worker_pods(ns, "windows", all_pods=True), 30, 0.3,
                 what="worker pods of the finished job gone")

        # delete the running FlinkJob: pods go, then the finalizer is released
        wl.wait(lambda s: s.state == "RUNNING", 60, "live RUNNING")
        live_pods = eddy.worker_pods(ns, "live")
        assert len(live_pods) == 1 and is_running(live_pods[0])
        t1 = time.monotonic()
        eddy.cp.kubectl("delete", "flinkjob", "live", "-n", ns, "--wait=false")
        wl.wait(lambda s: s.deleted, 60, "FlinkJob live deleted (finalizer released)")
        wait_for(lambda: not eddy.worker_pods(ns, "live", all_pods=True), 30, 0.3,
                 what="pods of the deleted FlinkJob gone")
        print(f"delete FlinkJob -> pods and object gone: {time.monotonic() - t1:.1f}s")
        r = eddy.cp.kubectl("get", "flinkjob", "live", "-n", ns, check=False)
        assert r.returncode != 0 and "NotFound" in r.stderr, r.stderr

    # the operator is still healthy afterwards
    assert eddy.pod_http(eddy.operator_pod(), 8085, "/readyz")[0] == 200


def test_worker_image_defaults_to_chart_value(eddy, ns):
    """A FlinkJob without spec.image runs the chart's worker.image."""
    doc = eddy.flinkjob("img", {
        "sources": [{"name": "gen", "generator": {"rate": 10, "fields": {"n": "n"}}}],
        "sinks": [{"name": "out", "from": "gen", "discard": {}}]}, parallelism=1)
    del doc["spec"]["image"]
    eddy.apply(ns, doc)
    pods = wait_for(lambda: eddy.worker_pods(ns, "img"), 30, 0.3, what="a worker pod")
    assert pods[0]["spec"]["containers"][0]["image"] == WORKER_IMAGE
