"""The record memo (bench.records.memo) and the report's shortcuts that must give what the long way gives: a
memoised load equals a fresh parse, sees every change of a file or of its folder, and ignores a damaged memo;
a run id assembled part by part equals the hash of the whole identity; the run data's record text is the
record."""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path

import pytest

import bench.records.records as records_mod
from bench.records.records import compact_text, json_bytes, load_records
from bench.report.runpage import _public, record_json
from bench.spec.identity import canonical_parts, id_of, id_with_seed, identity, run_id

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def results(tmp_path):
    """A results folder with a few committed records (two suites)."""
    out = tmp_path / "results"
    for suite in ("fast-cifar-v2", "quick"):
        files = sorted((ROOT / "results" / suite).glob("*.json"))[:3]
        assert files, suite
        (out / suite).mkdir(parents=True)
        for f in files:
            shutil.copy(f, out / suite / f.name)
    return out


def _counting(monkeypatch, name: str) -> list[int]:
    """Count the calls of ``bench.records.records.<name>`` (still calling it)."""
    count = [0]
    real = getattr(records_mod, name)

    def counting(arg):
        count[0] += 1
        return real(arg)

    monkeypatch.setattr(records_mod, name, counting)
    return count


@pytest.fixture
def parses(monkeypatch):
    """How many files load_records parsed and validated (not taken from the memo)."""
    return _counting(monkeypatch, "parse_record")


@pytest.fixture
def reads(monkeypatch):
    """How many record files load_records read."""
    return _counting(monkeypatch, "read_regular_record")


def test_a_memoised_load_equals_a_fresh_parse_and_parses_nothing(results, parses):
    fresh, problems = load_records(results, use_memo=False)
    assert len(fresh) == 6 and not problems and parses[0] == 6
    first, _ = load_records(results)  # fills the memo
    parses[0] = 0
    again, _ = load_records(results)
    assert parses[0] == 0  # every file from the memo
    assert again == first == fresh  # the same records, loader keys (_path, _group, _json) included


def test_a_changed_file_is_parsed_again_and_a_new_one_too(results, parses):
    load_records(results)
    victim = sorted((results / "quick").glob("*.json"))[0]
    rec = json.loads(victim.read_text())
    rec["metrics"]["top1"] = 12.5  # a different record under the same name and id
    victim.write_bytes(json_bytes(rec))
    parses[0] = 0
    loaded, problems = load_records(results)
    assert parses[0] == 1 and not problems
    assert {r["_path"]: r for r in loaded}[str(victim.relative_to(results))]["metrics"]["top1"] == 12.5
    victim.write_text("{not json")  # and a file that no longer is a record is reported, memo or not
    loaded, problems = load_records(results)
    assert len(loaded) == 5 and [Path(p).name for p, _ in problems] == [victim.name]


def test_a_settled_file_is_not_read_again_and_any_write_to_it_is_seen(results, parses, reads, monkeypatch):
    """A file unchanged since the memo noted its status is not read; rewritten in place with the same size and
    its modification time put back (what ``cp -p`` or a careless editor does), its change time moved: read,
    hashed and parsed again."""
    import os
    import time

    import bench.records.memo as memo_mod

    monkeypatch.setattr(memo_mod, "SETTLED_NS", 0)  # files written before the load count as settled
    first, _ = load_records(results)
    reads[0] = parses[0] = 0
    again, problems = load_records(results)
    assert (reads[0], parses[0]) == (0, 0) and again == first and not problems
    victim = sorted((results / "quick").glob("*.json"))[0]
    blob, st = victim.read_bytes(), victim.stat()
    at = blob.index(b'"top1": ') + len(b'"top1": ')
    digit = blob[at : at + 1]
    assert digit.isdigit()
    changed = blob[:at] + (b"1" if digit != b"1" else b"2") + blob[at + 1 :]
    time.sleep(0.05)  # past the file system clock's tick, so that the write gets a later change time
    victim.write_bytes(changed)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size and victim.stat().st_mtime_ns == st.st_mtime_ns
    reads[0] = parses[0] = 0
    loaded, _ = load_records(results)
    assert (reads[0], parses[0]) == (1, 1)
    top1 = {r["_path"]: r for r in loaded}[str(victim.relative_to(results))]["metrics"]["top1"]
    assert top1 == json.loads(changed)["metrics"]["top1"] != json.loads(blob)["metrics"]["top1"]


def test_a_file_changed_just_before_a_load_is_read_again_next_time(results, parses, reads):
    """Under the real settling time, files written a moment ago are never taken on their status: each load
    reads and hashes them (and, their bytes known, parses none)."""
    load_records(results)
    reads[0] = parses[0] = 0
    load_records(results)
    assert (reads[0], parses[0]) == (6, 0)


def test_a_damaged_or_foreign_memo_is_not_used(results, parses, tmp_path):
    from bench.records.memo import RecordMemo

    want, _ = load_records(results)
    memo = RecordMemo(results).path  # this folder's memo
    blob = bytearray(memo.read_bytes())
    blob[-10] ^= 0xFF  # one byte of the payload
    memo.write_bytes(bytes(blob))
    parses[0] = 0
    assert load_records(results)[0] == want and parses[0] == 6  # checked, refused, every file parsed
    # another folder's memo (same bytes, other path) is another file: nothing of this folder's is reused
    other = tmp_path / "other"
    shutil.copytree(results, other)
    parses[0] = 0
    load_records(other)
    assert parses[0] == 6


def test_artifact_paths_are_checked_against_the_folder_as_it_is_now(results, tmp_path):
    suite = results / "quick"
    victim = sorted(suite.glob("*.json"))[0]
    rec = json.loads(victim.read_text())
    rec["artifacts"] = [{"path": "quick/artifacts/x/plot.png", "kind": "image"}]
    victim.write_bytes(json_bytes(rec))
    (suite / "artifacts" / "x").mkdir(parents=True)
    (suite / "artifacts" / "x" / "plot.png").write_bytes(b"png")
    loaded, problems = load_records(results)
    assert len(loaded) == 6 and not problems
    # the same record bytes, but its artifact folder is now a link out of the results folder
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(suite / "artifacts")
    (suite / "artifacts").symlink_to(outside, target_is_directory=True)
    loaded, problems = load_records(results)
    assert len(loaded) == 5 and "outside the results folder" in problems[0][1]


def _random_value(rng: random.Random, depth: int):
    kind = rng.random()
    if depth > 2 or kind < 0.5:
        return rng.choice([None, 0, 1, 2.5, True, "null", "a", "", -3])
    if kind < 0.75:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice("abcdef"): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_a_run_id_assembled_from_parts_is_the_hash_of_the_whole_identity():
    rng = random.Random(0)
    base = json.loads(sorted((ROOT / "results" / "fast-cifar-v2").glob("*.json"))[0].read_text())["spec"]
    for _ in range(300):
        spec = copy.deepcopy(base)
        for part in ("task", "dataset", "backbone", "layer", "protocol"):
            target = spec[part] if part == "protocol" else spec[part].setdefault("options", {})
            for _ in range(rng.randint(0, 3)):
                target[rng.choice("abcdefg")] = _random_value(rng, 0)
        if rng.random() < 0.3:
            spec["overrides"] = {"x": _random_value(rng, 0)}
        assert run_id(spec) == id_of(identity(spec))
        seed = rng.randint(0, 10**6)
        assert id_with_seed(canonical_parts(spec), seed) == id_of(dict(identity(spec), seed=seed))


def test_the_run_data_text_of_a_record_is_the_record(results):
    loaded, _ = load_records(results)
    for rec in loaded:
        assert "_json" in rec and json.loads(record_json(rec)) == _public(rec)
        changed = dict(rec, label="relabelled")
        changed.pop("_json")  # what a change does (pages.run.copy_artifacts drops it when it adds site paths)
        assert json.loads(record_json(changed))["label"] == "relabelled"


def test_the_run_data_text_of_a_record_laid_out_with_tabs_and_crlf_is_the_record(results):
    """Files from elsewhere may use CRLF line ends and tab indentation (the fast path is for LF and spaces)."""
    loaded, _ = load_records(results)
    rec = loaded[0]
    text = json.dumps(_public(rec), indent="\t", ensure_ascii=False).replace("\n", "\r\n")
    assert "\t" in text and "\r\n" in text
    for blob in (text.encode(), text.replace("\t", "  ").replace("\r\n", "\n").encode()):
        out = compact_text(blob)
        assert "\n" not in out and "\t" not in out
        assert json.loads(out) == _public(rec)


def test_record_files_are_what_sorted_rglob_gives_without_hidden_parts(tmp_path):
    """The loader's one directory walk lists the files the pathlib glob listed, in its order: nested folders,
    names that sort differently as strings than as parts, a folder named like a record, hidden parts left out,
    a link to a folder not followed."""
    from bench.records.records import record_files

    root = tmp_path / "results"
    for rel in ("a/x.json", "a-b/y.json", "a/b/z.json", "a.json", "b/.tmp.json", ".locks/c.json", "c/n.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}")
    (root / "d.json").mkdir()  # a folder: listed (read_record then says it is not a regular file)
    (root / "d.json" / "e.json").write_text("{}")
    (root / "link").symlink_to(root / "a", target_is_directory=True)
    want = [p for p in sorted(root.rglob("*.json")) if not any(s.startswith(".") for s in p.relative_to(root).parts)]
    assert record_files(root) == want
    assert [p.relative_to(root).as_posix() for p in want] == [
        "a/b/z.json",
        "a/x.json",
        "a-b/y.json",
        "a.json",
        "d.json",
        "d.json/e.json",
    ]  # by parts, not by string ("a" before "a-b" before "a.json"); nothing through the link
