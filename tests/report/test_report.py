"""Records → tables: mean ± std over seeds, references with verdicts, claims, SVG escaping."""

from __future__ import annotations


import pytest

from bench.report import svg
from bench.report.aggregate import runs_frame
from bench.report.rules import reference_verdict
from bench.report.tables import leaderboards
from bench.spec.suite import load_suite
from bench.tasks import TASKS

SUITE = """
name: rep
task: classification
dataset: digits
setting: document
protocol: {epochs: 2}
backbones: [{name: preact-resnet, options: {n: 1}}]
layers: [conv, sep-chans, sep-space]
seeds: [0, 1, 2]
references:
  - {row: conv, value: 90.0, document: "004", where: "T1", setting: "s"}
  - {row: sep-chans, value: 80.0, document: "004", where: "T1", setting: "s"}
  - {row: conv, value: 85.0, document: "000", where: "T4", setting: "s", epochs: 1}
claims:
  - id: near
    text: chans near conv
    document: "004"
    where: Fig. 3
    check: {a: sep-chans, b: conv, op: within, points: 3.0}
  - id: far
    text: space below chans
    document: "004"
    where: Fig. 3
    check: {a: sep-space, b: sep-chans, op: below, points: 5.0}
"""

ACC = {"conv": [90.0, 91.0, 89.0], "sep-chans": [88.0, 88.5, 89.5], "sep-space": [70.0, 71.0, 69.0]}


def fake_records(suite, overrides=None):
    recs = []
    for spec in suite.expand(overrides):
        acc = ACC[spec.label][spec.seed]
        recs.append(
            {
                "schema": 1,
                "id": spec.id,
                "status": "ok",
                "label": spec.label,
                "task": "classification",
                "suite": {"name": suite.name, "file": "x", "sha256": "y"},
                "spec": spec.to_dict(),
                "metrics": {"top1": acc, "top1_best": acc},
                "params": {"learned": 10, "fixed": 2, "total": 12},
                "macs": 1000,
                "timing": {
                    "train_s": 1.0,
                    "throughput_img_s": 100.0,
                    "throughput_spread": 0.5 if spec.label == "conv" else 0.01,
                },
                "env": {"device": "CPU: test"},
            }
        )
    return recs


@pytest.fixture
def suite(tmp_path):
    p = tmp_path / "rep.yaml"
    p.write_text(SUITE)
    return load_suite(p)


def test_mean_std_references_and_claims(suite):
    records = fake_records(suite)
    boards = leaderboards(runs_frame(records), records, {"rep": suite}, TASKS)
    assert len(boards) == 1
    b = boards[0]
    rows = b.rows.set_index("label")
    assert rows.loc["conv", "m:top1:mean"] == pytest.approx(90.0)
    assert rows.loc["conv", "m:top1:std"] == pytest.approx(1.0)
    assert rows.loc["sep-chans", "m:top1:mean"] == pytest.approx(88.6666, abs=1e-3)
    assert list(b.rows["label"]) == ["conv", "sep-chans", "sep-space"]  # sorted by the primary metric
    assert bool(rows.loc["conv", "noisy"]) and not bool(rows.loc["sep-space", "noisy"])
    refs = {(r["row"], r["epochs"]): r for r in b.references}
    assert refs["conv", None]["verdict"] == "reproduced" and refs["conv", None]["diff"] == pytest.approx(0.0)
    assert refs["sep-chans", None]["verdict"] == "not reproduced"  # 88.67 ± 1.90 (+1 tolerance) vs 80
    assert refs["conv", 1]["verdict"] == "not yet run"  # a 1-epoch number: these runs trained 2 epochs
    assert all(r["setting"] == "document" for r in b.references)
    claims = {c["id"]: c for c in b.claims}
    # −1.33 ± 2.07 (95 % Welch): [−3.40, 0.74] straddles −3, so "within 3" cannot be decided on 3 seeds
    assert claims["near"]["verdict"] == "inconclusive"
    assert claims["far"]["verdict"] == "reproduced"  # 70 − 88.67 = −18.67 ± 2.2, wholly ≤ −5


def test_shortened_runs_give_no_verdict(suite):
    records = fake_records(suite, {"train_subset": 100})
    b = leaderboards(runs_frame(records), records, {"rep": suite}, TASKS)[0]
    ref = [r for r in b.references if r["row"] == "conv" and r["epochs"] is None][0]
    assert ref["verdict"] == "inconclusive" and ref["setting"] == "shortened" and "shortened" in ref["verdict_detail"]
    assert all(c["verdict"] == "inconclusive" and c["setting"] == "shortened" for c in b.claims)


def test_reference_verdict_is_the_t_interval_widened_by_the_tolerance():
    ref = {"value": 90.0}
    assert reference_verdict(ref, 92.5, 0.2, 3).status == "not reproduced"  # 92.5 ± 0.50 (+1)
    assert reference_verdict(ref, 92.5, 1.5, 3).status == "reproduced"  # 92.5 ± 3.73 (+1)
    assert reference_verdict({"value": 90.0, "tolerance": 2.5}, 92.5, 0.2, 3).status == "reproduced"
    assert reference_verdict(ref, 92.5, None, 1).status == "inconclusive"  # no interval on one seed
    assert reference_verdict(ref, None, None, 0).status == "not yet run"


def test_failed_runs_counted_not_averaged(suite):
    records = fake_records(suite)
    records[0]["status"] = "failed"
    records[0]["error"] = "training loss became nan in epoch 1"
    records[0]["metrics"] = {}
    b = leaderboards(runs_frame(records), records, {"rep": suite}, TASKS)[0]
    row = b.rows.set_index("label").loc[records[0]["label"]]
    assert row["failed"] == 1 and row["n"] == 2


def test_times_come_from_the_newest_speed_path_of_a_row(suite):
    """A row whose newest run trained through a folded speed path (timing.speed_paths.fold) is timed on the
    runs of that path only; its accuracy still averages every seed, and train_s_sum counts every run."""
    records = fake_records(suite)
    for i, r in enumerate(records):
        r["finished"] = f"2026-12-0{1 + r['spec']['seed']}T00:00:00+00:00"
        if r["label"] == "sep-chans":
            folded = r["spec"]["seed"] == 2
            r["timing"] = {"train_s": 100.0 if folded else 300.0 + 10 * r["spec"]["seed"], "latency_ms": 2.0}
            r["timing"]["speed_paths"] = {"threads": 1, **({"fold": True} if folded else {})}
    b = leaderboards(runs_frame(records), records, {"rep": suite}, TASKS)[0]
    rows = b.rows.set_index("label")
    chans, conv = rows.loc["sep-chans"], rows.loc["conv"]
    assert chans["train_s"] == pytest.approx(100.0) and chans["timed_n"] == 1 and chans["n"] == 3
    assert chans["timing_path"] == '{"fold": true}' and chans["train_s_sum"] == pytest.approx(710.0)
    assert chans["m:top1:mean"] == pytest.approx(88.6666, abs=1e-3)  # every seed
    assert chans["latency_ms"] == pytest.approx(2.0)
    # one path (no speed_paths at all): the plain mean over every run
    assert conv["train_s"] == pytest.approx(1.0) and conv["timed_n"] == 3 and conv["timing_path"] == "{}"


def test_svg_plots_escape_labels_and_place_points():
    out = svg.scatter([{"x": 10, "y": 1.0, "label": "<b>&x</b>"}, {"x": 1000, "y": 2.0, "label": "b"}], "x", "y")
    assert "<b>&x</b>" not in out and "&lt;b&gt;&amp;x&lt;/b&gt;" in out
    assert out.count('class="mark"') == 2
    line = svg.lines([{"label": "s", "x": [1, 2, 3], "y": [1.0, None, 3.0]}], "epoch", "acc")
    assert "<polyline" in line and line.count('class="mark"') == 2
    assert svg.scatter([], "x", "y") == "" and svg.lines([], "x", "y") == ""


def test_claims_can_name_rows_by_backbone_options(tmp_path):
    p = tmp_path / "cm.yaml"
    p.write_text("""
name: cm
task: classification
dataset: digits
protocol: {epochs: 1}
backbones:
  - {name: preact-resnet, options: {n: 1, width: 1}}
  - {name: preact-resnet, options: {n: 1, width: 2}}
layers: [conv]
seeds: [0, 1, 2]
claims:
  - id: wide
    text: wider is better
    document: "004"
    where: x
    check: {a: "width=2", b: "width=1", op: above, points: 1.0}
""")
    s = load_suite(p)
    records = []
    for spec in s.expand():
        acc = 80.0 if spec.backbone["options"]["width"] == 2 else 70.0
        records.append(
            {
                "schema": 1,
                "id": spec.id,
                "status": "ok",
                "label": spec.label,
                "task": "classification",
                "suite": {"name": "cm", "file": "x", "sha256": "y"},
                "spec": spec.to_dict(),
                "metrics": {"top1": acc},
                "env": {},
            }
        )
    b = leaderboards(runs_frame(records), records, {"cm": s}, TASKS)[0]
    assert b.claims[0]["verdict"] == "reproduced" and "+10.00" in b.claims[0]["verdict_detail"]


def test_claim_straddling_its_boundary_is_inconclusive_and_wholly_beyond_it_not_reproduced(suite):
    records = fake_records(suite)
    rows = leaderboards(runs_frame(records), records, {"rep": suite}, TASKS)[0].rows
    from bench.report.rules import claim_verdict

    claim = lambda a, b, op, pts: {
        "check": {"metric": "top1", "a": a, "b": b, "op": op, "points": pts, "backbone": None}
    }
    # sep-chans − conv = −1.33 ± 2.07 (95 % Welch, 3 seeds each); sep-space − conv = −20 ± 2.27
    assert claim_verdict(claim("sep-chans", "conv", "above", 0.0), rows).status == "inconclusive"
    assert claim_verdict(claim("sep-space", "conv", "above", 0.0), rows).status == "not reproduced"
    assert claim_verdict(claim("conv", "sep-chans", "above", 1.0), rows).status == "inconclusive"
    assert claim_verdict(claim("conv", "sep-space", "above", 15.0), rows).status == "reproduced"
    assert claim_verdict(claim("sep-chans", "conv", "within", 1.0), rows).status == "inconclusive"


def test_time_to_threshold_counts_only_the_seeds_that_reached_it(tmp_path):
    """The suite page's "To N % s" column: the mean training seconds over the seeds that reached the protocol's
    threshold, marked "k of n" when some did not, "not reached" when none did; the CSV carries both numbers."""
    import csv
    import re

    from bench.records.records import write_json_atomic
    from bench.report.site import build_site

    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "rep.yaml").write_text(SUITE.replace("protocol: {epochs: 2}", "protocol: {epochs: 2, threshold: 85.0}"))
    s = load_suite(suites / "rep.yaml")
    reached = {("conv", 0): 10.0, ("conv", 1): 20.0, ("conv", 2): 60.0, ("sep-chans", 0): 30.0}
    for rec in fake_records(s):
        sec = reached.get((rec["label"], rec["spec"]["seed"]))
        rec["timing"]["to_threshold"] = {"threshold": 85.0, "seconds": sec, "epoch": 1 if sec else None}
        write_json_atomic(tmp_path / "results" / "rep" / f"{rec['label']}-{rec['spec']['seed']}.json", rec)
    build_site(tmp_path / "results", suites, tmp_path / "site")
    html = (tmp_path / "site" / "suite-rep.html").read_text()
    assert "To 85 % s" in html
    cells = {}
    for row in re.findall(r"<tr data-backbone=.*?</tr>", html, flags=re.S):
        label = re.search(r"<b>(.*?)</b>", row).group(1)
        cells[label] = [
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        ]
    assert "30.0" in cells["conv"]  # (10 + 20 + 60) / 3, every seed reached it
    assert "30.0 1 of 3" in cells["sep-chans"]  # only seed 0 reached it
    assert "not reached" in cells["sep-space"]
    assert 'data-sort="nan"' not in html  # a missing value sorts as empty, never as the text "nan"
    (csv_path,) = (tmp_path / "site" / "data").glob("rep*.csv")
    rows = {r["label"]: r for r in csv.DictReader(csv_path.open())}
    assert float(rows["conv"]["to_threshold_s"]) == 30.0 and rows["conv"]["to_threshold_n"] == "3"
    assert rows["sep-space"]["to_threshold_s"] == "" and rows["sep-space"]["to_threshold_n"] == "0"
    # the CSV stands alone (suite, setting, epochs, device, document value, Δ, verdict) and its floats are rounded
    conv = rows["conv"]
    assert conv["suite"] == "rep" and conv["setting"] and conv["epochs"] and "device" in conv
    assert {"document_value", "delta_measured_minus_document", "verdict", "verdict_reason"} <= set(conv)
    assert all(
        len(v.split(".")[1]) <= 3
        for r in rows.values()
        for k, v in r.items()
        if k.startswith("m:") and v.replace(".", "", 1).replace("-", "", 1).isdigit() and "." in v
    )
    assert conv["setting"] == "document" and conv["tier"] == "" and conv["epochs"] == "2"
    # the JSON beside it carries the same columns, rounded the same way, and each document number as an entry
    import json

    (json_path,) = (tmp_path / "site" / "data").glob("rep*.json")
    jrows = {r["label"]: r for r in json.loads(json_path.read_text())["rows"]}
    assert set(jrows) == set(rows)
    for label, r in rows.items():
        j = jrows[label]
        assert set(r) <= set(j), set(r) - set(j)
        for k, v in r.items():  # the CSV's text is the JSON's value printed
            assert ("" if j[k] is None else str(j[k])) == v, (label, k, j[k], v)
    jc = jrows["conv"]
    assert jc["setting"] == "document" and jc["epochs"] == 2 and jc["device"] == "CPU: test"
    by_where = {(x["where"], x["document_value"]): x for x in jc["references"]}
    t1 = by_where[("T1", 90.0)]
    assert t1["verdict"] and t1["verdict_reason"] is not None
    assert t1["delta_measured_minus_document"] == pytest.approx(round(jc["m:top1:mean"] - 90.0, 3), abs=1e-3)
    assert all(
        len(str(v).split(".")[1]) <= 3
        for v in jc.values()
        if isinstance(v, float) and "." in str(v) and "e" not in str(v)
    )


def test_rebuild_keeps_unchanged_run_data_and_rewrites_or_removes_the_rest(tmp_path):
    """Run pages are drawn in the browser from each run's data (issue 20 item 6): one run.html for every run,
    and per id prefix a shard of records, ``runs/<shard>.json`` ({run id: record}, the no-JavaScript view) and
    ``runs/<shard>.js`` (for the page), no file per run. A report over an existing site leaves the files of a
    shard whose records are unchanged alone (not even rewritten), rewrites those of a changed record's shard and
    a damaged file, removes those of a shard whose records are gone; every kept file is byte-identical to a
    fresh build's."""
    import json
    import os
    import re

    from bench.records.records import write_json_atomic
    from bench.report.runpage import data_href, shard_of
    from bench.report.site import build_site

    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "rep.yaml").write_text(SUITE)
    s = load_suite(suites / "rep.yaml")
    paths = {}
    for rec in fake_records(s):
        paths[(rec["label"], rec["spec"]["seed"])] = p = (
            tmp_path / "results" / "rep" / f"{rec['label']}-{rec['spec']['seed']}.json"
        )
        write_json_atomic(p, rec)
    site, runs = tmp_path / "site", tmp_path / "site" / "runs"
    build_site(tmp_path / "results", suites, site)
    ids = {k: json.loads(p.read_text())["id"] for k, p in paths.items()}
    assert all(data_href(i) == f"runs/{shard_of(i)}.json" for i in ids.values())
    assert (site / "run.html").is_file() and not list(site.rglob("runs/*.html"))  # one page, no page per run
    assert sorted(p.name for p in runs.iterdir()) == sorted(
        {f"{shard_of(i)}.{ext}" for i in ids.values() for ext in ("json", "js")}
    )  # no file per run
    # every run's record as loaded (what runs/<id>.json held: records written before identity version 2 say
    # their version once loaded), under its id in its shard, and nothing else there
    for k, i in ids.items():
        shard = json.loads((site / data_href(i)).read_text())
        assert shard[i] == dict(json.loads(paths[k].read_text()), identity_version=2)
        assert set(shard) == {j for j in ids.values() if shard_of(j) == shard_of(i)}
    shard = (runs / f"{shard_of(ids[('conv', 0)])}.js").read_text()
    assert shard.startswith("convbenchRuns(") and f'"{ids[("conv", 0)]}":' in shard
    files = sorted(runs.iterdir())
    before = {p.name: p.read_bytes() for p in files}
    for p in files:  # mtimes far in the past: a rewrite cannot keep them
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))

    changed = json.loads(paths[("conv", 0)].read_text())
    changed["metrics"]["top1"] = 12.345
    write_json_atomic(paths[("conv", 0)], changed)
    damaged = site / data_href(ids[("conv", 1)])
    damaged.write_bytes(before[damaged.name][:-40])
    os.utime(damaged, ns=(1_000_000_000, 1_000_000_000))
    paths[("sep-space", 2)].unlink()
    gone = ids.pop(("sep-space", 2))
    build_site(tmp_path / "results", suites, site)

    conv0 = site / data_href(ids[("conv", 0)])
    assert json.loads(conv0.read_text())[ids[("conv", 0)]]["metrics"]["top1"] == 12.345
    assert conv0.stat().st_mtime_ns != 1_000_000_000
    assert "12.345" in (runs / f"{shard_of(ids[('conv', 0)])}.js").read_text()  # the page draws the new number
    assert damaged.read_bytes() == before[damaged.name] or shard_of(ids[("conv", 1)]) == shard_of(ids[("conv", 0)])
    assert json.loads(damaged.read_text())[ids[("conv", 1)]]  # repaired
    live = {shard_of(i) for i in ids.values()}
    if shard_of(gone) not in live:
        assert not (runs / f"{shard_of(gone)}.json").exists() and not (runs / f"{shard_of(gone)}.js").exists()
    touched = {shard_of(ids[("conv", 0)]), shard_of(ids[("conv", 1)]), shard_of(gone)}
    untouched = [p for p in runs.iterdir() if p.stem not in touched]
    assert len(untouched) == 2 * len(live - touched) >= 6
    for p in untouched:
        assert p.stat().st_mtime_ns == 1_000_000_000 and p.read_bytes() == before[p.name]
    fresh = tmp_path / "fresh"
    build_site(tmp_path / "results", suites, fresh)
    assert sorted(p.name for p in (fresh / "runs").iterdir()) == sorted(p.name for p in runs.iterdir())
    for p in (fresh / "runs").iterdir():
        assert p.read_bytes() == (runs / p.name).read_bytes()
    # every run link of the suite page opens run.html at a run that has data, and has a no-JavaScript twin: the
    # shard that holds its record
    page = (site / "suite-rep.html").read_text()
    linked = set(re.findall(r'href="run\.html#([0-9a-f]{16})"', page))
    assert linked == set(ids.values())
    assert set(re.findall(r'href="(runs/[0-9a-f]{2}\.json)"', page)) == {data_href(i) for i in linked}
    assert "runs/" + ids[("conv", 0)] not in page


def test_notes_render_markdown_escaped():
    """Issue 20 item 4: Markdown in suite text becomes markup (code, emphasis, links) and nothing else does."""
    from bench.report.mdtext import md_inline

    out = str(md_inline("Run `bench run` with **care**, see [003](https://arxiv.org/abs/1606.04300) & <b>x</b>"))
    assert "<code>bench run</code>" in out and "<strong>care</strong>" in out
    assert '<a href="https://arxiv.org/abs/1606.04300">003</a>' in out
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "<b>" not in out and "&amp;" in out
    evil = str(md_inline("<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>"))
    assert "<script" not in evil and "<img" not in evil and 'href="javascript' not in evil
    assert str(md_inline("a\n\nb")).count("<p>") == 0  # inline: the page supplies the paragraph
    assert str(md_inline(None)) == ""


def test_a_glance_column_with_only_conv_measured_collapses_to_a_count(tmp_path):
    from bench.records.records import write_json_atomic
    from bench.report.site import build_site

    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "rep.yaml").write_text(SUITE)
    s = load_suite(suites / "rep.yaml")
    recs = fake_records(s)
    for rec in recs:
        if rec["label"] == "conv":
            write_json_atomic(tmp_path / "only" / "rep" / f"{rec['label']}-{rec['spec']['seed']}.json", rec)
        write_json_atomic(tmp_path / "all" / "rep" / f"{rec['label']}-{rec['spec']['seed']}.json", rec)
    build_site(tmp_path / "only", suites, tmp_path / "s1")
    html = (tmp_path / "s1" / "index.html").read_text()
    assert 'id="summary-table"' not in html and 'id="conv-only"' in html
    assert "1 leaderboard with only conv measured" in html
    build_site(tmp_path / "all", suites, tmp_path / "s2")
    html = (tmp_path / "s2" / "index.html").read_text()
    assert 'id="summary-table"' in html and 'id="conv-only"' not in html


def test_stale_check_keeps_a_relabelled_row_and_flags_a_changed_option(tmp_path):
    """A row's id never hashes its label: relabelling keeps its records; a new option supersedes them, at any
    seed (the suite is expanded once and each record's own seed put in)."""
    from bench.report.aggregate import stale_records

    s = load_suite(_write(tmp_path / "a.yaml", SUITE))
    records = fake_records(s)
    text = (
        SUITE.replace("row: sep-chans", "row: chans")
        .replace("a: sep-chans,", "a: chans,")
        .replace("b: sep-chans,", "b: chans,")
        .replace("layers: [conv, sep-chans, sep-space]", "layers: [conv, {name: sep-chans, label: chans}, sep-space]")
    )
    relabelled = load_suite(_write(tmp_path / "b.yaml", text))
    assert [r["label"] for r in relabelled.layers] == ["conv", "chans", "sep-space"]
    assert stale_records(records, {"rep": relabelled}) == {}
    from bench.spec.identity import run_id

    def reseeded(rec, seed, **layer):
        spec = dict(rec["spec"], seed=seed, layer=dict(rec["spec"]["layer"], **layer))
        return dict(rec, spec=spec, id=run_id(spec))

    extra = [reseeded(r, 7) for r in records if r["spec"]["seed"] == 0]  # a seed the suite does not list
    assert len(extra) == 3 and stale_records(records + extra, {"rep": s}) == {}
    changed = reseeded(records[0], 7, options={"x": 1})
    assert list(stale_records([changed], {"rep": s})) == [changed["id"]]


def _write(path, text):
    path.write_text(text)
    return path
