"""Back-pressure holds memory (eddy run --workers 2 --slots 1).

An unbounded generator pushes as fast as it can through a rebalance exchange to a sink in another
worker process that sleeps 1 ms per record. For EDDY_BACKPRESSURE_SECONDS (default 60) the test
samples both workers' resident memory: it must stay within the network buffer pool plus a fixed
bound and must not grow, and the source task must report being back-pressured most of the time.
"""

import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

BIN = Path(os.environ.get("EDDY_BINARY_DIR", Path(__file__).resolve().parents[2] / "build"))
EDDY = BIN / "operator" / "eddy"
SECONDS = int(os.environ.get("EDDY_BACKPRESSURE_SECONDS", "60"))
BUFFER = 32 * 1024
POOL_BUFFERS = 2048  # ProcessLauncher's default per worker
FIXED_BOUND = 96 << 20  # code, heap, ZeroMQ, threads: independent of how long the job runs
GROWTH_BOUND = 16 << 20

JOB = """
name: backpressure
parallelism: 1
sources:
  - name: numbers
    generator: {fields: {n: "n", pad: "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"}}
    schema: {n: int64, pad: string}
steps:
  - {name: spread, from: numbers, partition: rebalance}
sinks:
  - {name: slow, from: spread, discard: {delayPerRecord: 1ms}, slotSharingGroup: sink}
"""


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def metric(url: str, name: str, containing: str = "") -> float:
    """Sum of the samples of `name` whose label set contains `containing`."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if containing in line.rsplit(" ", 1)[0]:
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} with {containing!r} not in {url}:\n{text}"
    return total


def test_a_slow_sink_back_pressures_the_source_and_memory_stays_bounded(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(JOB)
    proc = subprocess.Popen([str(EDDY), "run", "--workers", "2", "--slots", "1", str(job)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    lines = []

    def read():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("deploying to" in l for l in lines):
            time.sleep(0.1)
        log = "\n".join(lines)
        pids = {m.group(1): int(m.group(2)) for m in
                re.finditer(r"worker (worker-\d) registered \(.*pid (\d+)\)", log)}
        metrics = {m.group(1): m.group(2) for m in
                   re.finditer(r"eddy-worker\[(worker-\d)\]: metrics at (http://\S+/metrics)", log)}
        assert len(pids) == 2 and len(metrics) == 2, log
        source_url = next(u for u in metrics.values()
                          if "Source: numbers" in urllib.request.urlopen(u, timeout=5).read().decode())

        def backpressured_seconds():
            return metric(source_url, "eddy_task_backpressured_seconds_total", "Source: numbers")

        samples = {w: [] for w in pids}
        start = time.monotonic()
        mark = None
        while time.monotonic() - start < SECONDS:
            for w, pid in pids.items():
                samples[w].append((time.monotonic() - start, rss_bytes(pid)))
            if mark is None and time.monotonic() - start >= SECONDS / 3:
                mark = (time.monotonic(), backpressured_seconds())
            time.sleep(1)
        # Share of the wall time the source spent blocked on buffers since the mark.
        bp_share = (backpressured_seconds() - mark[1]) / (time.monotonic() - mark[0])
        print(f"source back-pressured {bp_share:.0%} of the time")
        # Which worker runs the source: the one whose source task reports records out.
        ratios = {}
        for w, url in metrics.items():
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            if "Source: numbers" in text:
                ratios[w] = metric(url, "eddy_task_backpressured_time_ratio", "Source: numbers")
            else:
                sink_in = metric(url, "eddy_task_records_in_total", "Discard(slow)")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "\n".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    bound = POOL_BUFFERS * BUFFER + FIXED_BOUND
    for w, s in samples.items():
        peak = max(r for _, r in s)
        assert peak <= bound, f"{w}: peak RSS {peak >> 20} MiB > {bound >> 20} MiB"
        settled = [r for t, r in s if t >= min(10, SECONDS / 3)]
        assert max(settled) - min(settled) <= GROWTH_BOUND, \
            f"{w}: RSS grew {(max(settled) - min(settled)) >> 20} MiB: {s}"
    assert ratios and max(ratios.values()) > 0, f"source back-pressure ratio gauges {ratios}"
    assert bp_share >= 0.5, f"the source was back-pressured {bp_share:.0%} of the time"
    # The sink really was the bottleneck: about one record per millisecond went through.
    assert SECONDS * 300 <= sink_in <= SECONDS * 1100 + 5000, sink_in
