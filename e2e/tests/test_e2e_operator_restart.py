"""Scenario 7, the operator goes away while a job runs. Every JobMaster runs inside the operator,
so a new operator (the restarted container, or another replica) must take the jobs over: it reads
status.jobStatus and the newest checkpoint, deletes the old worker pods and deploys a new job from
that checkpoint (Event JobDeployed "... taking over from the previous operator").

- test_operator_killed_takes_over: exactly-once checkpoints every second, a transactional file sink,
  a bounded generator, upgradeMode last-state. The operator's process is SIGKILLed through the
  node agent; the kubelet stand-in restarts the container; the new operator deploys a new job
  from the checkpoint, the job FINISHES, and no row is lost.
- test_operator_restart_exactly_once (strict xfail, see there): the same run, no row twice.
- test_leader_election: the chart with replicas=2 and leaderElection.enabled: exactly one
  replica holds the Lease and answers /readyz 200, the other 503; the leader is SIGKILLed and
  another identity takes the Lease within ~20 s (lease duration 15 s + retry 2 s) and the job
  continues from its checkpoint."""

import collections
import re
import time

import pytest

from cluster import wait_for
from eddy_k8s import RELEASE_NS, assert_counts_continue, counts_by_key, read_rows

COUNT, RATE, KEYS = 4000, 400, 5
SEEN = {}  # what test_operator_killed_takes_over observed, for the checks after it
PART = re.compile(r"^part-\d+-\d+-\d+\.jsonl$")


def expected_rows():
    cnt, total, rows = collections.Counter(), collections.Counter(), []
    for n in range(COUNT):
        k = f"k{n % KEYS}"
        cnt[k] += 1
        total[k] += n
        rows.append((k, cnt[k], total[k]))
    return rows


def checkpoint_ids(eddy, storage, job_id):
    """Ids of the checkpoints whose _metadata is in the bucket."""
    ids = []
    for key in eddy.s3.keys(f"{storage}/{job_id}/"):
        m = re.search(r"/chk-(\d+)/_metadata$", key)
        if m:
            ids.append(int(m.group(1)))
    return sorted(ids)


def needs_agent(eddy):
    if eddy.agent is None:
        pytest.skip("kills the operator's process through the node agent")


def test_operator_killed_takes_over(eddy, ns, tmp_path):
    needs_agent(eddy)
    out = eddy.output_dir(tmp_path) / "out"
    storage = eddy.s3.uri(f"{ns}/chk")
    doc = eddy.flinkjob("takeover", {
        "sources": [{"name": "gen", "uid": "gen", "parallelism": 1, "generator": {
            "count": COUNT, "rate": RATE, "fields": {"k": f"'k' + (n % {KEYS})", "v": "n"}}}],
        "steps": [{"name": "c", "from": "gen", "keyBy": ["k"], "uid": "counts",
                   "aggregate": {"cnt": "count()", "total": "sum(v)"}}],
        "sinks": [{"name": "out", "from": "c", "uid": "sink",
                   "file": {"path": str(out), "transactional": True}}],
    }, parallelism=2, upgradeMode="last-state",
        checkpointing={"interval": "1s", "mode": "exactly-once", "storage": storage})

    with eddy.watch(ns, "takeover") as w:
        eddy.apply(ns, doc)
        run = w.wait(lambda s: s.state == "RUNNING" and (s.status.get("jobStatus") or {})
                     .get("lastCheckpoint"), 60, "RUNNING with a checkpoint in status")
        old_job = run.job_id
        uid = run.obj["metadata"]["uid"]
        wait_for(lambda: [f for f in out.glob("part-*") if PART.match(f.name)], 30, 0.2,
                 what="committed output")
        # Kill while the bucket holds a checkpoint newer than the one in status (the status is
        # refreshed every 2 s, checkpoints complete every second: the usual case).
        def lagging():
            st = eddy.get(ns, "takeover")["status"]["jobStatus"]["lastCheckpoint"]["id"]
            return max(checkpoint_ids(eddy, storage, old_job) or [0]) > st
        wait_for(lagging, 15, 0.1, what="a checkpoint newer than status.jobStatus.lastCheckpoint")
        in_status = eddy.get(ns, "takeover")["status"]["jobStatus"]["lastCheckpoint"]
        mark = w.mark()
        t0 = time.monotonic()
        pod = eddy.kill_operator()
        newest = max(checkpoint_ids(eddy, storage, old_job))

        new = w.wait(lambda s: s.job_id and s.job_id != old_job, 60,
                     "a new job id (the new operator took over)", since=mark)
        running = w.wait(lambda s: s.job_id == new.job_id and s.state == "RUNNING", 60,
                         "the new job RUNNING", since=mark)
        print(f"\noperator SIGKILL -> new job deployed: {new.t - t0:.1f}s, RUNNING: "
              f"{running.t - t0:.1f}s (checkpoint in status {in_status['id']}, newest in the "
              f"bucket at the kill {newest})")
        ev = eddy.wait_event(ns, uid, "JobDeployed", lambda e: new.job_id in e["message"])[0]
        assert "taking over" in ev["message"], ev["message"]
        assert f"{storage}/{old_job}/chk-" in ev["message"], ev["message"]
        restored = int(re.search(r"/chk-(\d+)", ev["message"]).group(1))
        SEEN["checkpoints"] = (in_status["id"], newest, restored)
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
    SEEN["duplicates"] = sum(n - 1 for n in got.values())
    print(f"output: {sum(got.values())} rows, {SEEN['duplicates']} written twice; restored from "
          f"checkpoint {SEEN['checkpoints'][2]}")


@pytest.mark.xfail(strict=True, reason=(
    "a new operator takes over from the checkpoint recorded in status, not from the newest one: "
    "status.jobStatus.lastCheckpoint.path ends in '/' (chk-N/), so ParentDir() in "
    "flinkjob_operator.cc returns chk-N itself, LatestCheckpoint() finds no chk-* under it and "
    "the restore falls back to the status's checkpoint, which lags by up to --status-interval; "
    "the transactional sink had already committed the output of the newer checkpoints, which is "
    "then written again"))
def test_operator_restart_exactly_once():
    if "duplicates" not in SEEN:
        pytest.skip("test_operator_killed_takes_over did not finish")
    in_status, newest, restored = SEEN["checkpoints"]
    assert restored == newest, (f"restored checkpoint {restored}, newest {newest} "
                                f"(status had {in_status})")
    assert SEEN["duplicates"] == 0, f"{SEEN['duplicates']} rows written twice"


# ---------------------------------------------------------------------- leader election
def lease(eddy):
    return eddy.cp.kubectl_json("get", "lease", "eddy-operator", "-n", RELEASE_NS)["spec"]


def pod_of(identity, pods):
    """The operator pod a Lease identity (<pod name>_<random>) belongs to."""
    name = identity.rsplit("_", 1)[0]
    found = [p for p in pods if p["metadata"]["name"] == name]
    return found[0] if found else None


@pytest.fixture
def two_replicas(eddy):
    needs_agent(eddy)
    # through zero replicas: the single operator has no leader election, and the rolling
    # update would otherwise run it next to the new leader
    eddy.install(replicas=0)
    eddy.install("leaderElection.enabled=true", replicas=2)
    yield eddy
    eddy.install(replicas=0)
    eddy.install()


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
    assert code == 503 and "leader" in body, (code, body)
    assert eddy.pod_http(standby, 8085, "/healthz")[0] == 200

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
        # exactly one replica is ready: the new leader
        ready = [p["metadata"]["name"] for p in eddy.operator_pods()
                 if eddy.pod_http(p, 8085, "/readyz")[0] == 200]
        assert ready == [new_leader["metadata"]["name"]], ready
    assert lease(eddy)["holderIdentity"] == new_holder
