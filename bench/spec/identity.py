"""Run identity: the one place where a run id is computed (issue 21).

A run id hashes only what changes a run's result: the task and its options, the data set and its options, the
backbone and its options, the layer family and its options (stem included), the protocol's working fields, the
seed and the tier's overrides. Names, descriptions, display titles, row labels, notes and the suite a run is
listed in never change an id, so fixing a typo or renaming a row keeps every record. A field that is unset
(``None``) is left out, so a protocol field added later with an unset default changes no earlier id.

Identity version 1 (records written before this module) hashed the whole stored spec, suite name, protocol name
and description and row label included; :func:`legacy_id_v1` still computes it so that such records are
validated, re-keyed on load and re-keyed on disk by ``bench rekey``. Each record written now carries
``identity_version`` (:data:`IDENTITY_VERSION`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

IDENTITY_VERSION = 2
ID_FORMAT = re.compile(r"[0-9a-f]{16}")  # the first 16 hex digits of a sha256

# free text: never part of an identity, at any level of the protocol
FREE_TEXT = frozenset({"name", "description", "display", "notes", "title"})
# the parts of a spec that name what was run (task, data set, backbone, family): their name and options count
NAMED_PARTS = ("task", "dataset", "backbone")
BY_ROW = "_by_row"
LEGACY_KEYS = ("suite", "task", "dataset", "backbone", "layer", "protocol", "seed", "overrides")


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _digest(obj: Any, n: int) -> str:
    return hashlib.sha256(_json(obj).encode()).hexdigest()[:n]


_LEAVES = frozenset({str, int, float, bool})  # exact types returned as they are, without a call per value


def _unset_dropped(value: Any) -> Any:
    """``value`` with every mapping entry that is ``None`` left out, at every depth."""
    if isinstance(value, dict):
        return {k: v if type(v) in _LEAVES else _unset_dropped(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _LEAVES else _unset_dropped(v) for v in value]
    return value


def _keep(value: Any) -> Any:
    return value


def _protocol(protocol: dict, drop=_unset_dropped) -> dict:
    """The protocol's working fields: free text left out at the top level (its ``name``, ``description``);
    nested mappings keep their ``name`` (``optimizer.name: sgd`` is a working field), and unset fields go."""
    return drop({k: v for k, v in (protocol or {}).items() if k not in FREE_TEXT})


def _named(part: Any, label: Any = None, resolve: bool = True, drop=_unset_dropped) -> dict:
    """A part's name and options. A per-row option (``<option>_by_row``: a mapping of row label to value, e.g.
    the task's ``lr_by_row``) is resolved to this run's row, so the id sees the row's value, never its label."""
    part = part if isinstance(part, dict) else {}
    options = part.get("options") if isinstance(part.get("options"), dict) else {}
    if resolve:
        options = {k: (v.get(label) if k.endswith(BY_ROW) and isinstance(v, dict) else v) for k, v in options.items()}
    return drop({"name": part.get("name"), "options": options})


def identity(spec: dict, per_row: bool = True, drop=_unset_dropped) -> dict:
    """What a run's result depends on, from a stored spec (:meth:`bench.spec.suite.RunSpec.to_dict`) or a record's.
    ``per_row=False`` keeps per-row options as the whole mapping (what the rows of one leaderboard share).
    ``drop``: how unset fields go (:func:`_keep` keeps them: the form :func:`canonical_parts` starts from)."""
    layer = spec.get("layer") if isinstance(spec.get("layer"), dict) else {}
    out = {key: _named(spec.get(key), layer.get("label"), per_row, drop) for key in NAMED_PARTS}
    out["layer"] = drop({"name": layer.get("name"), "options": layer.get("options") or {}, "stem": layer.get("stem")})
    out["protocol"] = _protocol(spec.get("protocol"), drop)
    out["seed"] = spec.get("seed")
    out["overrides"] = drop(spec.get("overrides") or {})
    return out


_TEXTS: dict[str, str] = {}  # JSON text of a part as given → the text with its unset fields dropped
_TEXTS_MAX = 4096


def _text(part: Any) -> str:
    """``_json(_unset_dropped(part))``, the text of one part of an identity. The part is encoded as given first
    (C speed); the walk that drops unset fields, most of a run id's cost, runs only when that text has a
    ``null`` and has not been seen: what dropping yields is a function of the encoded text (an unset field is an
    entry whose value encodes as ``null``), and the records of one suite share their protocol, data set and
    task, so it is cached by that text."""
    try:
        raw = _json(part)
    except (TypeError, ValueError):  # e.g. keys that cannot be sorted until an unset entry is dropped
        return _json(_unset_dropped(part))
    if "null" not in raw:
        return raw
    hit = _TEXTS.get(raw)
    if hit is None:
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        hit = _TEXTS[raw] = _json(_unset_dropped(part))
    return hit


def canonical_parts(spec: dict) -> tuple[str, str]:
    """``(head, tail)``: the JSON text :func:`run_id` hashes, ``_json(identity(spec))``, is ``head + _json(seed)
    + tail`` for the spec with any seed put in (its keys sorted: backbone, dataset, layer, overrides, protocol,
    seed, task). One spec's parts give every seed's id without building its identity again."""
    ident = identity(spec, True, _keep)  # the parts as given; :func:`_text` drops their unset fields
    head = (
        f'{{"backbone":{_text(ident["backbone"])},"dataset":{_text(ident["dataset"])},'
        f'"layer":{_text(ident["layer"])},"overrides":{_text(ident["overrides"])},'
        f'"protocol":{_text(ident["protocol"])},"seed":'
    )
    return head, f',"task":{_text(ident["task"])}}}'


def id_with_seed(parts: tuple[str, str], seed: Any) -> str:
    """The run id of the spec :func:`canonical_parts` gave ``parts`` for, with ``seed`` put in."""
    text = str(seed) if type(seed) is int else _json(seed)  # an int's JSON is its str(): no encoder call
    return hashlib.sha256(f"{parts[0]}{text}{parts[1]}".encode()).hexdigest()[:16]


def run_id(spec: dict) -> str:
    """The run id (identity version 2): 16 hex digits of the sha256 of :func:`identity` as JSON (sorted keys,
    compact), assembled part by part (:func:`canonical_parts`)."""
    return id_with_seed(canonical_parts(spec), spec.get("seed"))


def id_of(ident: dict) -> str:
    """The run id of an :func:`identity` (``identity(spec)["seed"]`` is ``spec["seed"]``, so one identity with
    each seed put in gives every seed's id without expanding the spec again)."""
    return _digest(ident, 16)


def legacy_id_v1(spec: dict) -> str:
    """The id identity version 1 gave the same stored spec (the whole spec, free text included)."""
    return _digest({k: spec.get(k) for k in LEGACY_KEYS}, 16)


def group_key(spec: dict) -> str:
    """Which runs share a leaderboard: the same task, data set, protocol and overrides (free text left out)."""
    ident = identity(spec, per_row=False, drop=_keep)  # rows with their own learning rate still share one board
    blob = (
        f'{{"dataset":{_text(ident["dataset"])},"overrides":{_text(ident["overrides"])},'
        f'"protocol":{_text(ident["protocol"])},"task":{_text(ident["task"])}}}'
    )  # _json of the four parts of identity(spec, per_row=False), keys sorted
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def record_id_problem(rec: dict, spec: dict) -> str | None:
    """Why ``rec["id"]`` is not its spec's id under the record's identity version (one line), or None."""
    rid, version = rec.get("id"), rec.get("identity_version")
    if version is None:  # written before records said: either version's hash (they cannot coincide)
        if rid in (run_id(spec), legacy_id_v1(spec)):
            return None
        want, version = run_id(spec), "1 or 2"
    elif version == IDENTITY_VERSION:
        want = run_id(spec)
    elif version == 1:
        want = legacy_id_v1(spec)
    else:
        return f"identity_version: {str(version)[:20]!r} is not one this harness knows (1, {IDENTITY_VERSION})"
    if rid != want:
        return f"id: {rid} is not the hash of the record's spec ({want}, identity version {version})"
    return None
