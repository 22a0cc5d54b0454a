"""The site folder is owned (issue 19): the report writes only into a folder it created or one carrying its
marker, refuses any other non-empty folder (one line, exit 2), never writes through a symbolic link and
deletes only files its manifest says it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.report.owned import MARKER
from tests.records.test_record_validation import _site_inputs


def _report(tmp_path, results, suites, site, capsys):
    rc = main(["report", "--results", str(results), "--suites", str(suites), "--site", str(site)])
    return rc, capsys.readouterr().err.strip().splitlines()


def _tree(root: Path) -> dict:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in root.rglob("*")
    }


def test_a_foreign_non_empty_folder_is_refused_and_left_untouched(tmp_path, capsys):
    suites, results, _ = _site_inputs(tmp_path)
    site = tmp_path / "mine"
    for rel in ("index.html", "notes.html", "data/keep.csv", "artifacts/a.png", "runs/x.html", "todo.txt"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(rel)
    before = _tree(site)
    rc, err = _report(tmp_path, results, suites, site, capsys)
    assert rc == 2 and len(err) == 1 and "--site" in err[0] and "not a convbench site" in err[0], err
    assert _tree(site) == before


def test_new_and_empty_folders_are_claimed_with_a_marker(tmp_path, capsys):
    suites, results, _ = _site_inputs(tmp_path)
    (tmp_path / "empty").mkdir()
    for site in (tmp_path / "new" / "site", tmp_path / "empty"):
        rc, err = _report(tmp_path, results, suites, site, capsys)
        assert rc == 0 and err == []
        manifest = json.loads((site / MARKER).read_text())
        assert manifest["tool"] == "convbench" and "index.html" in manifest["files"]
        listed = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file() and p.name != MARKER}
        assert listed == set(manifest["files"])


def test_rebuild_deletes_only_what_it_wrote(tmp_path, capsys):
    suites, results, paths = _site_inputs(tmp_path)
    site = tmp_path / "site"
    assert _report(tmp_path, results, suites, site, capsys)[0] == 0
    own = sorted((site / "runs").glob("*.json"))  # each shard's records (run.html draws them from its .js)
    (site / "runs" / "user.html").write_text("mine")
    (site / "data" / "user.csv").write_text("mine")
    (site / "extra.html").write_text("mine")
    (site / "runs" / "sub").mkdir()
    (site / "runs" / "sub" / "f").write_text("mine")
    paths[0].unlink()  # its run data goes
    assert _report(tmp_path, results, suites, site, capsys)[0] == 0
    for rel in ("runs/user.html", "data/user.csv", "extra.html", "runs/sub/f"):
        assert (site / rel).read_text() == "mine", rel
    gone = [p for p in own if not p.exists()]
    assert len(gone) == 1


@pytest.mark.parametrize("sub", ["runs", "data", "artifacts"])
def test_a_linked_subfolder_is_refused_and_nothing_outside_is_touched(tmp_path, capsys, sub):
    suites, results, _ = _site_inputs(tmp_path)
    site = tmp_path / "site"
    assert _report(tmp_path, results, suites, site, capsys)[0] == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.html").write_text("keep")
    target = site / sub
    if target.exists():
        for f in sorted(target.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        target.rmdir()
    target.symlink_to(outside, target_is_directory=True)
    before = _tree(outside)
    rc, err = _report(tmp_path, results, suites, site, capsys)
    assert rc == 2 and len(err) == 1 and "symbolic link" in err[0], err
    assert _tree(outside) == before


def test_a_linked_page_is_replaced_not_written_through(tmp_path, capsys):
    suites, results, _ = _site_inputs(tmp_path)
    site = tmp_path / "site"
    assert _report(tmp_path, results, suites, site, capsys)[0] == 0
    outside = tmp_path / "outside.html"
    outside.write_text("keep")
    data, shard = next((site / "runs").glob("*.json")), next((site / "runs").glob("*.js"))  # a shard's data files
    for p in (site / "index.html", data, shard):
        p.unlink()
        p.symlink_to(outside)
    assert _report(tmp_path, results, suites, site, capsys)[0] == 0
    assert outside.read_text() == "keep"
    for p in (site / "index.html", data, shard):
        assert not p.is_symlink() and p.stat().st_size > 100, p


def test_the_committed_site_carries_the_marker():
    root = Path(__file__).resolve().parents[2] / "site"
    manifest = json.loads((root / MARKER).read_text())
    assert manifest["tool"] == "convbench" and "index.html" in manifest["files"]
