"""Checkpoints to `s3://` through a real S3-compatible server (moto) behind a FaultProxy, on a
standing `eddy cluster start` with two worker processes.

- An outage of the object store for 20 s mid-job (connections refused, as if the server were
  stopped): checkpoints fail and are counted, the job keeps processing without a restart, and the
  first checkpoint after the store comes back completes; its `_metadata` is in the bucket.
- A job that fails over restores from the checkpoint in the bucket and loses nothing.
"""

import collections
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from eddy_harness import Cluster
from s3_harness import FaultProxy, S3Server

KEYS = 5


@pytest.fixture(scope="module")
def s3():
    with S3Server(bucket="eddy-chk") as server:
        yield server


@pytest.fixture
def proxy(s3):
    with FaultProxy(s3.host, s3.port) as p:
        yield p


@pytest.fixture
def cluster(tmp_path, s3, proxy):
    env = dict(s3.env(endpoint=proxy.endpoint), HOME="/nonexistent-eddy-home")
    c = Cluster(tmp_path / "home", env).start(workers=2, slots=2)
    yield c
    c.stop()


def counts(cluster, jid):
    return cluster.get(f"/jobs/{jid}/checkpoints")["counts"]


def job_spec(out: Path, storage: str, count: int, rate: int) -> str:
    return f"""
name: s3-checkpoints
parallelism: 2
checkpointing: {{interval: 500ms, storage: "{storage}", timeout: 30s}}
restartStrategy: {{type: fixed-delay, attempts: 10, delay: 200ms}}
sources:
  - name: events
    generator:
      fields: {{key: "'k' + (n % {KEYS})", ts: "n", v: "n % 7"}}
      count: {count}
      rate: {rate}
    schema: {{key: string, ts: int64, v: int64}}
    timestamp: ts
steps:
  - name: per_key
    from: events
    keyBy: [key]
    window: {{tumbling: 1s}}
    aggregate: {{n: "count()", total: "sum(v)"}}
sinks:
  - {{name: out, from: per_key, file: {{path: {out}, format: json}}}}
"""


def expected(count):
    acc = collections.defaultdict(lambda: [0, 0])
    for n in range(count):
        a = acc[(f"k{n % KEYS}", n // 1000 * 1000)]
        a[0] += 1
        a[1] += n % 7
    return {k: tuple(v) for k, v in acc.items()}


def results(path: Path):
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [((r["key"], r["window_start"]), (r["n"], r["total"])) for r in rows]


def test_object_store_outage_fails_checkpoints_but_not_the_job(cluster, s3, proxy, tmp_path):
    out = tmp_path / "out.jsonl"
    rate, count = 2000, 2000 * 40  # 40 s of input
    prefix = "outage"
    job = tmp_path / "job.yaml"
    job.write_text(job_spec(out, s3.uri(prefix), count, rate))
    r = cluster.eddy("submit", job)
    assert r.returncode == 0, r.stderr
    jid = r.stdout.strip()
    cluster.wait_until(lambda: counts(cluster, jid)["completed"] >= 2, what="two checkpoints")
    before = counts(cluster, jid)

    # The store goes away for 20 s: every connection is refused.
    proxy.set_mode("refuse")
    down_at = time.monotonic()
    rows_at_start = len(results(out))
    time.sleep(20)
    during = counts(cluster, jid)
    rows_at_end = len(results(out))
    state = cluster.get(f"/jobs/{jid}")
    proxy.set_mode("pass")
    up_at = time.monotonic()

    assert state["state"] == "RUNNING", state
    assert during["failed"] > before["failed"], (before, during, cluster.log())
    assert during["completed"] <= before["completed"] + 1, (
        "at most the checkpoint in flight when the store went down completes", before, during)
    assert rows_at_end > rows_at_start, "windows kept coming while the store was down"
    stats = cluster.get(f"/jobs/{jid}/checkpoints")
    failure = stats["latest"]["failed"]
    assert failure and failure["failure_message"], stats
    assert re.search(r"s3://eddy-chk/outage|127\.0\.0\.1|connect", failure["failure_message"],
                     re.I), failure

    # The first checkpoint after the store is back completes.
    cluster.wait_until(lambda: counts(cluster, jid)["completed"] > during["completed"], timeout=30,
                       what="a checkpoint after the outage")
    recovered_after = time.monotonic() - up_at
    latest = cluster.get(f"/jobs/{jid}/checkpoints")["latest"]["completed"]
    keys = s3.keys(prefix)
    assert any(k.endswith(f"chk-{latest['id']}/_metadata") for k in keys), (latest, keys[:20])

    r = cluster.eddy("wait", jid, "--timeout", "120s", timeout=150)
    assert r.returncode == 0 and r.stdout.strip() == "FINISHED", (r.stdout, r.stderr,
                                                                   cluster.log())
    job_info = cluster.get(f"/jobs/{jid}")
    assert job_info["restarts"] == 0, job_info
    assert dict(results(out)) == expected(count), "nothing lost, no restart"
    assert len(results(out)) == len(expected(count)), "no window twice: the job never restarted"
    print(f"outage {up_at - down_at:.0f} s: failed {during['failed'] - before['failed']}"
          f" checkpoints, first completed {recovered_after:.1f} s after the store came back")


def test_failover_restores_from_the_bucket(cluster, s3, tmp_path):
    out = tmp_path / "out"
    rate, count = 5000, 5000 * 8
    prefix = "failover"
    job = tmp_path / "job.yaml"
    job.write_text(job_spec(out, s3.uri(prefix), count, rate).replace(
        "format: json}", "format: json, transactional: true}"))
    r = cluster.eddy("submit", job)
    assert r.returncode == 0, r.stderr
    jid = r.stdout.strip()
    cluster.wait_until(lambda: counts(cluster, jid)["completed"] >= 2, what="two checkpoints")
    workers = re.findall(r"worker (worker-\d+) registered \(.*pid (\d+)\)", cluster.log())
    assert workers, cluster.log()
    os.kill(int(workers[0][1]), signal.SIGKILL)
    r = cluster.eddy("wait", jid, "--timeout", "120s", timeout=150)
    assert r.returncode == 0 and r.stdout.strip() == "FINISHED", (r.stdout, r.stderr,
                                                                   cluster.log())
    assert counts(cluster, jid)["restored"] >= 1, cluster.get(f"/jobs/{jid}/checkpoints")
    rows = []
    for p in sorted(out.glob("part-*")):
        rows += results(p)
    assert len(rows) == len(expected(count)), "every window once"
    assert dict(rows) == expected(count)
