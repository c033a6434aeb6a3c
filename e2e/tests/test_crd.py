"""The FlinkJob CRD against the real API server: it is accepted and Established, every example in
examples/k8s is accepted, invalid FlinkJobs are rejected with a message naming the field, the
printer columns, the scale subresource (kubectl scale -> spec.parallelism) and the status
subresource work. Needs no operator."""

import copy
import json
import pathlib
import uuid

import pytest
import yaml

from cluster import wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "flinkjob.yaml"
EXAMPLES = sorted((ROOT / "examples" / "k8s").glob("*.yaml"))
BASE = yaml.safe_load((ROOT / "examples" / "k8s" / "basic-window.yaml").read_text())
NS = "crd-test"


@pytest.fixture(scope="module")
def cp(control_plane):
    control_plane.kubectl("apply", "--server-side", "-f", CRD)
    control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                          "crd/flinkjobs.eddy.dev")
    if control_plane.kubectl("get", "ns", NS, check=False).returncode != 0:
        control_plane.kubectl("create", "ns", NS)
    # discovery caches: the short name and the columns appear once the CRD is served
    wait_for(lambda: control_plane.kubectl("get", "fj", "-n", NS, check=False).returncode == 0,
             timeout=30, what="kubectl get fj")
    yield control_plane
    control_plane.kubectl("delete", "ns", NS, "--wait=false", check=False)


def apply(cp, doc, dry_run=True):
    args = ["apply", "-n", NS, "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    return cp.kubectl(*args, input=json.dumps(doc), check=False)


def test_crd_established(cp):
    crd = cp.kubectl_json("get", "crd", "flinkjobs.eddy.dev")
    conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"
    assert crd["status"]["acceptedNames"]["shortNames"] == ["fj"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_accepted(cp, path):
    r = cp.kubectl("apply", "-n", NS, "--dry-run=server", "-f", path, check=False)
    assert r.returncode == 0, r.stderr


def mutate(fn):
    doc = copy.deepcopy(BASE)
    doc["metadata"]["name"] = "bad-" + uuid.uuid4().hex[:8]
    fn(doc["spec"])
    return doc


def step(s):
    return s["job"]["steps"][0]


INVALID = [
    # (id, mutation, text the API server's message must contain)
    ("parallelism-string", lambda s: s.update(parallelism="two"), "spec.parallelism"),
    ("parallelism-zero", lambda s: s.update(parallelism=0), "spec.parallelism"),
    ("parallelism-missing", lambda s: s.pop("parallelism"), "spec.parallelism: Required"),
    ("job-missing", lambda s: s.pop("job"), "spec.job: Required"),
    ("max-below-parallelism", lambda s: s.update(maxParallelism=1), "spec.maxParallelism"),
    ("job-max-below-parallelism", lambda s: s["job"].update(maxParallelism=1),
     "spec.job.maxParallelism"),
    ("upgrade-mode-enum", lambda s: s.update(upgradeMode="hot-swap"), "spec.upgradeMode"),
    ("state-enum", lambda s: s.update(state="paused"), "spec.state"),
    ("state-backend-enum", lambda s: s.update(stateBackend="memory"), "spec.stateBackend"),
    ("savepoint-mode-without-dir", lambda s: s.update(upgradeMode="savepoint"),
     "spec.upgradeMode"),
    ("last-state-without-checkpoints", lambda s: s.update(upgradeMode="last-state"),
     "spec.upgradeMode"),
    ("last-state-interval-zero", lambda s: s.update(
        upgradeMode="last-state", checkpointing={"interval": "0ms", "storage": "s3://b/c"}),
     "spec.upgradeMode"),
    ("savepoint-nonce-without-dir", lambda s: s.update(savepointTriggerNonce=1),
     "spec.savepointTriggerNonce"),
    ("unaligned-at-least-once", lambda s: s.update(
        checkpointing={"mode": "at-least-once", "unaligned": True}), "spec.checkpointing"),
    ("job-unaligned-at-least-once", lambda s: s["job"].update(
        checkpointing={"mode": "at-least-once", "unaligned": True}), "spec.job.checkpointing"),
    ("checkpoint-interval", lambda s: s.update(checkpointing={"interval": "often"}),
     "spec.checkpointing.interval"),
    ("too-few-workers", lambda s: s.update(taskManager={"slots": 1, "replicas": 1}),
     "spec.taskManager.replicas"),
    ("memory-quantity", lambda s: s.update(taskManager={"resources": {"memory": "lots"}}),
     "spec.taskManager.resources.memory"),
    ("restart-type", lambda s: s.update(restartStrategy={"type": "sometimes"}),
     "spec.restartStrategy.type"),
    ("restart-jitter", lambda s: s.update(restartStrategy={"type": "exponential-delay",
                                                           "jitter": 2}),
     "spec.restartStrategy.jitter"),
    ("s3-endpoint-path", lambda s: s.update(s3={"endpoint": "http://minio:9000/bucket"}),
     "spec.s3.endpoint"),
    ("s3-secret-name", lambda s: s.update(s3={"credentialsSecret": {}}),
     "spec.s3.credentialsSecret.name"),
    ("job-unknown-key", lambda s: s["job"].update(paralelism=2), "spec.job.paralelism"),
    ("job-sinks-missing", lambda s: s["job"].pop("sinks"), "spec.job.sinks"),
    ("job-time-enum", lambda s: s["job"].update(time="wall"), "spec.job.time"),
    ("window-unknown-kind", lambda s: step(s).update(window={"hopping": "10s"}),
     "spec.job.steps[0].window"),
    ("window-bad-duration", lambda s: step(s).update(window={"tumbling": "10 parsecs"}),
     "spec.job.steps[0].window.tumbling"),
    ("window-object-missing-size", lambda s: step(s).update(window={"tumbling": {"offset": "1s"}}),
     "spec.job.steps[0].window.tumbling.size"),
    ("count-window-zero", lambda s: step(s).update(window={"count": 0}),
     "spec.job.steps[0].window.count"),
    ("two-window-kinds", lambda s: step(s).update(window={"tumbling": "1s", "session": "1s"}),
     "spec.job.steps[0].window"),
    ("step-two-operators", lambda s: step(s).update(filter="n > 1"), "spec.job.steps[0]"),
    ("step-no-operator", lambda s: step(s).pop("aggregate"), "spec.job.steps[0]"),
    ("step-dotted-name", lambda s: step(s).update(name="a.b"), "spec.job.steps[0].name"),
    ("step-chaining-enum", lambda s: step(s).update(chaining="sometimes"),
     "spec.job.steps[0].chaining"),
    ("keyby-empty", lambda s: step(s).update(keyBy=[]), "spec.job.steps[0].keyBy"),
    ("process-function-enum", lambda s: step(s).pop("aggregate") and step(s).update(
        process={"function": "teleport"}), "spec.job.steps[0].process.function"),
    ("source-two-kinds", lambda s: s["job"]["sources"][0].update(stdin={}),
     "spec.job.sources[0]"),
    ("schema-type", lambda s: s["job"]["sources"][0].update(schema={"id": "strin"}),
     "spec.job.sources[0].schema.id"),
    ("upsert-without-key", lambda s: s["job"]["sinks"].__setitem__(
        0, {"name": "out", "from": "per_sensor", "upsert": {"path": "s3://b/x"}}),
     "spec.job.sinks[0].upsert.key"),
]


@pytest.mark.parametrize("name,fn,field", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_rejected(cp, name, fn, field):
    r = apply(cp, mutate(fn))
    assert r.returncode != 0, f"{name}: accepted"
    assert field in r.stderr, f"{name}: message does not name {field}:\n{r.stderr}"


def test_get_scale_status(cp):
    doc = copy.deepcopy(BASE)
    name = doc["metadata"]["name"]
    r = apply(cp, doc, dry_run=False)
    assert r.returncode == 0, r.stderr
    header = cp.kubectl("get", "fj", "-n", NS).stdout.splitlines()[0].split()
    assert header == ["NAME", "JOB", "STATE", "LIFECYCLE", "PARALLELISM", "LAST", "CHECKPOINT",
                      "AGE"]
    wide = cp.kubectl("get", "flinkjobs", "-n", NS, "-o", "wide").stdout.splitlines()[0]
    assert "UPGRADE MODE" in wide and "JOB ID" in wide
    obj = cp.kubectl_json("get", "fj", name, "-n", NS)
    assert obj["spec"]["upgradeMode"] == "stateless" and obj["spec"]["state"] == "running"
    assert obj["spec"]["job"]["time"] == "event"  # the job schema's defaults apply

    cp.kubectl("scale", "-n", NS, f"fj/{name}", "--replicas=3")
    assert cp.kubectl_json("get", "fj", name, "-n", NS)["spec"]["parallelism"] == 3

    status = {"status": {
        "observedGeneration": 2, "lifecycleState": "STABLE", "parallelism": 3,
        "selector": f"eddy.dev/job={name}", "taskManagers": 2,
        "jobStatus": {"jobId": "0123abcd", "state": "RUNNING", "startTime": "2025-01-01T00:00:00Z",
                      "lastCheckpoint": {"id": 7, "path": "s3://b/c/0123abcd/chk-7",
                                         "time": "2025-01-01T00:01:00Z"}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "ok",
                        "lastTransitionTime": "2025-01-01T00:00:30Z"}]}}
    cp.kubectl("patch", "-n", NS, "fj", name, "--subresource=status", "--type=merge",
               "-p", json.dumps(status))
    row = cp.kubectl("get", "fj", name, "-n", NS, "--no-headers").stdout.split()
    assert row[:4] == [name, "RUNNING", "STABLE", "3"], row
    scale = json.loads(cp.kubectl(
        "get", "--raw", f"/apis/eddy.dev/v1alpha1/namespaces/{NS}/flinkjobs/{name}/scale").stdout)
    assert scale["spec"]["replicas"] == 3
    assert scale["status"] == {"replicas": 3, "selector": f"eddy.dev/job={name}"}

    # the status subresource ignores spec; the main resource ignores status
    cp.kubectl("patch", "-n", NS, "fj", name, "--subresource=status", "--type=merge",
               "-p", '{"spec": {"parallelism": 9}}')
    cp.kubectl("patch", "-n", NS, "fj", name, "--type=merge",
               "-p", '{"status": {"lifecycleState": "FAILED"}}')
    obj = cp.kubectl_json("get", "fj", name, "-n", NS)
    assert obj["spec"]["parallelism"] == 3 and obj["status"]["lifecycleState"] == "STABLE"
    r = cp.kubectl("patch", "-n", NS, "fj", name, "--subresource=status", "--type=merge",
                   "-p", '{"status": {"lifecycleState": "HAPPY"}}', check=False)
    assert r.returncode != 0 and "status.lifecycleState" in r.stderr
    r = cp.kubectl("scale", "-n", NS, f"fj/{name}", "--replicas=0", check=False)
    assert r.returncode != 0 and "spec.parallelism" in r.stderr
    cp.kubectl("delete", "fj", name, "-n", NS)


def test_scale_and_max_parallelism(cp):
    """Scaling is validated like any update: not above maxParallelism; and maxParallelism cannot
    change under upgradeMode savepoint (transition rule)."""
    doc = yaml.safe_load((ROOT / "examples" / "k8s" / "savepoint-upgrade.yaml").read_text())
    name = doc["metadata"]["name"]
    r = apply(cp, doc, dry_run=False)
    assert r.returncode == 0, r.stderr
    cp.kubectl("scale", "-n", NS, f"fj/{name}", "--replicas=6")
    assert cp.kubectl_json("get", "fj", name, "-n", NS)["spec"]["parallelism"] == 6
    r = cp.kubectl("scale", "-n", NS, f"fj/{name}", "--replicas=200", check=False)
    assert r.returncode != 0 and "maxParallelism" in r.stderr, r.stderr
    r = cp.kubectl("patch", "-n", NS, "fj", name, "--type=merge",
                   "-p", '{"spec": {"maxParallelism": 256}}', check=False)
    assert r.returncode != 0 and "spec.maxParallelism" in r.stderr, r.stderr
    cp.kubectl("patch", "-n", NS, "fj", name, "--type=merge",
               "-p", '{"spec": {"upgradeMode": "stateless", "maxParallelism": 256}}')
    assert cp.kubectl_json("get", "fj", name, "-n", NS)["spec"]["maxParallelism"] == 256
    cp.kubectl("delete", "fj", name, "-n", NS)
