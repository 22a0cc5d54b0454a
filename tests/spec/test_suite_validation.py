"""Suite validation is complete (issue 19): duplicate keys, alias bombs and recursive aliases, non-UTF-8 and
control characters, every numeric protocol field and tier override checked for type, finiteness and range
through one path, reference values finite; each a single line naming the file and the field, exit code 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import SpecError
from bench.spec.suite import load_suite
from tests._guard import within
from tests.cli.test_bad_input import GOOD, files_under

ROOT_SUITES = Path(__file__).resolve().parents[2] / "suites"

PROTO = "protocol: {epochs: 1, batch_size: 32, augment: [], train_subset: 64, test_subset: 32, max_batches: 1}"
BOMB = "".join(
    f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(10)
)  # 9^10 ≈ 3.5e9 values once expanded


def _proto(extra: str) -> tuple[str, str]:
    return PROTO, PROTO[:-1] + ", " + extra + "}"


CASES = [
    # (old, new, field, message)
    ("seeds: [0]", "seeds: [0]\nseeds: [5]", "line 9", "duplicate key 'seeds'"),
    ("name: bad", "name: bad\ndescription: a\ndescription: b", "line 4", "duplicate key 'description'"),
    (
        "seeds: [0]",
        "seeds: [0]\ntiers:\n  - {name: t, overrides: &o {epochs: 1}}\n" + BOMB,
        "yaml",
        "after expanding aliases",
    ),
    ("dataset: digits", BOMB + "dataset: {name: digits, root: *x9}", "yaml", "after expanding aliases"),
    ("seeds: [0]", "seeds: [0]\nnotes: &n [*n]", "yaml", "refers to itself"),
    ("seeds: [0]", "seeds: [0]\nnotes: " + "[" * 3000 + "]" * 3000, "", "nest"),
    ("name: bad", "name: bad\ndescription: 'a\x07b'", "line 3", "control character U+0007"),
    ("name: bad", "name: bad\ndescription: 'a\x1bb'", "line 3", "control character U+001B"),
    (*_proto("optimizer: {name: sgd, momentum: .nan}"), "protocol.optimizer.momentum", "finite"),
    (*_proto("optimizer: {name: sgd, lr: .inf}"), "protocol.optimizer.lr", "finite"),
    (*_proto("optimizer: {name: sgd, momentum: 1.5}"), "protocol.optimizer.momentum", "[0, 1]"),
    (*_proto("optimizer: {name: sgd, weight_decay: -1.0}"), "protocol.optimizer.weight_decay", "[0, 1]"),
    (*_proto("label_smoothing: 5"), "protocol.label_smoothing", "[0, 1)"),
    (*_proto("crop_padding: -3"), "protocol.crop_padding", "[0, 256]"),
    (*_proto("threshold: .nan"), "protocol.threshold", "finite"),
    (*_proto("threshold: 150"), "protocol.threshold", "[0, 100]"),
    (*_proto("schedule: {name: step, gamma: .inf}"), "protocol.schedule.gamma", "finite"),
    (*_proto("schedule: {name: step, milestones: [-2]}"), "protocol.schedule.milestones[0]", "positive"),
    ("batch_size: 32", "batch_size: 100000000000", "protocol.batch_size", "at most"),
    ("options: {n: 1}", "options: {n: 1000000}", "backbones[0].options.n", "at most 100000"),
    ("options: {n: 1}", "options: {n: 1, width: .nan}", "backbones[0].options.width", "finite"),
    ("seeds: [0]", "seeds: [0]\ntiers: [{name: t, overrides: {epochs: -5}}]", "tiers[0].overrides.epochs", "positive"),
    (
        "seeds: [0]",
        "seeds: [0]\ntiers: [{name: t, overrides: {epochs: 100000000}}]",
        "tiers[0].overrides.epochs",
        "at most 10000",
    ),
    (
        "seeds: [0]",
        "seeds: [0]\ntiers: [{name: t, overrides: {max_batches: 0}}]",
        "tiers[0].overrides.max_batches",
        "positive",
    ),
    (
        "seeds: [0]",
        "seeds: [0]\ntiers: [{name: t, overrides: {epochs: two}}]",
        "tiers[0].overrides.epochs",
        "expected integer",
    ),
    ("seeds: [0]", "seeds: [0]\ntiers: [{name: t, overrides: {lr: 1.0}}]", "tiers[0].overrides.lr", "overridable"),
    ("dataset: digits", "dataset: {name: digits, root: 5}", "dataset.root", "expected string or null"),
    (
        "seeds: [0]",
        "seeds: [0]\nreferences: [{row: conv, value: .nan, document: '004', where: T1, setting: s}]",
        "references[0].value",
        "finite",
    ),
    (
        "seeds: [0]",
        "seeds: [0]\ncontext: [{label: x, value: .inf, document: '004', where: T1}]",
        "context[0].value",
        "finite",
    ),
]


def _run(tmp_path, capsys, blob: bytes):
    suite = tmp_path / "suites" / "bad.yaml"
    suite.parent.mkdir(exist_ok=True)
    suite.write_bytes(blob)
    before = files_under(tmp_path)
    with within(30, "bench run --dry-run on a bad suite"):
        rc = main(["run", str(suite), "--results", str(tmp_path / "results"), "--dry-run"])
    err = capsys.readouterr().err.strip().splitlines()
    assert files_under(tmp_path) == before
    return suite, rc, err


@pytest.mark.parametrize("old,new,field,message", CASES, ids=[f"{c[2]}:{c[3]}"[:60] for c in CASES])
def test_malformed_suite_is_one_line_exit_2(tmp_path, capsys, old, new, field, message):
    assert old in GOOD
    suite, rc, err = _run(tmp_path, capsys, GOOD.replace(old, new, 1).encode())
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"bench: error: {suite}: {field}") and message in err[0], err[0]


@pytest.mark.parametrize(
    "encode,what",
    [
        (lambda t: t.replace("name: bad", "name: bad\ndescription: café").encode("latin-1"), "latin-1"),
        (lambda t: t.encode("utf-16"), "UTF-16"),
        (lambda t: bytes(range(256)) * 4, "binary"),
    ],
)
def test_non_utf8_suite_is_one_line_exit_2(tmp_path, capsys, encode, what):
    suite, rc, err = _run(tmp_path, capsys, encode(GOOD))
    assert rc == 2 and len(err) == 1 and f"{suite}: " in err[0] and "not UTF-8" in err[0], (what, err)


def test_a_utf8_bom_and_crlf_line_ends_are_fine(tmp_path):
    (tmp_path / "ok.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    plain = tmp_path / "plain.yaml"
    plain.write_text(GOOD)
    assert [s.id for s in load_suite(tmp_path / "ok.yaml").expand()] == [s.id for s in load_suite(plain).expand()]


@pytest.mark.parametrize("kind", ["zero", "fifo", "dir"])
def test_a_suite_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / "s.yaml"
    if kind == "zero":
        os.symlink("/dev/zero", path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with within(30, f"load_suite of a {kind}"), pytest.raises(SpecError) as exc:
        load_suite(path)
    assert str(exc.value).startswith(f"{path}: cannot read") and "\n" not in str(exc.value)


def test_merge_keys_may_still_be_overridden(tmp_path):
    text = GOOD.replace(
        PROTO, "base: &b {epochs: 1, batch_size: 32, augment: []}\nprotocol: {<<: *b, batch_size: 16, max_batches: 1}"
    )
    # a top-level 'base' key is not a suite field: the merge itself parses, validation names the key
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(SpecError, match="base: unknown key"):
        load_suite(tmp_path / "m.yaml")


def test_tier_overrides_are_those_that_run(tmp_path):
    (tmp_path / "t.yaml").write_text(GOOD + "tiers: [{name: t, overrides: {epochs: 2, max_batches: 3}}]\n")
    spec = load_suite(tmp_path / "t.yaml").expand(tier="t")[0]
    assert spec.protocol["epochs"] == 2 and spec.protocol["max_batches"] == 3


def test_committed_suites_load_and_keep_their_run_ids():
    """Run ids of the committed records are unchanged: every record's id is its suite's expansion's."""
    from pathlib import Path

    from bench.spec.documents import suite_files
    from bench.records.records import load_records

    root = Path(__file__).resolve().parents[2]
    records, _ = load_records(root / "results")
    ids_by_suite: dict[str, set] = {}
    for path in suite_files(root / "suites"):  # documents.yaml is not a suite
        s = load_suite(path)
        ids = {x.id for x in s.expand()}
        for t in s.tiers:
            ids |= {x.id for x in s.expand(tier=t["name"])}
        ids_by_suite[s.name] = ids
    plain = [r for r in records if not r["spec"].get("overrides")]
    assert plain
    missing = [r["_path"] for r in plain if r["id"] not in ids_by_suite.get(r["suite"]["name"], set())]
    # records of suites whose file changed since (superseded rows) may be missing; most must match
    assert len(missing) < len(plain) / 2, missing


@pytest.mark.parametrize(
    "task, backbone",
    [
        ("detection", "preact-resnet"),
        ("classification", "vgg16-cnn-dcn"),
        ("segmentation", "tv-vgg16"),
        ("linear-fit", "resnet18"),
    ],
)
def test_a_backbone_that_cannot_serve_the_task_is_refused_when_the_suite_loads(tmp_path, capsys, task, backbone):
    """Issue 21: detection with preact-resnet used to load and then record every run as failed."""
    text = (ROOT_SUITES / "detection.yaml").read_text()
    import yaml

    data = yaml.safe_load(text)
    data["task"] = {"name": task}
    data["backbones"] = [{"name": backbone}]
    path = tmp_path / "incompatible.yaml"
    path.write_text(yaml.safe_dump(data))
    rc = main(["run", str(path), "--dry-run", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "backbones[0]" in err[0] and f"cannot serve task '{task}'" in err[0]
    assert not (tmp_path / "r").exists()
