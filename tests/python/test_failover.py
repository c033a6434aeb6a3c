"""Failure handling of the distributed runtime through the real binaries.

A worker process killed with SIGKILL mid-job makes the JobMaster restart the job per its restart
strategy on a replacement worker; the job finishes, the log names the lost worker, and the file
sink holds exactly one copy of every record (a restart without checkpoints reruns from scratch,
and each attempt starts the output afresh). Garbage on the control port is counted and dropped.
"""

import os
import re
import signal
import socket
import time

from pathlib import Path

from eddy_harness import EddyProcess


def job_spec(out: Path, count: int, rate: int) -> str:
    return f"""
name: failover
parallelism: 3
sources:
  - name: numbers
    generator: {{fields: {{n: "n"}}, count: {count}, rate: {rate}}}
    schema: {{n: int64}}
steps:
  - {{name: spread, from: numbers, partition: rebalance}}
  - {{name: tagged, from: spread, map: {{n: n, sq: "n * n"}}}}
sinks:
  - {{name: out, from: tagged, file: {{path: {out}, format: csv}}}}
"""


def test_killed_worker_restarts_the_job_which_then_finishes(tmp_path):
    out = tmp_path / "out.csv"
    job = tmp_path / "job.yaml"
    count = 40000
    job.write_text(job_spec(out, count, rate=8000))  # about 5 s
    c = EddyProcess(["run", "--workers", "3", "--slots", "2", "--restart-strategy", "fixed-delay",
                 str(job)], tmp_path)
    try:
        m = c.wait_for(r"worker (worker-2) registered \(.*pid (\d+)\)")
        victim, pid = m.group(1), int(m.group(2))
        c.wait_for(r"attempt 1 deploying to .*worker-2")
        time.sleep(1.5)
        os.kill(pid, signal.SIGKILL)
        rc = c.finish()
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
    log = c.log()
    assert rc == 0, log
    assert re.search(rf"worker {victim} lost: process {pid} killed by signal 9 \(SIGKILL\)", log), log
    assert re.search(r"restarting in \d+ ms \(restart 1, fixed-delay\)", log), log
    assert re.search(r"attempt 2 deploying to", log), log
    assert re.search(r"finished in \d+ ms after 1 restart\(s\)", log), log
    # The replacement worker took the lost one's place.
    assert re.search(r"worker worker-4 registered", log), log
    lines = out.read_text().splitlines()
    assert len(lines) == count, f"{len(lines)} lines"
    assert sorted(int(l.split(",")[0]) for l in lines) == list(range(count))


def test_no_restart_strategy_fails_the_job_naming_the_lost_worker(tmp_path):
    out = tmp_path / "out.csv"
    job = tmp_path / "job.yaml"
    job.write_text(job_spec(out, 40000, rate=8000))
    c = EddyProcess(["run", "--workers", "2", "--slots", "2", "--restart-strategy", "none", str(job)],
                tmp_path)
    try:
        m = c.wait_for(r"worker (worker-1) registered \(.*pid (\d+)\)")
        c.wait_for(r"attempt 1 deploying to .*worker-1")
        time.sleep(1.0)
        os.kill(int(m.group(2)), signal.SIGKILL)
        rc = c.finish()
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
    log = c.log()
    assert rc == 1, log
    assert re.search(r"failed: worker worker-1 lost: process \d+ killed by signal 9", log), log


def test_garbage_on_the_control_port_is_logged_and_dropped(tmp_path):
    out = tmp_path / "out.csv"
    job = tmp_path / "job.yaml"
    job.write_text(job_spec(out, 20000, rate=10000))  # about 2 s
    c = EddyProcess(["run", "--workers", "2", "--slots", "2", str(job)], tmp_path)
    try:
        m = c.wait_for(r"registered with tcp://127\.0\.0\.1:(\d+)")
        port = int(m.group(1))
        # Raw bytes: not even the ZeroMQ handshake.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"\x00\xffGET / HTTP/1.1\r\n\r\n" + os.urandom(512))
        # A ZeroMQ-looking greeting followed by junk frames.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00NULL" + b"\x00" * 44 + os.urandom(256))
        rc = c.finish()
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
    assert rc == 0, c.log()
    assert len(out.read_text().splitlines()) == 20000
