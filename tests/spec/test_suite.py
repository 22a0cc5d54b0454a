"""Suite validation (good and bad files), expansion into run specs, hashing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.cli import main
from bench.spec.documents import suite_files
from bench.errors import SpecError
from bench.zoo.layers import LAYERS
from bench.spec.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
name: t
task: classification
dataset: digits
protocol: {epochs: 2, batch_size: 32}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, {name: pnn, options: {fanout: 2}, label: pnn-f2}]
seeds: [0, 1]
references:
  - {row: conv, value: 90.0, document: "004", where: "Fig. 3", setting: "x"}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_good_suite_expands_with_defaults(tmp_path):
    s = load_suite(write(tmp_path, GOOD))
    specs = s.expand()
    assert len(specs) == 2 * 1 * 2
    assert {sp.label for sp in specs} == {"conv", "pnn-f2"}
    pnn = next(sp for sp in specs if sp.label == "pnn-f2")
    # options are resolved against the family's defaults
    assert pnn.layer["options"] == {**LAYERS.get("pnn").defaults, "fanout": 2}
    assert pnn.protocol["optimizer"]["name"] == "sgd" and pnn.protocol["augment"] == ["crop", "flip"]
    assert s.references[0]["source"] == "paper"


def test_layers_all_means_every_registered_family(tmp_path):
    s = load_suite(
        write(tmp_path, GOOD.replace("layers: [conv, {name: pnn, options: {fanout: 2}, label: pnn-f2}]", "layers: all"))
    )
    assert [l["name"] for l in s.layers] == LAYERS.names()


@pytest.mark.parametrize(
    "change,field,message",
    [
        ("protocol: {epochs: 2, batch_size: 32}", "protocol.epochs", "expected integer"),
        ("dataset: digits", "dataset.name", "unknown data set 'nope'"),
        ("layers: [conv, {name: pnn, options: {fanout: 2}, label: pnn-f2}]", "layers[0].name", "unknown layer family"),
        ("backbones: [{name: preact-resnet, options: {n: 1}}]", "backbones[0].options", "unknown option 'depth'"),
        ("seeds: [0, 1]", "colour", "unknown key"),
        ("seeds: [0, 1]", "seeds[1]", "expected integer"),
        ("layers: [conv, {name: pnn, options: {fanout: 2}, label: pnn-f2}]", "layers[1].label", "duplicate row label"),
        (
            '  - {row: conv, value: 90.0, document: "004", where: "Fig. 3", setting: "x"}',
            "references[0].where",
            "required field is missing",
        ),
    ],
)
def test_bad_suites_name_file_and_field(tmp_path, change, field, message):
    replacement = {
        "protocol.epochs": "protocol: {epochs: two, batch_size: 32}",
        "dataset.name": "dataset: nope",
        "layers[0].name": "layers: [convv]",
        "backbones[0].options": "backbones: [{name: preact-resnet, options: {depth: 3}}]",
        "colour": "seeds: [0, 1]\ncolour: red",
        "seeds[1]": "seeds: [0, x]",
        "layers[1].label": "layers: [conv, {name: sep-full, label: conv}]",
        "references[0].where": '  - {row: conv, value: 90.0, document: "004", setting: "x"}',
    }[field]
    path = write(tmp_path, GOOD.replace(change, replacement))
    with pytest.raises(SpecError) as exc:
        load_suite(path)
    text = str(exc.value)
    assert text.startswith(f"{path}: {field}: ") and message in text
    assert "\n" not in text


def test_cli_bad_suite_is_one_line_exit_2_and_runs_nothing(tmp_path):
    path = write(tmp_path, GOOD.replace("dataset: digits", "dataset: nope"))
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(path), "--results", str(results)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "dataset.name" in lines[0]
    assert not results.exists()


def test_invalid_yaml_names_line(tmp_path):
    path = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(SpecError) as exc:
        load_suite(path)
    assert "invalid YAML" in str(exc.value) and str(path) in str(exc.value)


def test_cli_override_must_be_positive(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert main(["run", str(path), "--epochs", "0", "--results", str(tmp_path / "r")]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_spec_hash_is_stable_and_sensitive(tmp_path):
    a = load_suite(write(tmp_path, GOOD)).expand()
    b = load_suite(write(tmp_path, GOOD + "\n# a comment changes nothing\n", "s2.yaml")).expand()
    assert [s.id for s in a] == [s.id for s in b]
    assert len({s.id for s in a}) == len(a)
    c = load_suite(write(tmp_path, GOOD)).expand({"epochs": 1})
    assert all(x.id != y.id for x, y in zip(a, c))
    assert c[0].overrides == {"epochs": 1} and c[0].protocol["epochs"] == 1
    # where the data lives is not part of a run's identity
    d = load_suite(write(tmp_path, GOOD)).expand(data_root="/somewhere/else")
    assert [s.id for s in a] == [s.id for s in d]


def test_every_committed_suite_validates():
    suites = suite_files(Path(__file__).resolve().parents[2] / "suites")  # without documents.yaml
    assert suites
    for path in suites:
        s = load_suite(path)
        assert s.expand()


def test_default_run_ids_are_the_full_expansions_ids_for_every_committed_suite():
    """Suite.default_run_ids (one seed's expansion, each seed's id put in: what the report's stale-record and
    cost readers share) gives exactly the runs and ids of a full expansion, on every committed suite; a tier's
    seed parts are the tier expansion's."""
    for path in suite_files(Path(__file__).resolve().parents[2] / "suites"):
        s = load_suite(path)
        full = s.expand()
        got = s.default_run_ids()
        assert sorted(rid for _, rid in got) == sorted(sp.id for sp in full), path.name
        by_id = {sp.id: sp for sp in full}
        for sp, rid in got:  # the spec given with an id is that run's, seed aside
            assert {**sp.to_dict(), "seed": by_id[rid].seed} == by_id[rid].to_dict(), path.name
        for t in s.tiers:
            tiered = s.expand(seeds=[0], tier=t["name"])
            assert [sp.id for sp, _ in s.seed_parts(tier=t["name"])] == [sp.id for sp in tiered]


def test_yaml_memo_returns_what_parsing_returns_and_never_hides_an_error(tmp_path, monkeypatch):
    """load_suite's YAML memo ($BENCH_CACHE/yaml, keyed by the text's checksum): a second load reads the memo;
    another text is parsed again; invalid YAML is an error every time; an edited or bad memo is not used (issue
    19: an edited memo changed which runs ran) and bench run never reads one; data marshal cannot hold (a date)
    is not memoised."""
    import marshal

    import yaml

    from bench.spec.suite import _MEMO_MAGIC, _parse_yaml, _YamlProblem, load_suite

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    memo_dir = tmp_path / "cache" / "yaml"
    assert _parse_yaml("when: 2024-01-02\n")["when"].year == 2024
    assert not list(memo_dir.glob("*.marshal"))
    text = "name: m\nlist: [1, 2.5, null, true]\nmap: {3: x, 'y': [a]}\n"
    first = _parse_yaml(text)
    (memo,) = memo_dir.glob("*.marshal")
    good = memo.read_bytes()
    assert (
        marshal.loads(good[len(_MEMO_MAGIC) + 32 :])
        == first
        == {"name": "m", "list": [1, 2.5, None, True], "map": {3: "x", "y": ["a"]}}
    )
    real_load = yaml.load
    with monkeypatch.context() as m:
        m.setattr(yaml, "load", lambda *a, **k: pytest.fail("parsed although a valid memo is there"))
        assert _parse_yaml(text) == first  # what a second load reads: the memo
    payload = marshal.dumps({"name": "from the memo"})
    for edited in (
        marshal.dumps({"name": "from the memo"}),  # an old-format or hand-written memo
        good[: len(_MEMO_MAGIC) + 32] + payload,
    ):  # a payload edited under the old digest
        memo.write_bytes(edited)
        assert _parse_yaml(text) == first  # not trusted: parsed again (and the memo rewritten)
        assert memo.read_bytes() == good
    assert yaml.load is real_load
    assert _parse_yaml(text + "extra: 1\n")["extra"] == 1  # another text, another key
    memo.write_bytes(b"\x00garbage")
    assert _parse_yaml(text) == first  # a bad memo: parsed again
    for _ in range(2):
        with pytest.raises(_YamlProblem):
            _parse_yaml("name: [unclosed\n")
    assert len(list(memo_dir.glob("*.marshal"))) == 2  # the two valid texts; no error was memoised
    # bench run's load: the file alone decides, even a memo forged with a valid digest is not read
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text((ROOT / "suites" / "quick.yaml").read_text())
    assert load_suite(suite_file).seeds == [0]
    key_memo = max(memo_dir.glob("*.marshal"), key=lambda q: q.stat().st_mtime_ns)
    import hashlib

    key = key_memo.stem
    forged = {**marshal.loads(key_memo.read_bytes()[len(_MEMO_MAGIC) + 32 :]), "seeds": [5]}
    payload = marshal.dumps(forged)
    key_memo.write_bytes(_MEMO_MAGIC + hashlib.sha256(key.encode() + payload).digest() + payload)
    assert load_suite(suite_file).seeds == [5]  # the report's loads may use a (valid-looking) memo …
    assert load_suite(suite_file, use_memo=False).seeds == [0]  # … bench run's never
