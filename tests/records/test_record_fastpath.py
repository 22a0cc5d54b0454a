"""The fast path of record reading (issue 20 item 6) against the full checks: a plain ``json.loads`` and one
compiled schema walk (:func:`bench.records.recordschema.valid`) must accept exactly the records the full checks accept,
with the same value, and every refused record must get the full checks' error, word for word."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

import bench.records.records as records
from bench.records.recordschema import range_error, type_error, valid
from bench.records.safeio import MAX_DEPTH, depth_error

ROOT = Path(__file__).resolve().parents[2]


def _base() -> dict:
    for p in sorted((ROOT / "results").rglob("*.json")):
        if "benchmarks" in p.parts:
            continue
        rec = json.loads(p.read_text())
        if isinstance(rec, dict) and rec.get("history") and rec.get("curves") and rec.get("status") == "ok":
            return rec
    raise AssertionError("no committed record with a history and curves")


def _outcome(path: Path, fast: bool, monkeypatch) -> tuple:
    """(what read_record returned or raised) with the fast path on or off."""
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(records, "_well_formed", lambda blob, valid: None)
        try:
            rec, blob = records.read_record(path)
        except (OSError, ValueError) as exc:
            return ("error", type(exc).__name__, str(exc))
    return ("ok", json.dumps(rec, sort_keys=True), blob)


def _same(tmp_path: Path, text: bytes, monkeypatch) -> tuple:
    path = tmp_path / "r.json"
    path.write_bytes(text)
    fast, full = _outcome(path, True, monkeypatch), _outcome(path, False, monkeypatch)
    assert fast == full
    return full


def _nest(depth: int):
    v: object = 1
    for _ in range(depth):
        v = [v]
    return v


def _paths(value, at=()):
    """Every (path to a node) of a JSON value."""
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, at + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, at + (i,))


def _put(rec, path, value):
    node = rec
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


POOL = [None, True, False, 0, 1, -3, 2.5, -0.0, "x", "", [], {}, [1, "a"], {"a": 1}, {"epoch": 1}, 10**30]
SPECIAL = [float("nan"), float("inf"), -float("inf"), {"a": float("nan")}, [1.0, float("inf")]]


def test_the_committed_records_take_the_fast_path():
    for p in sorted((ROOT / "results").rglob("*.json")):
        if "benchmarks" in p.parts:
            continue
        rec = json.loads(p.read_text())
        if isinstance(rec, dict) and "spec" in rec:
            assert valid(rec), p


@pytest.mark.parametrize("seed", range(4))
def test_random_mutations_agree_with_the_full_checks(tmp_path, monkeypatch, seed):
    base = _base()
    paths = [p for p in _paths(base) if p]
    rng = random.Random(seed)
    outcomes = set()
    for _ in range(120):
        rec = copy.deepcopy(base)
        for _ in range(rng.choice((1, 1, 2))):
            live = [p for p in _paths(rec) if p]
            _put(rec, rng.choice(live or paths), copy.deepcopy(rng.choice(POOL + SPECIAL)))
        text = json.dumps(rec, allow_nan=True).encode()
        outcome = _same(tmp_path, text, monkeypatch)
        outcomes.add(outcome[0])
        if outcome[0] == "ok":  # what the fast path passes: typed, finite, shallow, in range
            loaded = json.loads(text)
            assert type_error(loaded) is None and range_error(loaded) is None and depth_error(loaded) is None
    assert outcomes == {"ok", "error"}  # both kinds were exercised


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r.update(schema=True),
        lambda r: r.update(schema=1.0),
        lambda r: r.update(schema=r["schema"] + 1),
        lambda r: r.pop("spec"),
        lambda r: r.pop("label"),
        lambda r: r.update(invocation={"argv": _nest(MAX_DEPTH - 2)}),  # exactly the deepest allowed
        lambda r: r.update(invocation={"argv": _nest(MAX_DEPTH - 1)}),  # one level too deep
        lambda r: r.update(invocation={"argv": _nest(900)}),
        lambda r: r.update(provenance={"x": [1.0, float("nan")]}),
        lambda r: r["metrics"].update(top1=float("inf")),
        lambda r: r["history"][0].update(test_acc=float("-inf")),
        lambda r: r["spec"]["protocol"].update(epochs=True),
        lambda r: r["spec"]["protocol"].update(epochs=2.0),
        lambda r: r["spec"].update(seed=False),
        lambda r: r["spec"].update(overrides={"epochs": "2"}),
        lambda r: r["data"].update(classes=0),
        lambda r: r["data"].update(classes=[1, float("nan")]),
        lambda r: r.update({"*": float("nan")}),
        lambda r: r.update({"*": {"deep": "ok"}}),
        lambda r: r["curves"].update(acc={"x": [1, None], "y": [2.0, 3.0], "xlabel": "e", "ylabel": "a"}),
        lambda r: r["curves"].update(acc={"x": [1, True], "y": [2.0], "xlabel": "e", "ylabel": "a"}),
        lambda r: r.update(artifacts=[{"path": "a.png", "caption": None}]),
        lambda r: r.update(artifacts=[{"path": 3}]),
        lambda r: r.update(macs=10**300, duration_s=3),
    ],
)
def test_crafted_records_agree_with_the_full_checks(tmp_path, monkeypatch, edit):
    rec = _base()
    edit(rec)
    _same(tmp_path, json.dumps(rec, allow_nan=True).encode(), monkeypatch)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": NaN}',
        b"[]",
        b"null",
        b'{"schema": 1e400}',
        b"[" * 990 + b"]" * 990,
        b"[" * 5000 + b"]" * 5000,
        '{"a": "\udcff"}'.encode("utf-8", "surrogatepass"),
        b"\xff\xfe{\x00}\x00",  # UTF-16: json.loads of bytes would take it; the reader must not
        b'{"schema": 1, "id": "x"',
    ],
)
def test_hostile_text_agrees_with_the_full_checks(tmp_path, monkeypatch, text):
    assert _same(tmp_path, text, monkeypatch)[0] == "error"


def test_huge_numbers_in_text_agree(tmp_path, monkeypatch):
    rec = _base()
    text = json.dumps(rec).replace('"seed": ', '"seed": 1e999, "x": ', 1).encode()
    _same(tmp_path, text, monkeypatch)
    text = json.dumps(rec).replace('"seed": ', '"unknown": -1E+309, "seed": ', 1).encode()
    assert _same(tmp_path, text, monkeypatch)[0] == "error"


def test_an_int_past_float_range_is_refused_with_its_field(tmp_path, monkeypatch):
    rec = _base()
    rec["macs"] = 10**300
    assert valid(rec)
    rec["macs"] = 10**400  # no float can hold it: refused (it used to crash the full check's math.isfinite)
    assert not valid(rec)
    assert type_error(rec) == "macs: expected number or null, got an integer past float range"
    outcome = _same(tmp_path, json.dumps(rec).encode(), monkeypatch)
    assert outcome[0] == "error" and "macs" in outcome[2] and "past float range" in outcome[2]
