"""Scenario 8, Prometheus: a real Prometheus (tests/python/prom_harness.py, Debian's package)
scrapes the operator and the worker pods of a running FlinkJob. Targets are found the way
annotation-based discovery (or the chart's ServiceMonitor/PodMonitor) finds them: every pod with
`prometheus.io/scrape: "true"`, at <pod IP>:<prometheus.io/port>. Checked through Prometheus'
HTTP API: `up == 1` for every target; the operator's gauge `eddy_operator_flinkjobs` with its
`lifecycle_state` label and its histograms `eddy_operator_reconcile_duration_seconds` and
`eddy_operator_kubernetes_request_duration_seconds` (by `verb`); the workers' gauges
`eddy_worker_slots` and `eddy_task_busy_time_ratio` and histogram
`eddy_buffer_fill_to_send_seconds`, with the labels docs/metrics.md lists."""

import pytest

from cluster import wait_for
from eddy_k8s import RELEASE_NS, is_running
from prom_harness import PrometheusServer


def scrape_targets(eddy, namespaces):
    """{scrape job: ["ip:port", ...]} of the annotated, running pods in `namespaces`."""
    targets = {}
    for ns in namespaces:
        for p in eddy.cp.kubectl_json("get", "pods", "-n", ns)["items"]:
            ann = p["metadata"].get("annotations") or {}
            if ann.get("prometheus.io/scrape") != "true" or not is_running(p):
                continue
            labels = p["metadata"]["labels"]
            job = "eddy-operator" if labels.get("app.kubernetes.io/component") == "operator" \
                else labels.get("app.kubernetes.io/name", "pods")
            addr = f"{p['status']['podIP']}:{ann['prometheus.io/port']}"
            targets.setdefault(job, []).append(addr)
    return targets


def series(prom, expr):
    return [r["metric"] for r in prom.query(expr)]


def test_prometheus_scrapes_operator_and_workers(eddy, ns):
    if eddy.external:
        pytest.skip("a local Prometheus cannot reach pod IPs of a real cluster")
    doc = eddy.flinkjob("prom", {
        "sources": [{"name": "gen", "generator": {
            "rate": 300, "fields": {"k": "'k' + (n % 8)", "ts": "n * 10"}}, "timestamp": "ts"}],
        "steps": [{"name": "per_key", "from": "gen", "keyBy": ["k"],
                   "window": {"tumbling": "1s"}, "aggregate": {"cnt": "count()"}}],
        "sinks": [{"name": "out", "from": "per_key", "discard": {}}],
    }, parallelism=2, taskManager={"slots": 1})
    with eddy.watch(ns, "prom") as w:
        eddy.apply(ns, doc)
        run = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE", 60, "RUNNING")
    wait_for(lambda: len([p for p in eddy.worker_pods(ns, "prom") if is_running(p)]) == 2, 30,
             0.3, what="2 worker pods Running")
    targets = scrape_targets(eddy, [RELEASE_NS, ns])
    assert len(targets.get("eddy-operator", [])) == 1, targets
    assert len(targets.get("eddy-worker", [])) == 2, targets

    prom = PrometheusServer(targets, scrape_interval="1s").start()
    try:
        for job, insts in targets.items():
            for inst in insts:
                prom.wait_up(job, inst, timeout=30)
        ups = prom.query("up")
        assert len(ups) == 3 and all(r["value"][1] == "1" for r in ups), ups

        # operator: the gauge by lifecycle state, and its histograms
        assert prom.wait_for_value('eddy_operator_flinkjobs{lifecycle_state="STABLE"}',
                                   lambda v: v is not None and v >= 1) >= 1
        states = {m["lifecycle_state"] for m in series(prom, "eddy_operator_flinkjobs")}
        assert {"CREATED", "DEPLOYED", "STABLE", "UPGRADING", "SUSPENDED", "FAILED"} <= states
        assert prom.wait_for_value("eddy_operator_reconcile_total", lambda v: v and v > 0) > 0
        buckets = series(prom, "eddy_operator_reconcile_duration_seconds_bucket")
        assert "+Inf" in {m["le"] for m in buckets} and len(buckets) > 5, buckets
        assert prom.query_value("eddy_operator_reconcile_duration_seconds_count") > 0
        verbs = {m["verb"] for m in series(
            prom, 'eddy_operator_kubernetes_request_duration_seconds_bucket{le="+Inf"}')}
        assert {"GET", "PATCH", "POST"} <= verbs, verbs
        assert prom.query_value('eddy_operator_leader') == 1

        # workers: per-worker and per-subtask gauges, a histogram, labelled with the Flink job
        slots = prom.query('eddy_worker_slots')
        assert len(slots) == 2 and all(r["value"][1] == "1" for r in slots), slots
        assert {r["metric"]["instance"] for r in slots} == set(targets["eddy-worker"])
        busy = wait_for(lambda: series(prom, 'eddy_task_busy_time_ratio{job="prom"}'), 20, 0.5,
                        what="eddy_task_busy_time_ratio of job prom")
        assert {m["job_id"] for m in busy} == {run.job_id}, busy
        assert {m["subtask"] for m in busy} == {"0", "1"}, busy
        assert all(m.get("vertex") for m in busy), busy
        fill = wait_for(lambda: series(
            prom, 'eddy_buffer_fill_to_send_seconds_bucket{job="prom", le="+Inf"}'), 20, 0.5,
            what="eddy_buffer_fill_to_send_seconds histogram of job prom")
        assert {m["job_id"] for m in fill} == {run.job_id}, fill
        assert prom.wait_for_value(
            'sum(eddy_buffer_fill_to_send_seconds_count{job="prom"})', lambda v: v and v > 0) > 0
    except AssertionError as e:
        raise AssertionError(f"{e}\ntargets:\n{prom.describe_targets()}") from None
    finally:
        prom.stop()
