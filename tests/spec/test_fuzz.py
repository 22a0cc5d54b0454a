"""A seeded fuzz test (issue 19): over a thousand mutated suites and records through ``load_suite`` and the
report's record loading and tables. None may hang and none may raise anything but the harness's one-line
errors (SpecError for suites; a skipped record with a one-line reason for records)."""

from __future__ import annotations

import copy
import json
import random

import pytest
import yaml

from bench.errors import BenchError
from bench.records.records import load_records
from bench.report.pages.suite import board_view
from bench.report.aggregate import runs_frame
from bench.report.tables import leaderboards
from bench.spec.suite import load_suite
from bench.tasks import TASKS
from tests._guard import within
from tests.cli.test_bad_input import GOOD
from tests.report.test_report import SUITE as REP_SUITE
from tests.report.test_report import fake_records

pytestmark = pytest.mark.slow  # over a thousand mutated suites and records: left out of `pytest -m "not slow"`

SEED = 19
N_SUITES = 1000
N_RECORDS = 1000

ODD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    10**30,
    -(10**30),
    1e308,
    -1e-308,
    float("nan"),
    float("inf"),
    "",
    "x",
    "../../etc",
    "\x07",
    "é",
    [],
    [1, "a"],
    {},
    {"name": 5},
    {"a": {"b": [None]}},
    "[" * 200,
    0.5,
    3.0,
    100000000,
    "2026-12-01",
]
YAML_SNIPPETS = [
    ".nan",
    ".inf",
    "-.inf",
    "-5",
    "0",
    "1e999",
    "1000000",
    "&a [*a]",
    "*nope",
    "{",
    "]",
    "'",
    "!!python/object:os.system",
    "!!binary aGk=",
    "<<: {epochs: 1}",
    "\t",
    "\x00",
    "\x1b[31m",
    "~",
    "[[[[[[[[[[",
    "? [a]\n: b",
    "---\n---",
    "%YAML 1.1\n---",
]


def _random_value(rng: random.Random, depth: int = 0):
    if depth < 3 and rng.random() < 0.2:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and rng.random() < 0.2:
        return {
            rng.choice(["name", "options", "epochs", "x", "root", "value"]): _random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))
        }
    return copy.deepcopy(rng.choice(ODD_VALUES))


def _nodes(tree, path=()):
    """Every (path, value) of a JSON/YAML tree."""
    yield path, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _nodes(v, path + (i,))


def _mutate_tree(tree, rng: random.Random, wraps=(2, 50, 300)):
    tree = copy.deepcopy(tree)
    for _ in range(rng.randint(1, 3)):
        nodes = [p for p, _ in _nodes(tree) if p]
        if not nodes:
            break
        path = rng.choice(nodes)
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.3:
            v = parent[path[-1]]
            for _ in range(rng.choice(wraps)):  # deeper ones: as text, below (dumpers recurse)
                v = [v]
            parent[path[-1]] = v
        else:
            parent[path[-1]] = _random_value(rng)
    return tree


def _mutate_text(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines()
    action = rng.randrange(6)
    i = rng.randrange(len(lines))
    if action == 0:
        del lines[i]
    elif action == 1:
        lines.insert(i, lines[rng.randrange(len(lines))])  # often a duplicate key
    elif action == 2:
        line = lines[i]
        j = rng.randrange(len(line) + 1)
        lines[i] = line[:j] + rng.choice(YAML_SNIPPETS) + line[j:]
    elif action == 3:
        lines[i] = lines[i].replace(":", ": " + rng.choice(YAML_SNIPPETS) + " #", 1)
    elif action == 4:
        blob = "\n".join(lines).encode()
        k = rng.randrange(len(blob))
        return blob[:k] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + blob[k:]
    else:
        return "\n".join(lines).encode()[: rng.randrange(len(text))]
    return "\n".join(lines).encode()


def _one_line(exc: BaseException) -> bool:
    return "\n" not in str(exc) and len(str(exc)) < 2000


def test_mutated_suites_load_or_fail_with_one_line(tmp_path):
    rng = random.Random(SEED)
    base_texts = [GOOD, REP_SUITE]
    base_trees = [yaml.safe_load(t) for t in base_texts]
    path = tmp_path / "fuzz.yaml"
    loaded = refused = 0
    with within(120, f"{N_SUITES} mutated suites"):  # a few seconds; a generous guard against a hang
        for n in range(N_SUITES):
            k = rng.randrange(len(base_texts))
            if n % 2:
                blob = _mutate_text(base_texts[k], rng)
            else:
                blob = yaml.safe_dump(_mutate_tree(base_trees[k], rng, wraps=(2, 20)), allow_unicode=True).encode()
            path.write_bytes(blob)
            try:
                s = load_suite(path)
                [x.id for x in s.expand()]
                loaded += 1
            except BenchError as exc:
                assert _one_line(exc), (blob, str(exc))
                refused += 1
    assert loaded + refused == N_SUITES and loaded > 10 and refused > 100


def test_mutated_records_are_loaded_or_skipped_with_one_line(tmp_path):
    rng = random.Random(SEED + 1)
    suite_path = tmp_path / "rep.yaml"
    suite_path.write_text(REP_SUITE)
    suite = load_suite(suite_path)
    base = fake_records(suite)
    for rec in base:
        rec.update(
            history=[{"epoch": 1, "test_acc": 50.0}],
            curves={"c": {"x": [1, 2], "y": [0.5, 0.25], "xlabel": "x", "ylabel": "y"}},
            data={"test": 359},
            finished="2026-12-01",
        )
    root = tmp_path / "results" / "rep"
    root.mkdir(parents=True)
    for n in range(N_RECORDS):
        rec = base[n % len(base)]
        if n % 3 == 0:
            text = json.dumps(rec)
            k = rng.randrange(len(text))
            blob = (
                text[:k]
                + rng.choice(["", "]", "{", "NaN", "1e999", '"', "\\u0000", "[" * 999])
                + text[k + rng.randint(0, 3) :]
            ).encode()
        else:
            blob = json.dumps(_mutate_tree(rec, rng)).encode()
        (root / f"r{n:04d}.json").write_bytes(blob)
    with within(120, f"{N_RECORDS} mutated records"):
        records, problems = load_records(tmp_path / "results")
        assert len(records) + len(problems) == N_RECORDS
        assert all("\n" not in reason for _, reason in problems)
        boards = leaderboards(runs_frame(records), records, {suite.name: suite}, TASKS)
        by_id = {r["id"]: r for r in records}
        for b in boards:
            board_view(b, by_id)
    assert problems and records  # both paths exercised
