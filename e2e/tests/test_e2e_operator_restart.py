"""Scenario 7, the operator goes away while a job runs. Every JobMaster runs inside the operator,
so a new operator (the restarted container, or another replica) must take the jobs over: it reads
status.jobStatus and the newest checkpoint, deletes the old worker pods and deploys a new job from
that checkpoint (Event JobDeployed "... taking over from the previous operator").

- test_operator_killed_takes_over[s3|file]: exactly-once checkpoints every second (to S3, or to a
  file:// directory), a transactional file sink, a bounded generator, upgradeMode last-state. The
  operator's process is SIGKILLed through the node agent while the storage holds a checkpoint
  newer than the one in status; the kubelet stand-in restarts the container; the new operator
  deploys a new job from the newest checkpoint, the job FINISHES, and the committed output is
  exactly the rows computed here: none lost, none twice.
- test_leader_election: the chart with replicas=2 and leaderElection.enabled: exactly one
  replica holds the Lease and labels its pod eddy.dev/leader=true (the Service's selector), both
  answer /readyz 200, the standby's REST answers 503 naming the leader; the leader is SIGKILLed and
  another identity takes the Lease within ~20 s (lease duration 15 s + retry 2 s) and the job
  continues from its checkpoint."""

import collections
import os
import re
import signal
import time
from pathlib import Path

import pytest

from cluster import wait_for
from eddy_k8s import (RELEASE_NS, assert_counts_continue, counts_by_key, read_rows,
                      running_count_job, running_count_rows)

COUNT, RATE, KEYS = 4000, 400, 5
PART = re.compile(r"^part-\d+-\d+-\d+\.jsonl$")


def expected_rows():
    return running_count_rows(COUNT, KEYS)


def needs_agent(eddy):
    if eddy.agent is None:
        pytest.skip("kills the operator's process through the node agent")


def checkpoint_ids(eddy, storage, job_id):
    """Ids of the checkpoints of job_id whose _metadata exists (in the bucket or directory)."""
    if storage.startswith("s3://"):
        keys = eddy.s3.keys(f"{storage}/{job_id}/")
    else:
        root = Path(storage[len("file://"):]) / job_id
        keys = [str(p) for p in root.glob("chk-*/_metadata")]
    return sorted(int(m.group(1)) for m in (re.search(r"/chk-(\d+)/_metadata$", k) for k in keys)
                  if m)


def kill_operator_during_job(eddy, ns, out, storage):
    """The takeover scenario; returns what happened: {frozen, newest, restored, duplicates}."""
    doc = eddy.flinkjob("takeover", running_count_job(out, COUNT, RATE, KEYS),
                        parallelism=2, upgradeMode="last-state",
        checkpointing={"interval": "1s", "mode": "exactly-once", "storage": storage})

    with eddy.watch(ns, "takeover") as w:
        eddy.apply(ns, doc)
        run = w.wait(lambda s: s.state == "RUNNING" and (s.status.get("jobStatus") or {})
                     .get("lastCheckpoint"), 60, "RUNNING with a checkpoint in status")
        old_job = run.job_id
        uid = run.obj["metadata"]["uid"]
        wait_for(lambda: [f for f in out.glob("part-*") if PART.match(f.name)], 30, 0.2,
                 what="committed output")
        # Kill while the storage holds a checkpoint newer than the one in status (the status is
        # refreshed every 2 s, checkpoints complete every second: the usual case). The pid is
        # looked up first so that the kill follows the check within milliseconds.
        pod = eddy.operator_pod()
        (pid,) = eddy.agent.pod_processes(RELEASE_NS, pod["metadata"]["name"], "eddy-operator")

        def lagging():
            st = eddy.get_fast(ns, "takeover")["status"]["jobStatus"]["lastCheckpoint"]["id"]
            return max(checkpoint_ids(eddy, storage, old_job) or [0]) > st
        wait_for(lagging, 15, 0.05, what="a checkpoint newer than status.jobStatus.lastCheckpoint")
        os.kill(pid, signal.SIGKILL)
        mark = w.mark()
        t0 = time.monotonic()
        # the JobMaster died with the operator: neither the status nor the storage changes now
        frozen = eddy.get_fast(ns, "takeover")["status"]["jobStatus"]["lastCheckpoint"]["id"]
        newest = max(checkpoint_ids(eddy, storage, old_job))

        new = w.wait(lambda s: s.job_id and s.job_id != old_job, 60,
                     "a new job id (the new operator took over)", since=mark)
        running = w.wait(lambda s: s.job_id == new.job_id and s.state == "RUNNING", 60,
                         "the new job RUNNING", since=mark)
        ev = eddy.wait_event(ns, uid, "JobDeployed", lambda e: new.job_id in e["message"])[0]
        assert "taking over" in ev["message"], ev["message"]
        assert f"{storage}/{old_job}/chk-" in ev["message"], ev["message"]
        restored = int(re.search(r"/chk-(\d+)", ev["message"]).group(1))
        # the operator pod was restarted in place (restartPolicy Always), not replaced
        p = eddy.cp.kubectl_json("get", "pod", pod["metadata"]["name"], "-n", RELEASE_NS)
        assert p["status"]["containerStatuses"][0]["restartCount"] >= 1

        done = w.wait(lambda s: s.job_id == new.job_id and s.state == "FINISHED", 90, "FINISHED",
                      since=mark)
        assert done.lifecycle == "STABLE"

    got = collections.Counter((r["k"], r["cnt"], r["total"]) for r in read_rows(out))
    exp = expected_rows()
    lost = [r for r in exp if r not in got]
    assert not lost, f"{len(lost)} rows lost after the takeover, e.g. {lost[:3]}"
    assert set(got) == set(exp), "rows that no run should write"
    seen = {"frozen": frozen, "newest": newest, "restored": restored,
            "duplicates": sum(n - 1 for n in got.values())}
    print(f"\n{storage.split(':')[0]}: operator SIGKILL -> new job deployed {new.t - t0:.1f}s, "
          f"RUNNING {running.t - t0:.1f}s; checkpoint in status {frozen}, newest {newest}, "
          f"restored {restored}; {sum(got.values())} rows, {seen['duplicates']} written twice")
    return seen


@pytest.mark.parametrize("storage", ["s3", "file"])
def test_operator_killed_takes_over(eddy, ns, tmp_path, storage):
    """Checkpoints in S3 or on a shared file system (file://): the new operator restores the
    newest checkpoint, not the older one the status recorded, and the output is exactly-once
    (with the snapshot of db225af the file:// run restored the status's checkpoint, whose path
    ends in '/', and wrote the newer checkpoints' committed rows twice)."""
    needs_agent(eddy)
    uri = eddy.s3.uri(f"{ns}/chk") if storage == "s3" else f"file://{tmp_path}/chk"
    out = eddy.output_dir(tmp_path) / "out" if storage == "s3" else tmp_path / "out"
    seen = kill_operator_during_job(eddy, ns, out, uri)
    assert seen["frozen"] < seen["newest"], seen
    assert seen["restored"] == seen["newest"], seen
    assert seen["duplicates"] == 0, seen


# ---------------------------------------------------------------------- leader election
def lease(eddy):
    return eddy.cp.kubectl_json("get", "lease", "eddy-operator", "-n", RELEASE_NS)["spec"]


def pod_of(identity, pods):
    """The operator pod a Lease identity (<pod name>_<random>) belongs to."""
    name = identity.rsplit("_", 1)[0]
    found = [p for p in pods if p["metadata"]["name"] == name]
    return found[0] if found else None


def test_finished_job_is_not_rerun_after_restart(eddy, ns, tmp_path):
    """A bounded job that FINISHED stays finished when the operator restarts: the new operator
    must not deploy the same spec again (its output would be written twice)."""
    needs_agent(eddy)
    out = eddy.output_dir(tmp_path) / "bounded.jsonl"
    doc = eddy.flinkjob("bounded", {
        "sources": [{"name": "gen", "generator": {"count": 200, "rate": 1000,
                                                  "fields": {"k": "'k' + (n % 2)"}}}],
        "sinks": [{"name": "out", "from": "gen", "file": {"path": str(out)}}]}, parallelism=1)
    with eddy.watch(ns, "bounded") as w:
        eddy.apply(ns, doc)
        done = w.wait(lambda s: s.state == "FINISHED" and not eddy.worker_pods(ns, "bounded"),
                      60, "FINISHED, pods gone")
    uid = done.obj["metadata"]["uid"]
    rows = len(read_rows(out))
    assert rows == 200
    pod = eddy.operator_pod()
    assert eddy.agent.kill_pod_process(RELEASE_NS, pod["metadata"]["name"],
                                       container="eddy-operator")
    # the restarted operator reconciles every FlinkJob at start; a job applied after the
    # restart and seen RUNNING shows it got that far
    probe = eddy.flinkjob("probe", {
        "sources": [{"name": "gen", "generator": {"rate": 10, "fields": {"n": "n"}}}],
        "sinks": [{"name": "out", "from": "gen", "discard": {}}]}, parallelism=1)
    with eddy.watch(ns, "probe") as w:
        eddy.apply(ns, probe)
        w.wait(lambda s: s.state == "RUNNING", 60, "the probe RUNNING under the new operator")
    fj = eddy.cp.kubectl_json("get", "flinkjob", "bounded", "-n", ns)
    assert fj["status"]["jobStatus"]["jobId"] == done.job_id
    assert fj["status"]["jobStatus"]["state"] == "FINISHED"
    assert len(eddy.events(ns, uid, "JobDeployed")) == 1, "the finished job was deployed again"
    assert eddy.worker_pods(ns, "bounded", all_pods=True) == []
    assert len(read_rows(out)) == rows


@pytest.fixture(scope="module")
def two_replicas(eddy):
    needs_agent(eddy)
    # through zero replicas: the single operator has no leader election, and the rolling
    # update would otherwise run it next to the new leader
    eddy.install(replicas=0)
    eddy.install("leaderElection.enabled=true", replicas=2)
    yield eddy
    eddy.install(replicas=0)
    eddy.install()


def leader_labels(eddy):
    """Names of the operator pods labelled eddy.dev/leader=true."""
    return sorted(p["metadata"]["name"] for p in eddy.operator_pods()
                  if p["metadata"].get("labels", {}).get("eddy.dev/leader") == "true")


def test_leader_election(two_replicas, ns, tmp_path):
    eddy = two_replicas
    pods = eddy.operator_pods()
    assert len(pods) == 2
    holder = wait_for(lambda: lease(eddy).get("holderIdentity"), 20, what="a Lease holder")
    leader = pod_of(holder, pods)
    assert leader is not None, (holder, [p["metadata"]["name"] for p in pods])
    standby = [p for p in pods if p is not leader][0]
    assert eddy.pod_http(leader, 8085, "/readyz")[0] == 200
    code, body = eddy.pod_http(standby, 8085, "/readyz")
    assert code == 200 and "standby" in body, (code, body)
    assert eddy.pod_http(standby, 8085, "/healthz")[0] == 200
    # the standby names the leader once it has read the Lease (it retries every 2 s)
    code, body = wait_for(lambda: (lambda r: r if holder in r[1] else None)(
        eddy.pod_http(standby, 8081, "/jobs/overview")), 10, 0.3, what="the standby naming the leader")
    assert code == 503 and "standby" in body, (code, body)
    assert eddy.pod_http(leader, 8081, "/jobs/overview")[0] == 200
    assert leader_labels(eddy) == [leader["metadata"]["name"]]
    svc = eddy.cp.kubectl_json("get", "service", "eddy-operator", "-n", RELEASE_NS)
    assert svc["spec"]["selector"].get("eddy.dev/leader") == "true"

    out = eddy.output_dir(tmp_path) / "counts.jsonl"
    doc = eddy.flinkjob("le", {
        "sources": [{"name": "gen", "uid": "gen", "generator": {
            "rate": 100, "fields": {"k": "'k' + (n % 4)"}}}],
        "steps": [{"name": "c", "from": "gen", "keyBy": ["k"], "uid": "counts",
                   "aggregate": {"cnt": "count()"}}],
        "sinks": [{"name": "out", "from": "c", "file": {"path": str(out)}}],
    }, parallelism=1, upgradeMode="last-state",
        checkpointing={"interval": "1s", "storage": eddy.s3.uri(f"{ns}/chk")})
    with eddy.watch(ns, "le") as w:
        eddy.apply(ns, doc)
        run = w.wait(lambda s: s.state == "RUNNING" and (s.status.get("jobStatus") or {})
                     .get("lastCheckpoint"), 60, "RUNNING with a checkpoint")
        wait_for(lambda: len(read_rows(out)) >= 50, 30, 0.2, what="50 output rows")
        uid = run.obj["metadata"]["uid"]

        mark = w.mark()
        t0 = time.monotonic()
        assert eddy.agent.kill_pod_process(RELEASE_NS, leader["metadata"]["name"],
                                           container="eddy-operator")
        before = assert_counts_continue(read_rows(out), exactly_once=False, what="at the kill")
        new_holder = wait_for(lambda: (lambda h: h if h and h != holder else None)(
            lease(eddy).get("holderIdentity")), 30, 0.2, what="another Lease holder")
        t_lease = time.monotonic() - t0
        new_leader = pod_of(new_holder, eddy.operator_pods())
        assert new_leader is not None, new_holder
        who = "the standby" if new_leader["metadata"]["name"] == standby["metadata"]["name"] \
            else "the restarted container of the killed pod"
        print(f"\nleader SIGKILL -> Lease taken by {who}: {t_lease:.1f}s")
        assert t_lease < 25, f"the Lease changed hands only after {t_lease:.1f}s"
        assert lease(eddy)["leaseTransitions"] >= 1
        wait_for(lambda: eddy.pod_http(new_leader, 8085, "/readyz")[0] == 200, 20, 0.3,
                 what="/readyz 200 on the new leader")

        new = w.wait(lambda s: s.job_id and s.job_id != run.job_id and s.state == "RUNNING", 60,
                     "the job RUNNING under the new leader", since=mark)
        print(f"leader SIGKILL -> job RUNNING again: {new.t - t0:.1f}s")
        ev = eddy.wait_event(ns, uid, "JobDeployed", lambda e: new.job_id in e["message"])[0]
        assert "taking over" in ev["message"], ev["message"]
        target = {k: v + 10 for k, v in before.items()}
        wait_for(lambda: all(max(counts_by_key(read_rows(out)).get(k, [0])) >= t
                             for k, t in target.items()), 30, 0.3,
                 what="every key counted 10 more under the new leader")
        assert_counts_continue(read_rows(out), exactly_once=False, what="after the takeover")
        # exactly one pod is labelled the leader: the new one (a restarted container drops the
        # label of its previous life)
        wait_for(lambda: leader_labels(eddy) == [new_leader["metadata"]["name"]], 20, 0.3,
                 what="the leader label on the new leader only")
    assert lease(eddy)["holderIdentity"] == new_holder


def test_leader_election_rolling_update(two_replicas):
    """`helm upgrade` of a leader-elected install (here: a new pod annotation) rolls out."""
    eddy = two_replicas
    eddy.wait_operator(2, timeout=60)
    eddy.install("leaderElection.enabled=true", "podAnnotations.e2e-rollout=second", replicas=2,
                 wait=False)
    r = eddy.cp.kubectl("rollout", "status", "deployment/eddy-operator", "-n", RELEASE_NS,
                        "--timeout=10s", check=False, timeout=30)
    assert r.returncode == 0, f"rollout did not complete:\n{r.stdout}{r.stderr}"
