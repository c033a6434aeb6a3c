"""Savepoints, stop-with-savepoint and resume through the real CLI against a standing cluster.

A keyed tumbling-window job over a deterministic, rate-limited generator runs three ways on one
`eddy cluster start`: uninterrupted (the reference), and interrupted — a savepoint, then
`eddy stop` (stop-with-savepoint) — and resumed with `eddy submit --from-savepoint`, once from the
stop's savepoint and once from the earlier one. Window results are keyed by (key, window_start):
the interrupted run's output together with a resumed run's must hold exactly the reference's
distinct results (every window, none computed differently). The file sink is at-least-once, so a
window may appear twice, but never with another value. Also: the CLI's errors for a savepoint that
does not exist, an unknown job and a job without a savepoint directory.
"""

import collections
import json
import time
from pathlib import Path

import pytest

from eddy_harness import Cluster

COUNT = 8000  # n = 0..7999, ts = n * 10 ms: 80 s of event time, 40 windows of 2 s per key
RATE = 1000  # records/s in total: about 8 s per run
KEYS = 5


def job_spec(out: Path, checkpoints: Path, savepoint_dir: Path | None, keys=KEYS, rate=RATE,
             count=COUNT, window="2s", parallelism=2, backend="heap", transactional=False) -> str:
    sp = f"savepointDir: {savepoint_dir}\n" if savepoint_dir else ""
    tx = ", transactional: true" if transactional else ""
    return f"""
name: sp-windows
parallelism: {parallelism}
stateBackend: {backend}
checkpointing: {{interval: 300ms, storage: "file://{checkpoints}"}}
{sp}sources:
  - name: events
    uid: events
    generator:
      fields: {{key: "'k' + (n % {keys})", ts: "n * 10", v: "n % 7"}}
      count: {count}
      rate: {rate}
    schema: {{key: string, ts: int64, v: int64}}
    timestamp: ts
    watermark: {{maxOutOfOrderness: 0ms, interval: 50ms}}
steps:
  - name: per_key
    uid: per-key-window
    from: events
    keyBy: [key]
    window: {{tumbling: {window}}}
    aggregate: {{n: "count()", total: "sum(v)"}}
sinks:
  - {{name: out, uid: out, from: per_key, file: {{path: {out}, format: json{tx}}}}}
"""


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "home").start(workers=2, slots=4)
    yield c
    c.stop()


def results(path: Path):
    """The window results of a JSON-lines file: a list of (key, window_start, window_end, n, total)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out.append((r["key"], r["window_start"], r["window_end"], r["n"], r["total"]))
    return out


def by_window(rows):
    """(key, window_start) -> the distinct results seen for it."""
    m = {}
    for r in rows:
        m.setdefault((r[0], r[1]), set()).add(r)
    return m


def test_savepoint_stop_and_resume_give_the_uninterrupted_result(cluster, tmp_path):
    chk = tmp_path / "checkpoints"
    sps = tmp_path / "savepoints"
    ref_out, a_out, b_out, c_out = (tmp_path / f"{n}.jsonl" for n in ("ref", "a", "b", "c"))
    ref_job, a_job, b_job, c_job = (tmp_path / f"{n}.yaml" for n in ("ref", "a", "b", "c"))
    ref_job.write_text(job_spec(ref_out, chk, None))
    for job, out in ((a_job, a_out), (b_job, b_out), (c_job, c_out)):
        job.write_text(job_spec(out, chk, sps))

    ref = cluster.submit(ref_job)
    a = cluster.submit(a_job)
    # Periodic checkpoints run: the first one completes.
    cluster.wait_until(lambda: cluster.get(f"/jobs/{a}/checkpoints")["counts"]["completed"] >= 1,
                       what="a completed checkpoint")

    # A savepoint into the job's savepointDir while it runs.
    r = cluster.eddy("savepoint", a, "--timeout", "60s")
    assert r.returncode == 0, r.stderr
    sp1 = r.stdout.strip()
    assert sp1.startswith(f"file://{sps}/savepoint-"), sp1
    assert Path(sp1.removeprefix("file://"), "_metadata").is_file()
    assert cluster.get(f"/jobs/{a}")["state"] == "RUNNING"

    # Some windows later: stop with a savepoint elsewhere. The job finishes.
    time.sleep(1.5)
    r = cluster.eddy("stop", a, "--savepoint-dir", tmp_path / "final", "--timeout", "60s")
    assert r.returncode == 0, r.stderr
    sp2 = r.stdout.strip()
    assert sp2.startswith(f"file://{tmp_path / 'final'}/savepoint-"), sp2
    assert cluster.get(f"/jobs/{a}")["state"] == "FINISHED"
    stats = cluster.get(f"/jobs/{a}/checkpoints")
    assert stats["latest"]["savepoint"]["external_path"] == sp2, stats
    assert stats["counts"]["completed"] >= 3, stats
    interrupted = results(a_out)
    assert interrupted, "windows closed before the stop"
    assert len(by_window(interrupted)) < KEYS * COUNT // 200, "the stop came before the end"

    # Resume from the stop's savepoint, and from the earlier one (which repeats some windows).
    b = cluster.submit(b_job, "--from-savepoint", sp2.removeprefix("file://"))
    c = cluster.submit(c_job, "--from-savepoint", sp1)
    for job in (ref, b, c):
        r = cluster.eddy("wait", job, "--timeout", "120s", timeout=150)
        assert r.returncode == 0 and r.stdout.strip() == "FINISHED", (job, r.stdout, r.stderr,
                                                                       cluster.log())
    restored = cluster.get(f"/jobs/{b}/checkpoints")
    assert restored["counts"]["restored"] == 1, restored
    assert restored["latest"]["restored"]["is_savepoint"] is True
    assert restored["latest"]["restored"]["external_path"] == sp2 + "/_metadata"

    reference = results(ref_out)
    expected = set(reference)
    windows = by_window(reference)
    assert len(windows) == KEYS * COUNT // 200, "every (key, window) once"
    assert len(reference) == len(expected)
    assert all(n == 200 // KEYS for (_, _, _, n, _) in reference), "complete windows"

    for name, resumed in (("stop savepoint", results(b_out)), ("earlier savepoint", results(c_out))):
        assert resumed, name
        union = interrupted + resumed
        seen = by_window(union)
        wrong = {w: v for w, v in seen.items() if v != {next(iter(windows[w]))}}
        assert not wrong, f"{name}: windows computed differently: {sorted(wrong.items())[:5]}"
        missing = sorted(set(windows) - set(seen))
        assert not missing, f"{name}: windows missing: {missing[:10]}"
        assert set(union) == expected, name
        # Windows that closed well before the savepoint are not emitted again by the resumed
        # job (one that fired between the barrier and the stop may be: at-least-once).
        resumed_windows = {(r[0], r[1]) for r in resumed}
        assert min(w[1] for w in resumed_windows) > min(w[1] for w in windows), name


def part_results(directory: Path):
    """The window results committed by a transactional sink: every visible part file's rows."""
    rows = []
    for p in sorted(directory.glob("part-*")):
        rows += results(p)
    return rows


def test_rescaling_round_trip_2_4_1_equals_the_uninterrupted_run(cluster, tmp_path):
    """Run at parallelism 2 (heap state), stop with a savepoint; resume at 4 (RocksDB state), stop
    with a savepoint; resume at 1 (heap) to the end. Keyed window state moves by key-group range,
    the generator's position is union state, the transactional sink's pending parts are union
    state: the committed output of the three runs is exactly the uninterrupted run's, every window
    once."""
    chk = tmp_path / "checkpoints"
    sps = tmp_path / "savepoints"
    ref_out = tmp_path / "ref"
    ref_job = tmp_path / "ref.yaml"
    ref_job.write_text(job_spec(ref_out, chk, None, transactional=True))
    stages = [(2, "heap"), (4, "rocksdb"), (1, "heap")]
    outs = [tmp_path / f"out-p{p}" for p, _ in stages]
    jobs = []
    for (par, backend), out in zip(stages, outs):
        job = tmp_path / f"p{par}.yaml"
        job.write_text(job_spec(out, chk, sps, parallelism=par, backend=backend,
                                transactional=True))
        jobs.append(job)

    ref = cluster.submit(ref_job)
    savepoint = None
    ran = []
    for i, job in enumerate(jobs):
        jid = cluster.submit(job, *(["--from-savepoint", savepoint] if savepoint else []))
        ran.append(jid)
        if i == len(jobs) - 1:
            break
        cluster.wait_until(lambda: cluster.get(f"/jobs/{jid}/checkpoints")["counts"]["completed"]
                           >= 1, what=f"a completed checkpoint of stage {i}")
        time.sleep(1.0)
        r = cluster.eddy("stop", jid, "--timeout", "60s")
        assert r.returncode == 0, r.stderr + cluster.log()
        savepoint = r.stdout.strip()
        assert savepoint.startswith(f"file://{sps}/savepoint-"), savepoint
        assert cluster.get(f"/jobs/{jid}")["state"] == "FINISHED"
        vertices = cluster.get(f"/jobs/{jid}")["vertices"]
        assert all(v["parallelism"] == stages[i][0] for v in vertices), vertices
    for jid in (ref, ran[-1]):
        r = cluster.eddy("wait", jid, "--timeout", "120s", timeout=150)
        assert r.returncode == 0 and r.stdout.strip() == "FINISHED", (jid, r.stdout, r.stderr,
                                                                       cluster.log())
    assert cluster.get(f"/jobs/{ran[-1]}/checkpoints")["counts"]["restored"] == 1

    reference = part_results(ref_out)
    assert len(reference) == KEYS * COUNT // 200, "every (key, window) once"
    assert all(n == 200 // KEYS for (_, _, _, n, _) in reference), "complete windows"
    per_stage = [part_results(out) for out in outs]
    for (par, backend), rows in zip(stages, per_stage):
        assert rows, f"stage at parallelism {par} ({backend}) produced windows"
    combined = [r for rows in per_stage for r in rows]
    dups = [w for w, n in collections.Counter((r[0], r[1]) for r in combined).items() if n > 1]
    assert not dups, f"windows committed twice: {sorted(dups)[:10]}"
    assert sorted(combined) == sorted(reference), (
        f"missing {sorted(set(reference) - set(combined))[:10]}, "
        f"unexpected {sorted(set(combined) - set(reference))[:10]}")
    # Nothing is left staged in any of the sink directories.
    for out in outs + [ref_out]:
        assert not [p.name for p in out.iterdir() if ".inprogress" in p.name], list(out.iterdir())


def test_stop_with_drain_fires_every_window_and_finishes(cluster, tmp_path):
    out = tmp_path / "drained.jsonl"
    job = tmp_path / "job.yaml"
    # Many keys: the savepoint's uploads take a while, and the drained tasks end before they are
    # acknowledged; the job must still wait for the savepoint.
    job.write_text(job_spec(out, tmp_path / "checkpoints", tmp_path / "savepoints", keys=20000,
                            rate=20000, count=COUNT * 100, window="1h"))
    jid = cluster.submit(job)
    cluster.wait_until(lambda: cluster.get(f"/jobs/{jid}")["state"] == "RUNNING"
                       and all(v["status"] == "RUNNING"
                               for v in cluster.get(f"/jobs/{jid}")["vertices"]),
                       what="every task running")
    time.sleep(1.0)
    r = cluster.eddy("stop", "--drain", jid, "--timeout", "60s")
    assert r.returncode == 0, r.stderr + cluster.log()
    assert r.stdout.strip().startswith(f"file://{tmp_path / 'savepoints'}/savepoint-")
    assert cluster.get(f"/jobs/{jid}")["state"] == "FINISHED"
    rows = results(out)
    assert rows
    # Draining fired the open (hour-long) window: every record the sources read before the stop
    # is counted in the output, none after it.
    read = cluster.get(f"/jobs/{jid}")["vertices"][0]["metrics"]["write-records"]
    assert sum(r[3] for r in rows) == read, (sum(r[3] for r in rows), read)


def test_cli_errors(cluster, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(job_spec(tmp_path / "out.jsonl", tmp_path / "checkpoints", None))
    missing = tmp_path / "no-such-savepoint"

    # eddy run: the savepoint is read before any worker starts.
    r = cluster.eddy("run", job, "--workers", "1", "--from-savepoint", missing, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "--from-savepoint" in r.stderr and str(missing) in r.stderr, r.stderr
    assert "No such file" in r.stderr, r.stderr
    r = cluster.eddy("run", job, "--from-savepoint", missing, timeout=60)
    assert r.returncode == 2, r.stderr
    assert str(missing) in r.stderr, r.stderr

    # eddy submit: the cluster refuses the job.
    r = cluster.eddy("submit", job, "--from-savepoint", missing)
    assert r.returncode == 2, r.stderr
    assert str(missing) in r.stderr, r.stderr
    assert cluster.get("/jobs")["jobs"] == [], "nothing was submitted"

    r = cluster.eddy("savepoint", "0" * 32)
    assert r.returncode == 1 and "not found" in r.stderr, r.stderr
    r = cluster.eddy("stop", "0" * 32)
    assert r.returncode == 1 and "not found" in r.stderr, r.stderr
    r = cluster.eddy("stop")
    assert r.returncode == 2 and "job id" in r.stderr, r.stderr
    r = cluster.eddy("run", job, "--checkpoint-interval", "often")
    assert r.returncode == 2 and "--checkpoint-interval" in r.stderr, r.stderr

    # A job without savepointDir and no directory given: refused, naming the fix.
    jid = cluster.submit(job)
    cluster.wait_until(lambda: cluster.get(f"/jobs/{jid}")["state"] == "RUNNING",
                       what="the job running")
    r = cluster.eddy("savepoint", jid, "--timeout", "30s")
    assert r.returncode == 2, r.stderr
    assert "savepointDir" in r.stderr, r.stderr
    assert cluster.eddy("cancel", jid).returncode == 0
