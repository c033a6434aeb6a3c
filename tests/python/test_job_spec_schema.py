"""The published JSON Schema accepts every example job and rejects malformed ones."""
import copy
import json
import pathlib

import jsonschema
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "job-spec.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_conform(path):
    doc = yaml.safe_load(path.read_text())
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


BASE = yaml.safe_load((ROOT / "examples" / "sensor-window.yaml").read_text())


@pytest.mark.parametrize("backend", ["heap", "rocksdb"])
def test_state_backends_are_accepted(backend):
    doc = copy.deepcopy(BASE)
    doc["stateBackend"] = backend
    assert not list(VALIDATOR.iter_errors(doc))


def mutated(fn):
    doc = copy.deepcopy(BASE)
    fn(doc)
    return doc


@pytest.mark.parametrize(
    "name,doc",
    [
        ("no sinks", mutated(lambda d: d.pop("sinks"))),
        ("unknown top-level key", mutated(lambda d: d.update(paralelism=2))),
        ("two source kinds", mutated(lambda d: d["sources"][0].update(stdin={}))),
        ("bad duration", mutated(lambda d: d["sources"][0]["watermark"].update(maxOutOfOrderness="3 parsecs"))),
        ("bad type", mutated(lambda d: d["sources"][0]["schema"].update(id="strin"))),
        ("step without operator", mutated(lambda d: d["steps"][0].pop("aggregate"))),
        ("step with two operators", mutated(lambda d: d["steps"][0].update(filter="n > 1"))),
        ("unknown window", mutated(lambda d: d["steps"][0].update(window={"hopping": "1s"}))),
        ("dotted name", mutated(lambda d: d["steps"][0].update(name="a.b"))),
        ("parallelism zero", mutated(lambda d: d.update(parallelism=0))),
        ("unknown state backend", mutated(lambda d: d.update(stateBackend="memory"))),
        ("unknown checkpointing key",
         mutated(lambda d: d.update(checkpointing={"interval": "10s", "intervall": "1s"}))),
        ("bad checkpointing mode", mutated(lambda d: d.update(checkpointing={"mode": "twice"}))),
        ("bad checkpoint interval", mutated(lambda d: d.update(checkpointing={"interval": "often"}))),
        ("retained zero", mutated(lambda d: d.update(checkpointing={"retained": 0}))),
        ("empty savepointDir", mutated(lambda d: d.update(savepointDir=""))),
        ("unaligned not a boolean",
         mutated(lambda d: d.update(checkpointing={"unaligned": "yes please"}))),
        ("unaligned at-least-once",
         mutated(lambda d: d.update(checkpointing={"mode": "at-least-once", "unaligned": True}))),
        ("upsert without key",
         mutated(lambda d: d["sinks"][0].update(upsert={"path": "x"}, print=None) or
                 d["sinks"][0].pop("print"))),
        ("upsert and print", mutated(lambda d: d["sinks"][0].update(upsert={"path": "x", "key": "k"}))),
    ],
)
def test_invalid_documents_are_rejected(name, doc):
    assert list(VALIDATOR.iter_errors(doc)), f"schema accepted: {name}"


def test_checkpointing_and_savepoint_dir_are_accepted():
    doc = mutated(lambda d: d.update(
        checkpointing={"interval": "10s", "mode": "exactly-once", "storage": "s3://b/chk",
                       "retained": 3, "timeout": "1m", "minPause": "500ms", "maxConcurrent": 1,
                       "tolerableFailures": -1, "unaligned": True},
        savepointDir="file:///data/savepoints"))
    errors = list(VALIDATOR.iter_errors(doc))
    assert not errors, [e.message for e in errors]


def test_upsert_sink_is_accepted():
    def to_upsert(d):
        d["sinks"][0].pop("file", None)
        d["sinks"][0].pop("print", None)
        d["sinks"][0]["upsert"] = {"path": "s3://b/latest", "key": ["id", "window_start"],
                                   "format": "csv"}
    errors = list(VALIDATOR.iter_errors(mutated(to_upsert)))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("checkpointing", [
    {"unaligned": True},  # mode defaults to exactly-once
    {"mode": "at-least-once", "unaligned": False},
    {"mode": "EXACTLY_ONCE", "unaligned": True},
])
def test_unaligned_checkpoints_are_accepted(checkpointing):
    doc = mutated(lambda d: d.update(checkpointing=checkpointing))
    errors = list(VALIDATOR.iter_errors(doc))
    assert not errors, [e.message for e in errors]
