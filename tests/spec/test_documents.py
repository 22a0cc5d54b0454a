"""suites/documents.yaml and its loader (bench/spec/documents.py): the committed file loads, every suite names only
documents it lists, and a malformed file is one line naming the file and the field (exit 2 from bench report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.spec.documents import DEFAULT_PATH, DOCUMENTS_FILE, load_documents, suite_files
from bench.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]
GOOD = """documents:
  - id: "003"
    name: Network Deconvolution
    links: [{url: "https://github.com/yechengxi/deconvolution", text: source code}]
  - id: "004"
    name: Spatial mixing
    title: Do We Need to Learn Spatial Mixing?
    authors: [George Cazenavette, Joel Julin, Simon Lucey]
    year: 2022
    arxiv: "2201.00001"
"""


def test_committed_file_loads_and_covers_every_document_the_suites_name():
    import yaml

    docs = load_documents(DEFAULT_PATH)
    assert list(docs) == ["000", "001", "002", "003", "004"]
    assert docs["001"].title == "Randomness in Deconvolutional Networks for Visual Representation"
    assert docs["004"].authors == ("George Cazenavette", "Joel Julin", "Simon Lucey")
    named = set()
    for path in suite_files(ROOT / "suites"):
        raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for key in ("references", "claims", "context"):
            named |= {str(item["document"]) for item in raw.get(key) or []}
    assert named and named <= set(docs), named - set(docs)
    assert DOCUMENTS_FILE not in [p.name for p in suite_files(ROOT / "suites")]


def test_good_file_parses_every_field(tmp_path):
    (tmp_path / DOCUMENTS_FILE).write_text(GOOD)
    d = load_documents(tmp_path / DOCUMENTS_FILE)["004"]
    assert (d.year, d.arxiv_url, d.authors_text) == (
        2022,
        "https://arxiv.org/abs/2201.00001",
        "George Cazenavette, Joel Julin, Simon Lucey",
    )
    assert load_documents(tmp_path / DOCUMENTS_FILE)["003"].links == (
        ("https://github.com/yechengxi/deconvolution", "source code"),
    )


@pytest.mark.parametrize(
    "old, new, field",
    [
        ('id: "003"', "id: 3", "documents[0].id"),
        ("name: Network Deconvolution", "nam: Network Deconvolution", "documents[0].nam"),
        ("year: 2022", "year: twenty", "documents[004].year"),
        ('arxiv: "2201.00001"', "arxiv: arXiv-one", "documents[004].arxiv"),
        ('url: "https://github.com/yechengxi/deconvolution"', "url: github.com/x", "documents[003].links[0].url"),
        ("authors: [George Cazenavette, Joel Julin, Simon Lucey]", "authors: George", "documents[004].authors"),
        ('id: "004"', 'id: "003"', "documents[1].id"),  # a duplicate id
    ],
)
def test_a_bad_field_is_named(tmp_path, old, new, field):
    path = tmp_path / DOCUMENTS_FILE
    assert old in GOOD
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(SpecError) as exc:
        load_documents(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    assert exc.value.field == field, msg


def test_report_exits_2_on_a_broken_documents_file(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / DOCUMENTS_FILE).write_text("documents: [{id: '003'}]\n")
    rc = main(
        [
            "report",
            "--results",
            str(tmp_path / "results"),
            "--suites",
            str(tmp_path / "suites"),
            "--site",
            str(tmp_path / "site"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and DOCUMENTS_FILE in err[0] and "documents[0].name" in err[0]


def test_document_costs_sum_measured_hours_and_estimate_the_rest_per_epoch():
    """Issue 18 item 7: per document, the recorded runs' wall hours and the rest costed at the suite's measured
    time per epoch on the same backbone and training data; nothing comparable measured → not estimated."""
    from types import SimpleNamespace as NS

    from bench.report.pages.index import document_costs

    def spec(i, backbone="b1", epochs=10, subset=None):
        return NS(id=f"r{i}", backbone={"name": backbone}, protocol={"epochs": epochs, "train_subset": subset})

    todo = [spec(0), spec(1), spec(2), spec(3, epochs=20), spec(4, backbone="b2"), spec(5, subset=100)]
    suites = {
        "s": NS(default_run_ids=lambda: [(sp, sp.id) for sp in todo]),
        "t": NS(default_run_ids=lambda: [(spec(9), "r9")]),
    }

    def rec(i, dur, epochs, device="CPU: x", status="ok"):
        return {
            "id": f"r{i}",
            "status": status,
            "duration_s": dur,
            "env": {"device": device},
            "spec": {"suite": "s", "backbone": {"name": "b1"}, "protocol": {"epochs": epochs}},
        }

    records = [
        rec(0, 3600.0, 10),
        rec(1, 7200.0, 10, device="CUDA: H200"),
        rec(7, 1800.0, 5, status="failed"),
        dict(rec(8, 1e9, 10), _stale=True),
    ]
    rows = [{"document": "003", "suite": "s"}, {"document": "003", "suite": "t"}, {"document": "004", "suite": "t"}]
    costs = document_costs(rows, suites, records)
    c = costs["003"]
    assert c["hours"] == {"CPU": 1.5, "GPU": 2.0} and c["runs"] == 3  # the stale record is left out
    # per epoch on b1 / full data: mean(360, 720) s = 540 s; r2 at 10 epochs, r3 at 20: 1.5 h + 3 h
    assert c["left_runs"] == 2 and c["left_h"] == 4.5
    assert c["unestimated"] == ["s", "t"]  # b2, train_subset 100 and suite t have nothing comparable measured
    assert costs["004"] == {"hours": {}, "runs": 0, "left_h": 0.0, "left_runs": 0, "unestimated": ["t"]}
