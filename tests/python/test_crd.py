"""crds/flinkjob.yaml is what scripts/gen-crd.py writes (and so is the Helm chart's copy), has the fixed names, subresources and
printer columns, and every example in examples/k8s carries a job that docs/job-spec.schema.json
accepts. No API server here: e2e/tests/test_crd.py checks the CRD against a real one."""
import importlib.util
import json
import pathlib

import jsonschema
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "flinkjob.yaml"
HELM_CRD_PATH = ROOT / "helm" / "eddy" / "crds" / "flinkjob.yaml"
CRD = yaml.safe_load(CRD_PATH.read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
JOB_SCHEMA = json.loads((ROOT / "docs" / "job-spec.schema.json").read_text())
EXAMPLES = sorted((ROOT / "examples" / "k8s").glob("*.yaml"))


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_crd", ROOT / "scripts" / "gen-crd.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_crd_is_generated():
    assert CRD_PATH.read_text() == load_generator().generate(), \
        "crds/flinkjob.yaml is out of date: run scripts/gen-crd.py"


def test_helm_chart_copy_is_identical():
    """helm/eddy/crds/flinkjob.yaml is byte for byte crds/flinkjob.yaml (gen-crd.py writes both)."""
    assert HELM_CRD_PATH.exists(), "helm/eddy/crds/flinkjob.yaml is missing: run scripts/gen-crd.py"
    assert HELM_CRD_PATH.read_bytes() == CRD_PATH.read_bytes(), \
        "helm/eddy/crds/flinkjob.yaml differs from crds/flinkjob.yaml: run scripts/gen-crd.py"


def test_names():
    assert CRD["metadata"]["name"] == "flinkjobs.eddy.dev"
    s = CRD["spec"]
    assert (s["group"], s["scope"]) == ("eddy.dev", "Namespaced")
    assert s["names"]["kind"] == "FlinkJob"
    assert s["names"]["plural"] == "flinkjobs"
    assert s["names"]["shortNames"] == ["fj"]
    assert [v["name"] for v in s["versions"]] == ["v1alpha1"]
    assert VERSION["served"] and VERSION["storage"]


def test_subresources():
    sub = VERSION["subresources"]
    assert sub["status"] == {}
    assert sub["scale"] == {"specReplicasPath": ".spec.parallelism",
                            "statusReplicasPath": ".status.parallelism",
                            "labelSelectorPath": ".status.selector"}
    status = SCHEMA["properties"]["status"]["properties"]
    assert status["parallelism"]["type"] == "integer"
    assert status["selector"]["type"] == "string"


def test_printer_columns():
    cols = [(c["name"], c["jsonPath"]) for c in VERSION["additionalPrinterColumns"]
            if not c.get("priority")]
    assert cols == [("Job State", ".status.jobStatus.state"),
                    ("Lifecycle", ".status.lifecycleState"),
                    ("Parallelism", ".spec.parallelism"),
                    ("Last Checkpoint", ".status.jobStatus.lastCheckpoint.time"),
                    ("Age", ".metadata.creationTimestamp")]


def walk(node, path="$"):
    yield path, node
    for k, v in node.get("properties", {}).items():
        yield from walk(v, f"{path}.{k}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], path + "[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], path + "[*]")


def test_structural():
    """What the API server refuses in a structural schema never appears."""
    for path, node in walk(SCHEMA):
        assert not {"$ref", "$defs", "if", "then", "const", "patternProperties"} & set(node), path
        assert ("type" in node or node.get("x-kubernetes-preserve-unknown-fields")
                or node.get("x-kubernetes-int-or-string")), f"{path}: no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        for branch in node.get("oneOf", []) + node.get("anyOf", []):
            assert "type" not in branch, path


def test_spec_job_covers_the_job_schema():
    job = SCHEMA["properties"]["spec"]["properties"]["job"]
    assert set(job["properties"]) == set(JOB_SCHEMA["properties"])
    assert job["required"] == JOB_SCHEMA["required"]
    spec = SCHEMA["properties"]["spec"]
    assert set(spec["required"]) == {"parallelism", "job"}
    # spec-level overrides carry no defaults (a default would always override the job's value)
    for key in ("checkpointing", "restartStrategy"):
        for path, node in walk(spec["properties"][key]):
            assert "default" not in node, f"spec.{key}{path[1:]}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples(path):
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "eddy.dev/v1alpha1" and doc["kind"] == "FlinkJob"
    errors = list(jsonschema.Draft202012Validator(JOB_SCHEMA).iter_errors(doc["spec"]["job"]))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_examples_cover_the_features():
    specs = [yaml.safe_load(p.read_text())["spec"] for p in EXAMPLES]
    assert len(specs) >= 7
    assert any(s.get("upgradeMode") == "savepoint" for s in specs)
    assert any(s.get("upgradeMode") == "last-state" for s in specs)
    assert any(s.get("state") == "suspended" for s in specs)
    assert any(s.get("stateBackend") == "rocksdb" for s in specs)
    assert any("credentialsSecret" in s.get("s3", {}) for s in specs)
    sinks = [k for s in specs for sink in s["job"]["sinks"] for k in sink]
    assert "upsert" in sinks
    assert any(sink.get("file", {}).get("transactional") for s in specs
               for sink in s["job"]["sinks"])
