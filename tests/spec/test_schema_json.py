"""suites/schema.json (for editors) is generated from the validator's own field declarations, and every
committed suite satisfies it; the harness's validator stays the authority (one-line file:field errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.spec.documents import suite_files
from bench.spec.suite_schema import suite_json_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "suites" / "schema.json"


def test_committed_schema_is_the_generated_one():
    assert json.loads(SCHEMA.read_text()) == suite_json_schema(), (
        "suites/schema.json is stale: run `python -m bench.spec.suite_schema suites/schema.json`"
    )


def test_schema_describes_the_fields():
    s = suite_json_schema()
    assert s["required"] == ["task", "dataset", "protocol", "backbones"]
    ref = s["properties"]["references"]["items"]
    assert {"row", "value", "document", "where", "setting"} <= set(ref["required"])
    assert ref["properties"]["epochs"]["type"] == ["integer", "null"]
    assert s["properties"]["protocol"]["properties"]["epochs"]["type"] == "integer"
    assert s["additionalProperties"] is False


@pytest.mark.parametrize("path", suite_files(ROOT / "suites"), ids=lambda p: p.name)
def test_every_suite_satisfies_the_schema(path):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(yaml.safe_load(path.read_text()), suite_json_schema())


def test_schema_rejects_an_unknown_key_and_a_wrong_type():
    jsonschema = pytest.importorskip("jsonschema")
    good = yaml.safe_load((ROOT / "suites" / "quick.yaml").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "epochz": 3}, suite_json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "protocol": {**good["protocol"], "epochs": "many"}}, suite_json_schema())
