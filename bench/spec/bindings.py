"""Every document number and claim in a suite must name something the suite can produce.

A reference names a layer row (its label), optionally a backbone, a metric and the epochs of the document's
setting; a claim names two rows (labels, or ``key=value`` selectors matched against backbone options), a
metric and optionally a backbone. ``check_bindings`` rejects, with one line naming the file and the field,
any reference or claim that names a row, backbone, option set or metric the suite cannot produce, so that no
number on the site can read "not yet run" forever. Numbers the suite cannot produce by construction (other
methods' results quoted by a document, networks or data sets not built here) belong under ``context``:
shown beside the leaderboard, never compared.

It also catches a YAML trap: in a plain (unquoted) scalar, `` #`` starts a comment, so
``where: Table 5, PNN row, #Mask = 160`` is read as ``"Table 5, PNN row,"``.
"""

from __future__ import annotations

import re

from bench.errors import SpecError

TEXT_FIELDS = ("where", "note", "text", "setting", "description", "label", "id")
_TRUNCATED = re.compile(r"^\s*(?:-\s+)?(" + "|".join(TEXT_FIELDS) + r"):\s+(?!['\"|>])[^\n#]*\s#")


def check_comment_truncation(text: str, path: str) -> None:
    """An unquoted text field containing `` #`` is cut there by YAML: reject it (quote the value)."""
    for n, line in enumerate(text.splitlines(), 1):
        m = _TRUNCATED.match(line)
        if m:
            raise SpecError(
                path,
                f"line {n}.{m.group(1)}",
                "unquoted ' #' in a text field: YAML reads the rest as a comment; quote the value",
            )


def _selector_matches(selector: str, backbones: list[dict]) -> bool:
    conds = [kv.split("=", 1) for kv in selector.split(",")]
    if any(len(c) != 2 for c in conds):
        return False
    return any(all(str(b["options"].get(k.strip())).lower() == v.strip().lower() for k, v in conds) for b in backbones)


def emits(task, metric: str) -> bool:
    """Whether a task's records may carry ``metric``: one of its ``metrics`` patterns (fnmatch) or leaderboard
    ``columns`` matches. The one rule, for a registry's ``TaskEntry`` and a catalog entry alike."""
    from fnmatch import fnmatchcase

    names = tuple(task.metrics) + tuple(c[0] for c in task.columns)
    return any(fnmatchcase(metric, pattern) for pattern in names)


def check_bindings(
    path: str, *, references: list[dict], claims: list[dict], labels: set[str], backbones: list[dict], task
) -> None:
    names = {b["name"] for b in backbones}

    def metric_ok(metric: str) -> bool:
        return task is None or emits(task, metric)

    bound: dict[tuple, tuple] = {}
    for i, ref in enumerate(references):
        where = f"references[{i}]"
        # one document value, one row: the same table cell bound to two rows would get two verdicts
        cell = (ref["document"], ref["where"], ref["metric"], ref["value"], ref.get("epochs"))
        target = (ref["row"], ref["backbone"])
        if cell in bound and bound[cell][1] != target:
            raise SpecError(
                path,
                f"{where}.row",
                f"document {ref['document']} value {ref['value']:g} "
                f"({ref['where']}) is already bound to row {bound[cell][1][0]!r} "
                f"(references[{bound[cell][0]}]): one document value binds to one row; say the other "
                "reading in its note",
            )
        bound.setdefault(cell, (i, target))
        if ref["row"] not in labels:
            raise SpecError(
                path,
                f"{where}.row",
                f"no layer row labelled {ref['row']!r} in this suite "
                f"(rows: {', '.join(sorted(labels))}); add the row, bind to the nearest runnable row "
                "and say so in the note, or move the number to 'context'",
            )
        if ref["backbone"] is not None and ref["backbone"] not in names:
            raise SpecError(
                path,
                f"{where}.backbone",
                f"backbone {ref['backbone']!r} is not run by this suite (backbones: {', '.join(sorted(names))})",
            )
        if not metric_ok(ref["metric"]):
            raise SpecError(path, f"{where}.metric", f"task {task.name!r} emits no metric {ref['metric']!r}")
    for i, claim in enumerate(claims):
        where = f"claims[{i}].check"
        chk = claim["check"]
        for side in ("a", "b"):
            ident = chk[side]
            if "=" in ident:
                if not _selector_matches(ident, backbones):
                    raise SpecError(path, f"{where}.{side}", f"no backbone of this suite has options {ident!r}")
            elif ident not in labels:
                raise SpecError(
                    path,
                    f"{where}.{side}",
                    f"no layer row labelled {ident!r} in this suite (rows: {', '.join(sorted(labels))})",
                )
        if chk["backbone"] is not None and chk["backbone"] not in names:
            raise SpecError(
                path,
                f"{where}.backbone",
                f"backbone {chk['backbone']!r} is not run by this suite (backbones: {', '.join(sorted(names))})",
            )
        if not metric_ok(chk["metric"]):
            raise SpecError(path, f"{where}.metric", f"task {task.name!r} emits no metric {chk['metric']!r}")
