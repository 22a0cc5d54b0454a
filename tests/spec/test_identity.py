"""Run identity (bench/spec/identity.py, issue 21): one function computes run ids; only what changes a result
changes an id; every committed record maps 1:1 onto its current id with unchanged metrics (bench rekey)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import SpecError
from bench.spec.identity import IDENTITY_VERSION, legacy_id_v1, run_id
from bench.records.records import load_records, rekey, write_json_atomic
from bench.spec.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
QUICK = (ROOT / "suites" / "quick.yaml").read_text()


def _ids(tmp_path: Path, text: str, name: str = "s.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    return [s.id for s in load_suite(path).expand()]


def test_free_text_changes_no_id_and_working_fields_do(tmp_path):
    base = _ids(tmp_path, QUICK)
    assert len(set(base)) == len(base) > 10
    free = (
        QUICK.replace("name: quick\n", "name: quick-renamed\n")
        .replace("name: quick-cpu", "name: another-protocol-name")
        .replace("A smoke-scale comparison under one protocol", "A comparison with a fixed typo")
        .replace("layers: all", "layers: all\nnotes: [a note added later]")
    )
    assert _ids(tmp_path, free, "free.yaml") == base
    # a display title on a row changes nothing either
    rows = QUICK.replace("layers: all", 'layers:\n  - {name: conv, display: "plain convolution, 3×3"}\n  - pnn')
    plain = QUICK.replace("layers: all", "layers: [conv, pnn]")
    assert _ids(tmp_path, rows, "rows.yaml") == _ids(tmp_path, plain, "plain.yaml")
    # what changes the computation changes every id
    for old, new in (
        ("lr: 0.05,", "lr: 0.04,"),
        ("epochs: 15\n  batch_size", "epochs: 14\n  batch_size"),
        ("options: {n: 1, width: 1}", "options: {n: 1, width: 2}"),
        ("crop_padding: 1", "crop_padding: 2"),
    ):
        changed = _ids(tmp_path, QUICK.replace(old, new), "changed.yaml")
        assert not set(changed) & set(base), (old, new)


def test_rows_that_differ_only_in_name_are_refused(tmp_path):
    text = QUICK.replace("layers: all", "layers:\n  - {name: conv, label: conv-a}\n  - {name: conv, label: conv-b}")
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="'conv-a' and 'conv-b' are the same run"):
        load_suite(path).expand()


def test_a_per_row_option_is_resolved_to_the_row_value():
    spec = {
        "task": {"name": "linear-fit", "options": {"lr_by_row": {"fast": 1.0}}},
        "dataset": {"name": "d", "options": {}},
        "backbone": {"name": "b", "options": {}},
        "layer": {"name": "deconv", "label": "fast", "options": {}},
        "protocol": {"epochs": 1},
        "seed": 0,
    }
    slow = copy.deepcopy(spec)
    slow["layer"]["label"] = "slow"
    assert run_id(spec) != run_id(slow)  # same family and options, different learning rate: two runs
    renamed = copy.deepcopy(spec)
    renamed["layer"]["label"], renamed["task"]["options"]["lr_by_row"] = "quick", {"quick": 1.0}
    assert run_id(renamed) == run_id(spec)  # the row renamed together with its entry: the same run


def _committed_records() -> list[dict]:
    out = []
    for path in sorted((ROOT / "results").rglob("*.json")):
        rec = json.loads(path.read_text())
        if isinstance(rec, dict) and "spec" in rec and "id" in rec:
            out.append((path, rec))
    return out


def test_every_committed_record_is_keyed_by_the_current_identity():
    recs = _committed_records()
    assert len(recs) > 100
    seen = set()
    for path, rec in recs:
        assert rec.get("identity_version") == IDENTITY_VERSION, path
        assert rec["id"] == run_id(rec["spec"]) and path.name.endswith(f"--{rec['id']}.json"), path
        if "legacy_id" in rec:
            assert rec["legacy_id"] == legacy_id_v1(rec["spec"]), path
        key = (rec["spec"]["suite"], rec["id"])
        assert key not in seen, path
        seen.add(key)


def test_rekey_maps_every_committed_record_one_to_one_with_unchanged_metrics(tmp_path):
    """The committed records put back in their identity-version-1 form, then re-keyed: each lands on its
    current id with the same metrics, history and artifacts, and a second pass changes nothing."""
    results = tmp_path / "results"
    recs = _committed_records()
    for path, rec in recs:
        old = copy.deepcopy(rec)
        legacy = legacy_id_v1(old["spec"])
        old["id"] = legacy
        old.pop("identity_version")
        old.pop("legacy_id", None)
        for art in old.get("artifacts") or []:
            art["path"] = art["path"].replace(f"/artifacts/{rec['id']}/", f"/artifacts/{legacy}/")
        rel = path.relative_to(ROOT / "results")
        write_json_atomic(results / rel.parent / rel.name.replace(rec["id"], legacy), old, durable=False)
        art_dir = path.parent / "artifacts" / rec["id"]
        if art_dir.is_dir():
            shutil.copytree(art_dir, results / rel.parent / "artifacts" / legacy)
    loaded, problems = load_records(results)  # re-keyed on load, before any file is renamed
    assert not problems and {r["id"] for r in loaded} == {r["id"] for _, r in recs}
    done = rekey(results)
    assert len(done["renamed"]) == len(recs) and not done["problems"]
    after = {r["id"]: r for r in load_records(results)[0]}
    for _, rec in recs:
        new = after[rec["id"]]
        assert new["metrics"] == rec["metrics"] and new.get("history") == rec.get("history")
        assert new["legacy_id"] == legacy_id_v1(rec["spec"])
        for art in new.get("artifacts") or []:
            assert (results / art["path"]).is_file()
    assert rekey(results)["renamed"] == []


def test_rekey_after_a_kill_between_its_steps_loses_and_duplicates_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    path, rec = next((p, r) for p, r in _committed_records() if r["spec"]["suite"] == "quick")
    old = copy.deepcopy(rec)
    old["id"] = legacy_id_v1(old["spec"])
    old.pop("identity_version"), old.pop("legacy_id", None)
    legacy_path = results / "quick" / path.name.replace(rec["id"], old["id"])
    write_json_atomic(legacy_path, old, durable=False)
    new_path = results / "quick" / path.name
    write_json_atomic(new_path, rec, durable=False)  # killed after writing the new file, before the old went
    assert main(["rekey", str(results)]) == 0
    assert sorted(p.name for p in (results / "quick").glob("*.json")) == [path.name]
    assert "1 re-keyed" in capsys.readouterr().out
    assert json.loads(new_path.read_text())["metrics"] == rec["metrics"]
