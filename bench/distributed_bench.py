#!/usr/bin/env python3
"""Single-process vs local-cluster throughput, and end-to-end latency on the cluster.

  python3 bench/distributed_bench.py [--records N] [--eddy build/operator/eddy]

For each job (100-byte generator records; parallelism 2): `eddy run` (one process, the baseline of
the same invocation) and `eddy run --workers 2 --slots 1` (two worker processes, every exchange
over ZeroMQ). Throughput is records per second of wall time and per CPU-second of all processes
(the CLI and its workers, from RUSAGE_CHILDREN). Then the chain job runs on the cluster at half
the measured cluster throughput with latency markers every 100 ms and a 10 ms buffer timeout;
p50/p99 come from the workers' eddy_latency_seconds histograms.
"""

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PAD = "'" + "x" * 76 + "'"

JOBS = {
    "rebalance chain": """
name: bench-chain
parallelism: 2
{extra}
sources:
  - name: gen
    generator: {{fields: {{key: "n % 100000", ts: "n", v: "n % 1000", pad: "{pad}"}}, count: {count}{rate}}}
    schema: {{key: int64, ts: int64, v: int64, pad: string}}
steps:
  - {{name: spread, from: gen, partition: rebalance}}
  - {{name: kept, from: spread, filter: "v % 2 = 0"}}
sinks:
  - {{name: out, from: kept, discard: {{}}}}
""",
    "keyed tumbling 10s": """
name: bench-tumble
parallelism: 2
sources:
  - name: gen
    generator: {{fields: {{key: "n % 100000", ts: "n", v: "n % 1000", pad: "{pad}"}}, count: {count}}}
    schema: {{key: int64, ts: int64, v: int64, pad: string}}
    timestamp: "ts"
    watermark: {{maxOutOfOrderness: 1s}}
steps:
  - name: agg
    from: gen
    keyBy: [key]
    window: {{tumbling: 10s}}
    aggregate: {{n: "count()", total: "sum(v)"}}
sinks:
  - {{name: out, from: agg, discard: {{}}}}
""",
}


def run(eddy, args, job_text, tmp):
    job = Path(tmp) / "job.yaml"
    job.write_text(job_text)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run([eddy, "run", "--quiet", *args, str(job)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"eddy {' '.join(args)} failed:\n{p.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def quantile(buckets, count, q):
    """Upper bound of the bucket holding quantile q (cumulative (le, count) pairs)."""
    target = q * count
    for le, c in buckets:
        if c >= target:
            return le
    return float("inf")


def latency(eddy, rate, seconds, tmp):
    job = Path(tmp) / "latency.yaml"
    job.write_text(JOBS["rebalance chain"].format(
        pad=PAD, count=int(rate * seconds), rate=f", rate: {int(rate)}",
        extra="latencyTrackingInterval: 100ms\nbufferTimeout: 10ms"))
    p = subprocess.Popen([eddy, "run", "--workers", "2", "--slots", "1", str(job)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: [lines.append(l) for l in p.stderr], daemon=True).start()
    time.sleep(seconds * 0.8)
    buckets, count = {}, 0.0
    for m in re.finditer(r"metrics at (http://\S+/metrics)", "".join(lines)):
        text = urllib.request.urlopen(m.group(1), timeout=5).read().decode()
        for line in text.splitlines():
            b = re.match(r'eddy_latency_seconds_bucket\{.*le="([^"]+)".*\} (\S+)', line)
            if b:
                le = float(b.group(1))
                buckets[le] = buckets.get(le, 0.0) + float(b.group(2))
            c = re.match(r"eddy_latency_seconds_count\{.*\} (\S+)", line)
            if c:
                count += float(c.group(1))
    p.wait(timeout=seconds * 3 + 60)
    cum = sorted(buckets.items())
    return quantile(cum, count, 0.5), quantile(cum, count, 0.99), int(count)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=4_000_000)
    ap.add_argument("--eddy", default=str(Path(__file__).resolve().parents[1] / "build/operator/eddy"))
    ap.add_argument("--latency-seconds", type=int, default=20)
    a = ap.parse_args()
    print(f"{a.records} records of 100 bytes, parallelism 2, one run each\n")
    print("| job | layout | rec/s (wall) | rec/s per core | vs single-process per core |")
    print("|---|---|---:|---:|---:|")
    cluster_rate = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in JOBS.items():
            spec = text.format(pad=PAD, count=a.records, rate="", extra="")
            base = None
            for layout, args in (("single process", []),
                                 ("2 workers x 1 slot", ["--workers", "2", "--slots", "1"])):
                wall, cpu = run(a.eddy, args, spec, tmp)
                per_core = a.records / cpu
                base = base or per_core
                print(f"| {name} | {layout} | {a.records / wall / 1e6:.2f} M | "
                      f"{per_core / 1e6:.2f} M | {per_core / base:.2f}x |")
                if name == "rebalance chain" and args:
                    cluster_rate = a.records / wall
        p50, p99, n = latency(a.eddy, cluster_rate / 2, a.latency_seconds, tmp)
    print(f"\nlatency at {cluster_rate / 2 / 1e6:.2f} M rec/s (50% of the cluster's chain throughput), "
          f"10 ms buffer timeout, {n} markers: p50 <= {p50 * 1000:.1f} ms, p99 <= {p99 * 1000:.1f} ms "
          "(histogram bucket upper bounds)")


if __name__ == "__main__":
    main()
