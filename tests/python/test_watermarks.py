"""Watermarks across processes (eddy run --workers 3 --slots 2).

A fast parallel generator and a slow socket source (driven by this test) are unioned and
windowed. Windows fire only when the slowest input's watermark passes their end; an idle source
with `idleness` configured does not hold them back, one without it does.
"""

import json
import socket
import time
from pathlib import Path

from eddy_harness import EddyProcess


def spec(port: int, idleness: str, fast_count: int) -> str:
    idle = f", idleness: {idleness}" if idleness else ""
    return f"""
name: slow-and-fast
parallelism: 3
sources:
  - name: fast
    generator: {{fields: {{k: "'k'", ts: "n * 10"}}, count: {fast_count}}}
    schema: {{k: string, ts: int64}}
    timestamp: "ts"
    watermark: {{maxOutOfOrderness: 0ms, interval: 50ms}}
  - name: slow
    socket: {{host: 127.0.0.1, port: {port}, format: csv}}
    schema: {{k: string, ts: int64}}
    timestamp: "ts"
    watermark: {{maxOutOfOrderness: 0ms, interval: 50ms{idle}}}
steps:
  - {{name: both, from: fast, union: [slow]}}
  - name: per_second
    from: both
    keyBy: [k]
    window: {{tumbling: 1s}}
    aggregate: {{n: "count()"}}
sinks:
  - {{name: out, from: per_second, print: {{}}}}
"""


class Job(EddyProcess):
    def __init__(self, job: Path, cwd: Path):
        super().__init__(["run", "--workers", "3", "--slots", "2", str(job)], cwd,
                         capture_stdout=True)

    def window_ends(self):
        with self.cv:
            return sorted(json.loads(l)["window_end"] for l in self.out if l.startswith("{"))


def serve_once():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    return srv, srv.getsockname()[1]


def test_windows_wait_for_the_slowest_source(tmp_path):
    srv, port = serve_once()
    job = tmp_path / "job.yaml"
    # The fast source covers [0 s, 10 s) at once, then ends (its watermark jumps to the end).
    job.write_text(spec(port, idleness="", fast_count=1000))
    j = Job(job, tmp_path)
    try:
        srv.settimeout(30)
        conn, _ = srv.accept()
        time.sleep(1.5)
        assert j.window_ends() == [], "windows fired before the slow source said anything\n" + j.log()
        conn.sendall(b"k,2500\n")  # slow watermark 2499: windows ending at 1 s and 2 s may fire
        assert j.wait_until(lambda: j.window_ends() == [1000, 2000], 20), j.log()
        time.sleep(1.0)
        assert j.window_ends() == [1000, 2000], "a window fired ahead of the slow watermark\n" + j.log()
        conn.sendall(b"k,6100\n")
        assert j.wait_until(lambda: j.window_ends() == [1000, 2000, 3000, 4000, 5000, 6000], 20), j.log()
        time.sleep(1.0)
        assert j.window_ends()[-1] == 6000, j.log()
        conn.close()  # end of the slow input: everything fires
        assert j.proc.wait(timeout=60) == 0, j.log()
    finally:
        srv.close()
        if j.proc.poll() is None:
            j.proc.kill()
    j.wait_until(lambda: len(j.window_ends()) >= 10, 5)
    counts = {json.loads(l)["window_end"]: json.loads(l)["n"] for l in j.out if l.startswith("{")}
    # 100 fast records per second, plus the two slow ones in [2 s, 3 s) and [6 s, 7 s).
    assert counts[3000] == 101 and counts[7000] == 101 and counts[1000] == 100, counts


def test_an_idle_source_does_not_hold_windows_back(tmp_path):
    srv, port = serve_once()
    job = tmp_path / "job.yaml"
    job.write_text(spec(port, idleness="500ms", fast_count=1000))
    j = Job(job, tmp_path)
    try:
        srv.settimeout(30)
        conn, _ = srv.accept()
        # The slow source stays silent; marked idle, it is excluded and all ten windows fire.
        assert j.wait_until(lambda: len(j.window_ends()) == 10, 20), j.log()
        assert j.proc.poll() is None, "the job must still be running (the socket is open)"
        conn.close()
        assert j.proc.wait(timeout=60) == 0, j.log()
    finally:
        srv.close()
        if j.proc.poll() is None:
            j.proc.kill()


def test_without_idleness_a_silent_source_holds_windows_back(tmp_path):
    srv, port = serve_once()
    job = tmp_path / "job.yaml"
    job.write_text(spec(port, idleness="", fast_count=1000))
    j = Job(job, tmp_path)
    try:
        srv.settimeout(30)
        conn, _ = srv.accept()
        time.sleep(3)
        assert j.window_ends() == [], j.log()
        conn.close()
        assert j.wait_until(lambda: len(j.window_ends()) == 10, 20), j.log()
        assert j.proc.wait(timeout=60) == 0, j.log()
    finally:
        srv.close()
        if j.proc.poll() is None:
            j.proc.kill()
