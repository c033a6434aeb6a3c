"""Eddy's /metrics exposition (eddy/metrics/metrics.h) through the real tools: promtool accepts it,
and a real Prometheus scrapes it and returns the values the program set.

The program is tests/tools/metrics_demo.cc (target eddy_metrics_demo): $EDDY_METRICS_DEMO, else
$EDDY_BINARY_DIR/tests/tools/eddy_metrics_demo, else build/tests/tools/eddy_metrics_demo.
"""
import os
import pathlib

import pytest

from prom_harness import (
    MetricsProcess,
    check_metrics,
    fetch_metrics,
    free_port,
    parse_metrics,
    sample_value,
    start_prometheus,  # noqa: F401  (fixture)
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECORDS = 4242  # not the demo's default, so that the flag is seen to reach the exposition


def demo_binary():
    candidates = []
    if os.environ.get("EDDY_METRICS_DEMO"):
        candidates.append(pathlib.Path(os.environ["EDDY_METRICS_DEMO"]))
    binary_dir = pathlib.Path(os.environ.get("EDDY_BINARY_DIR", ROOT / "build"))
    candidates.append(binary_dir / "tests" / "tools" / "eddy_metrics_demo")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    pytest.fail(f"eddy_metrics_demo not found at {[str(c) for c in candidates]}; build it first")


@pytest.fixture
def demo():
    proc = MetricsProcess([demo_binary(), "--listen", "127.0.0.1:0", "--records", RECORDS])
    yield proc
    code = proc.stop()
    assert code == 0, f"eddy_metrics_demo exited {code} on SIGTERM; output:\n{proc.output}"


def test_exposition_passes_promtool(demo):
    text = fetch_metrics(demo.url)
    assert check_metrics(text) == []
    for family, kind in [
        ("eddy_demo_records_total", "counter"),
        ("eddy_demo_buffer_fill_ratio", "gauge"),
        ("eddy_demo_latency_seconds", "histogram"),
        ("eddy_process_resident_memory_bytes", "gauge"),
        ("eddy_process_cpu_seconds_total", "counter"),
        ("eddy_process_open_fds", "gauge"),
    ]:
        assert f"# TYPE {family} {kind}\n" in text, f"{family} is not a {kind}:\n{text}"


def test_promtool_reports_problems():
    # The check must be able to fail: a counter without _total and a sample with no value.
    problems = check_metrics("# HELP eddy_bad x\n# TYPE eddy_bad counter\neddy_bad 1\n")
    assert any("_total" in p for p in problems), problems
    assert check_metrics("eddy_broken{job=\n") != []


def test_exposition_values(demo):
    samples = parse_metrics(fetch_metrics(demo.url))
    assert sample_value(samples, "eddy_demo_records_total", job="demo", subtask="0") == RECORDS
    assert sample_value(samples, "eddy_demo_records_total", job="demo", subtask="1") == 2 * RECORDS
    assert sample_value(samples, "eddy_demo_buffer_fill_ratio", vertex="source") == 0.25
    # Observations 0.003, 0.02, 0.02, 0.7, 120: cumulative buckets.
    les = ["0.0025", "0.005", "0.025", "0.5", "1", "60", "+Inf"]
    buckets = [sample_value(samples, "eddy_demo_latency_seconds_bucket", le=le) for le in les]
    assert buckets == [0, 1, 3, 3, 4, 4, 5]
    assert sample_value(samples, "eddy_demo_latency_seconds_count") == 5
    assert sample_value(samples, "eddy_demo_latency_seconds_sum") == pytest.approx(120.743)
    assert sample_value(samples, "eddy_process_resident_memory_bytes") > 1024 * 1024
    assert sample_value(samples, "eddy_process_open_fds") >= 3


def test_prometheus_scrapes_the_values_back(demo, start_prometheus):
    prom = start_prometheus({"eddy-demo": [f"127.0.0.1:{demo.port}"]}, scrape_interval="1s")
    target = prom.wait_up("eddy-demo", instance=f"127.0.0.1:{demo.port}")
    assert target["health"] == "up"
    assert prom.query_value('up{job="eddy-demo"}') == 1

    # honor_labels: the metric's own job label (the Flink job) survives the scrape.
    v = prom.wait_for_value('eddy_demo_records_total{job="demo",subtask="0"}')
    assert v == RECORDS
    assert prom.query_value('sum(eddy_demo_records_total{job="demo"})') == 3 * RECORDS
    assert prom.query_value('eddy_demo_buffer_fill_ratio{job="demo"}') == 0.25
    assert prom.query_value('eddy_demo_latency_seconds_count{job="demo"}') == 5
    # Median of 0.003, 0.02, 0.02, 0.7, 120: rank 2.5 of 5 interpolated in (0.01, 0.025], which
    # holds ranks 2 and 3: 0.01 + 0.015 * (2.5 - 1) / 2.
    median = prom.query_value(
        'histogram_quantile(0.5, eddy_demo_latency_seconds_bucket{job="demo"})'
    )
    assert median == pytest.approx(0.02125)

    # Series without a job label get the scrape job's; process metrics come with every target.
    assert prom.query_value('eddy_process_open_fds{job="eddy-demo"}') >= 3
    assert prom.query_value('eddy_process_resident_memory_bytes{job="eddy-demo"}') > 1024 * 1024
    # The callback runs at every scrape: its counter keeps growing.
    first = prom.query_value("eddy_demo_collections_total")
    assert prom.wait_for_value("eddy_demo_collections_total", lambda c: c is not None and c > first)


def test_unreachable_target_is_never_up(start_prometheus):
    prom = start_prometheus({"nothing": [f"127.0.0.1:{free_port()}"]})
    with pytest.raises(AssertionError, match="no target job=nothing"):
        prom.wait_up("nothing", timeout=4)
    assert prom.wait_for_value('up{job="nothing"}') == 0
