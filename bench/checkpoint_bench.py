#!/usr/bin/env python3
"""What fault tolerance costs: throughput with checkpoints every second, and recovery time.

  python3 bench/checkpoint_bench.py [--reps 3] [--part throughput|recovery|all]
                                    [--eddy build/operator/eddy]

(1) Throughput loss. A keyed tumbling-window job (100k keys, 10 s windows, count + sum; 100-byte
generator records, parallelism 2) runs on `eddy run --workers 2 --slots 1` with checkpoints off
(the baseline of the same invocation) and every 1 s (exactly-once, file:// storage), per state
backend; runs alternate (off, 1 s, off, 1 s, ...). Throughput = records / wall seconds of the
job (from the control plane's "finished in N ms" line). Reported: the median of the per-pair ratios
(1 s / off) and their range, and the checkpoints completed per run.

(2) Recovery time. A keyed rolling count (every record updates its key's state and writes a row),
rate-limited, checkpoints every 1 s, parallelism 2 on 3 workers x 2 slots (a free slot is there
at once). After some checkpoints, a worker running tasks is SIGKILLed; measured: kill -> the control
plane logs the loss (detection), kill -> the restarted attempt deploys, and kill -> the first row
the restored attempt writes to the output file. With the default restart strategy
(exponential-delay, 1 s initial delay) and with `fixed-delay` 0 ms (the engine's own time).
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PAD = "'" + "x" * 76 + "'"

THROUGHPUT_JOB = """
name: bench-checkpoints
parallelism: 2
stateBackend: {backend}
{checkpointing}
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
"""

RECOVERY_JOB = """
name: bench-recovery
parallelism: 2
stateBackend: {backend}
checkpointing: {{interval: 1s, storage: "file://{store}"}}
{restart}
sources:
  - name: gen
    generator: {{fields: {{key: "n % 1000", v: "n"}}, count: {count}, rate: {rate}}}
    schema: {{key: int64, v: int64}}
steps:
  - {{name: counts, from: gen, keyBy: [key], aggregate: {{n: "count()"}}}}
sinks:
  - {{name: out, from: counts, file: {{path: {out}, format: json}}}}
"""


class Run:
    """`eddy run ARGS job` with stderr collected line by line (with arrival times)."""

    def __init__(self, eddy, args, job, env=None):
        self.proc = subprocess.Popen([eddy, "run", *args, str(job)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []  # (monotonic time, line)
        self.cv = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cv:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cv.notify_all()

    def wait_for(self, pattern, after=0.0, timeout=60.0):
        """(time, match) of the first line matching `pattern` that arrived at or after `after`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, line in self.lines:
                    if t >= after:
                        m = rx.search(line)
                        if m:
                            return t, m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    sys.exit(f"no line matching {pattern!r}:\n" + self.log())
                self.cv.wait(min(left, 0.05))

    def finish(self, timeout=600):
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        if rc != 0:
            sys.exit(f"eddy run failed ({rc}):\n{self.log()}")

    def log(self):
        with self.cv:
            return "\n".join(line for _, line in self.lines[-60:])


def throughput(eddy, backend, count, interval, tmp):
    store = Path(tmp) / f"chk-{backend}-{time.monotonic_ns()}"
    cp = (f'checkpointing: {{interval: {interval}, storage: "file://{store}"}}'
          if interval else "")
    job = Path(tmp) / "throughput.yaml"
    job.write_text(THROUGHPUT_JOB.format(backend=backend, checkpointing=cp, pad=PAD, count=count))
    env = dict(os.environ, TMPDIR=str(tmp))
    r = Run(eddy, ["--workers", "2", "--slots", "1"], job, env)
    r.finish()
    _, m = r.wait_for(r"finished in (\d+) ms")
    seconds = int(m.group(1)) / 1000.0
    checkpoints = 0
    if interval:
        ids = [int(p.name[4:]) for p in store.glob("*/chk-*")]
        checkpoints = max(ids, default=0)
    return count / seconds, checkpoints


def recovery(eddy, backend, restart, tmp, rate=20000):
    base = Path(tmp) / f"rec-{backend}-{time.monotonic_ns()}"
    base.mkdir()
    out = base / "out.jsonl"
    job = base / "job.yaml"
    job.write_text(RECOVERY_JOB.format(backend=backend, store=base / "chk", restart=restart,
                                       count=rate * 20, rate=rate, out=out))
    env = dict(os.environ, TMPDIR=str(base))
    r = Run(eddy, ["--workers", "3", "--slots", "2"], job, env)
    r.wait_for(r"attempt 1 deploying to (.*)")
    # A few checkpoints in.
    deadline = time.monotonic() + 30
    while len(list((base / "chk").glob("*/chk-*/_metadata"))) < 3:
        if time.monotonic() > deadline:
            sys.exit("no checkpoints:\n" + r.log())
        time.sleep(0.05)
    _, dep = r.wait_for(r"attempt 1 deploying to (.*)")
    victim_id = dep.group(1).split(",")[0].strip()
    pids = {w: int(p) for w, p in re.findall(r"worker (worker-\d+) registered \(.*pid (\d+)\)",
                                              r.log())}
    victim = pids[victim_id]
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    detected, _ = r.wait_for(rf"worker {victim_id} lost", after=killed - 1)
    deployed, _ = r.wait_for(r"attempt 2 deploying", after=killed - 1)
    restored_size = out.stat().st_size
    first = None
    while time.monotonic() - killed < 60:
        if out.stat().st_size > restored_size:
            first = time.monotonic()
            break
        time.sleep(0.002)
    r.proc.send_signal(signal.SIGINT)
    try:
        r.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        r.proc.kill()
    if first is None:
        sys.exit("no output after the restart:\n" + r.log())
    return detected - killed, deployed - killed, first - killed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--part", choices=["throughput", "recovery", "all"], default="all")
    ap.add_argument("--heap-records", type=int, default=12_000_000)
    ap.add_argument("--rocksdb-records", type=int, default=2_000_000)
    ap.add_argument("--eddy", default=str(Path(__file__).resolve().parents[1] / "build/operator/eddy"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="eddy-cpbench-") as tmp:
        if a.part in ("throughput", "all"):
            print("### Throughput with checkpoints every 1 s vs none "
                  f"(2 workers x 1 slot, {a.reps} alternating pairs)\n")
            print("| state backend | records | off: rec/s (median) | 1 s: rec/s (median) | "
                  "1 s / off (median of pairs, range) | checkpoints per run |")
            print("|---|---:|---:|---:|---|---|")
            for backend, count in (("heap", a.heap_records), ("rocksdb", a.rocksdb_records)):
                off, on, ratios, cps = [], [], [], []
                for _ in range(a.reps):
                    o, _ = throughput(a.eddy, backend, count, None, tmp)
                    c, n = throughput(a.eddy, backend, count, "1s", tmp)
                    off.append(o)
                    on.append(c)
                    ratios.append(c / o)
                    cps.append(n)
                print(f"| {backend} | {count / 1e6:g} M | {statistics.median(off) / 1e3:.0f} k | "
                      f"{statistics.median(on) / 1e3:.0f} k | **{statistics.median(ratios):.3f}** "
                      f"({min(ratios):.3f}-{max(ratios):.3f}) | {', '.join(map(str, cps))} |",
                      flush=True)
            print()
        if a.part in ("recovery", "all"):
            print(f"### Recovery from SIGKILL of a worker ({a.reps} runs each, median and range)\n")
            print("| state backend | restart strategy | detected | redeployed | first new output |")
            print("|---|---|---|---|---|")
            strategies = (("default (exponential-delay, 1 s initial)", ""),
                          ("fixed-delay 0 ms",
                           "restartStrategy: {type: fixed-delay, attempts: 10, delay: 0ms}"))
            for backend in ("heap", "rocksdb"):
                for sname, restart in strategies:
                    got = [recovery(a.eddy, backend, restart, tmp) for _ in range(a.reps)]

                    def cell(i):
                        xs = [g[i] for g in got]
                        return (f"{statistics.median(xs):.2f} s "
                                f"({min(xs):.2f}-{max(xs):.2f})")

                    print(f"| {backend} | {sname} | {cell(0)} | {cell(1)} | **{cell(2)}** |",
                          flush=True)


if __name__ == "__main__":
    main()
