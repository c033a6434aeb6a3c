"""Scenario 2, savepoint on demand: a running FlinkJob with checkpoints and savepointDir on S3
(moto); bumping spec.savepointTriggerNonce makes the operator take a savepoint, record it in
status.jobStatus.savepointInfo (lastSavepoint.path under savepointDir, triggerNonce updated) and
send Events; the savepoint's and the checkpoints' `_metadata` objects are in the bucket (read
with boto3, independently of Eddy). The job keeps running."""


def counting_job():
    return {
        "sources": [{"name": "gen", "generator": {
            "rate": 200, "fields": {"k": "'k' + (n % 4)", "v": "n"}}}],
        "steps": [{"name": "c", "from": "gen", "keyBy": ["k"], "uid": "counts",
                   "aggregate": {"cnt": "count()", "total": "sum(v)"}}],
        "sinks": [{"name": "out", "from": "c", "discard": {}}],
    }


def test_savepoint_nonce_to_s3(eddy, ns):
    chk = eddy.s3.uri(f"{ns}/checkpoints")
    sp_dir = eddy.s3.uri(f"{ns}/savepoints")
    doc = eddy.flinkjob("sp", counting_job(), parallelism=2,
                        checkpointing={"interval": "1s", "storage": chk}, savepointDir=sp_dir)
    with eddy.watch(ns, "sp") as w:
        eddy.apply(ns, doc)
        run = w.wait(lambda s: s.state == "RUNNING" and s.lifecycle == "STABLE"
                     and (s.status.get("jobStatus") or {}).get("lastCheckpoint"), 60,
                     "RUNNING with a completed checkpoint")
        job_id = run.job_id
        uid = run.obj["metadata"]["uid"]
        # checkpoints: <storage>/<job id>/chk-<n>/_metadata, written by the operator's JobMaster
        last = run.status["jobStatus"]["lastCheckpoint"]
        assert last["path"].startswith(f"{chk}/{job_id}/chk-{last['id']}"), last
        meta = last["path"].rstrip("/") + "/_metadata"
        assert eddy.s3.head(meta)["ContentLength"] > 0
        assert not run.savepoint_info.get("lastSavepoint"), run.savepoint_info

        mark = w.mark()
        eddy.patch(ns, "sp", {"savepointTriggerNonce": 7})
        done = w.wait(lambda s: s.savepoint_info.get("triggerNonce") == 7
                      and s.savepoint_info.get("lastSavepoint"), 60,
                      "savepointInfo.triggerNonce 7 with a lastSavepoint", since=mark)
        info = done.savepoint_info
        last_sp = info["lastSavepoint"]
        path = last_sp["path"]
        assert path.startswith(sp_dir + "/savepoint-"), path
        assert last_sp["triggerType"] == "manual" and last_sp.get("triggerNonce") == 7, last_sp
        assert last_sp["time"].endswith("Z"), last_sp
        assert info["history"][-1]["path"] == path, info["history"]
        assert not done.status.get("error"), done.status.get("error")

        # the savepoint is really in the bucket: its _metadata (and nothing outside savepointDir)
        keys = eddy.s3.keys(path + "/")
        assert path[len(f"s3://{eddy.s3.bucket}/"):] + "/_metadata" in keys, keys
        assert eddy.s3.head(path + "/_metadata")["ContentLength"] > 0

        eddy.wait_event(ns, uid, "SavepointTriggered", lambda e: "nonce 7" in e["message"])
        eddy.wait_event(ns, uid, "SavepointCompleted", lambda e: path in e["message"])

        # the job keeps running (a savepoint is not a stop), with the same job id
        still = w.wait(lambda s: s.state == "RUNNING", 10, "RUNNING", since=mark)
        assert still.job_id == job_id and w.last.state == "RUNNING" and w.last.job_id == job_id
        assert len(eddy.events(ns, uid, "SavepointTriggered")) == 1
