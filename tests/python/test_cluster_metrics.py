"""/metrics of a whole local cluster through the real tools.

`eddy run --workers 2 --slots 2 --metrics-port 0` runs a ~15 s generator job with latency
tracking and checkpoints; every worker and the control plane log where their /metrics is. Each exposition must
pass `promtool check metrics` and carry the job's figures, and a real Prometheus scraping all
three targets must see them up and return the values (records, latency markers, workers).
"""

import os
import re
import time

import pytest

from prom_harness import (
    check_metrics,
    fetch_metrics,
    parse_metrics,
    start_prometheus,  # noqa: F401  (fixture)
)

from eddy_harness import EddyProcess

JOB = """
name: metrics-e2e
parallelism: 2
latencyTrackingInterval: 200ms
sources:
  - name: numbers
    generator: {{fields: {{n: "n", ts: "n"}}, count: {count}, rate: {rate}}}
    schema: {{n: int64, ts: int64}}
    timestamp: ts
    watermark: {{maxOutOfOrderness: 100ms}}
steps:
  - {{name: spread, from: numbers, partition: rebalance}}
  - {{name: squared, from: spread, map: {{n: n, sq: "n * n"}}}}
sinks:
  - {{name: out, from: squared, file: {{path: {out}, format: csv}}}}
"""


@pytest.fixture
def cluster(tmp_path):
    out = tmp_path / "out.csv"
    job = tmp_path / "job.yaml"
    job.write_text(JOB.format(count=150000, rate=10000, out=out))  # about 15 s
    c = EddyProcess(["run", "--workers", "2", "--slots", "2", "--metrics-port", "0",
                     "--checkpoint-interval", "500ms", "--checkpoint-dir", str(tmp_path / "chk"),
                     str(job)], tmp_path)
    yield c
    c.stop()


def family_types(text):
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def total(samples, name, **labels):
    return sum(s.value for s in samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def wait_for_samples(url, predicate, timeout=20):
    """Fetches `url` until `predicate(samples)` holds; returns (text, samples)."""
    deadline = time.monotonic() + timeout
    while True:
        text = fetch_metrics(url)
        samples = parse_metrics(text)
        if predicate(samples) or time.monotonic() > deadline:
            return text, samples
        time.sleep(0.25)


def test_workers_and_control_plane_serve_metrics_prometheus_scrapes(cluster, start_prometheus):
    control = cluster.wait_for_all(r"eddy: control plane metrics at http://(127\.0\.0\.1:\d+)/metrics",
                                   1)[0].group(1)
    workers = [m.group(1) for m in cluster.wait_for_all(
        r"eddy-worker\[worker-\d+\]: metrics at http://(127\.0\.0\.1:\d+)/metrics", 2)]
    assert len(set(workers + [control])) == 3, (workers, control)
    cluster.wait_for_all(r"attempt 1 deploying to", 1)

    # Each worker: promtool-clean, with the running job's figures in the right families.
    for worker in workers:
        text, samples = wait_for_samples(
            worker,
            lambda s: total(s, "eddy_task_records_out_total") > 0
            and total(s, "eddy_latency_seconds_count") > 0
            and total(s, "eddy_task_output_watermark_seconds") > 0
            and total(s, "eddy_task_input_watermark_seconds") > 0)
        assert check_metrics(text) == [], worker
        types = family_types(text)
        for family, kind in [
            ("eddy_task_records_in_total", "counter"),
            ("eddy_task_records_out_total", "counter"),
            ("eddy_task_bytes_in_total", "counter"),
            ("eddy_task_bytes_out_total", "counter"),
            ("eddy_task_busy_time_ratio", "gauge"),
            ("eddy_task_idle_time_ratio", "gauge"),
            ("eddy_task_backpressured_time_ratio", "gauge"),
            ("eddy_task_busy_seconds_total", "counter"),
            ("eddy_task_output_buffers_used", "gauge"),
            ("eddy_task_input_watermark_seconds", "gauge"),
            ("eddy_task_output_watermark_seconds", "gauge"),
            ("eddy_task_watermark_lag_seconds", "gauge"),
            ("eddy_operator_late_records_dropped_total", "counter"),
            ("eddy_buffer_fill_to_send_seconds", "histogram"),
            ("eddy_latency_seconds", "histogram"),
            ("eddy_worker_slots", "gauge"),
            ("eddy_worker_slots_used", "gauge"),
            ("eddy_worker_network_buffers_used", "gauge"),
            ("eddy_worker_network_buffers", "gauge"),
            ("eddy_network_buffers_sent_total", "counter"),
            ("eddy_worker_malformed_control_messages_total", "counter"),
            ("eddy_process_cpu_seconds_total", "counter"),
        ]:
            assert types.get(family) == kind, f"{worker}: {family} is {types.get(family)}"
        assert total(samples, "eddy_task_records_out_total", job="metrics-e2e") > 0
        assert total(samples, "eddy_worker_slots") == 2
        assert total(samples, "eddy_worker_slots_used") >= 1
        assert total(samples, "eddy_buffer_fill_to_send_seconds_count") > 0
        for s in samples:
            if s.name.startswith("eddy_task_") or s.name.startswith("eddy_latency_"):
                assert {"job", "job_id", "vertex", "subtask"} <= s.labels.keys(), s
        latency = [s for s in samples if s.name == "eddy_latency_seconds_count" and s.value > 0]
        assert latency and all(s.labels["source_vertex"].startswith("Source: numbers")
                               for s in latency), latency
        assert all("FileSink(out)" in s.labels["vertex"] for s in latency), latency

    text, samples = wait_for_samples(
        control, lambda s: total(s, "eddy_jobs_running") == 1
        and total(s, "eddy_job_checkpoints_completed_total") >= 1)
    assert check_metrics(text) == [], control
    types = family_types(text)
    for family, kind in [
        ("eddy_job_last_checkpoint_duration_seconds", "gauge"),
        ("eddy_job_last_checkpoint_size_bytes", "gauge"),
        ("eddy_job_last_checkpoint_full_size_bytes", "gauge"),
        ("eddy_job_last_checkpoint_alignment_seconds", "gauge"),
        ("eddy_job_checkpoints_in_progress", "gauge"),
        ("eddy_job_checkpoints_completed_total", "counter"),
        ("eddy_job_checkpoints_failed_total", "counter"),
        ("eddy_job_checkpoint_restores_total", "counter"),
        ("eddy_job_checkpoint_restore_fallbacks_total", "counter"),
        ("eddy_job_checkpoint_duration_seconds", "histogram"),
        ("eddy_job_checkpoint_size_bytes", "histogram"),
    ]:
        assert types.get(family) == kind, f"control plane: {family} is {types.get(family)}"
    assert total(samples, "eddy_job_checkpoint_duration_seconds_count", job="metrics-e2e") >= 1
    assert total(samples, "eddy_job_checkpoints_failed_total", job="metrics-e2e") == 0
    assert total(samples, "eddy_cluster_workers") == 2
    assert total(samples, "eddy_cluster_slots") == 4
    assert total(samples, "eddy_jobs_running") == 1
    assert total(samples, "eddy_job_state", job="metrics-e2e", state="RUNNING") == 1
    assert total(samples, "eddy_job_restarts_total", job="metrics-e2e") == 0

    # A real Prometheus scraping the three targets.
    prom = start_prometheus({"eddy-worker": workers, "eddy-control": [control]})
    for worker in workers:
        prom.wait_up("eddy-worker", instance=worker)
    prom.wait_up("eddy-control", instance=control)
    assert prom.query_value('count(up{job=~"eddy-worker|eddy-control"} == 1)') == 3
    assert prom.wait_for_value("sum(eddy_task_records_out_total)", lambda v: v and v > 0)
    assert prom.wait_for_value("sum(eddy_latency_seconds_count)", lambda v: v and v > 0)
    assert prom.wait_for_value("eddy_cluster_workers", lambda v: v == 2) == 2
    assert prom.wait_for_value('eddy_job_state{job="metrics-e2e",state="RUNNING"}',
                               lambda v: v == 1) == 1
    # Both workers' series, told apart by the instance label.
    assert prom.wait_for_value("count(count by (instance) (eddy_task_records_in_total))",
                               lambda v: v == 2) == 2
    # Records flow: the counter grows between scrapes.
    first = prom.query_value("sum(eddy_task_records_out_total)")
    assert prom.wait_for_value("sum(eddy_task_records_out_total)", lambda v: v and v > first)
    # histogram_quantile works on the latency buckets (a median somewhere under a minute).
    median = prom.wait_for_value(
        "histogram_quantile(0.5, sum by (le) (eddy_latency_seconds_bucket))",
        lambda v: v is not None and v == v)  # not NaN
    assert 0 <= median < 60, median
