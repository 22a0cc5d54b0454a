"""Face folders (`faces` data set) and the few-shot face task (000 supplement §3.3), on a generated PGM folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bench.zoo.datasets import load_dataset
from bench.execution.runner import execute
from bench.spec.suite import load_suite
from bench.tasks import RunContext
from bench.tasks.fewshot import draw, train_fraction

PEOPLE, PER_PERSON, H, W = 6, 5, 24, 20


@pytest.fixture()
def faces_root(tmp_path, monkeypatch):
    """AT&T layout: att_faces/s<person>/<n>.pgm, greyscale; person p's images are brighter for larger p."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "att_faces"
    rng = np.random.default_rng(0)
    for p in range(1, PEOPLE + 1):
        d = root / f"s{p}"
        d.mkdir(parents=True)
        for n in range(1, PER_PERSON + 1):
            img = np.clip(rng.normal(30 * p, 10, (H, W)), 0, 255).astype(np.uint8)
            Image.fromarray(img, mode="L").save(d / f"{n}.pgm")
    (root / "README").write_text("not a person folder")
    return root


def test_loader_reads_pgm_folders(faces_root):
    data = load_dataset("faces", faces_root, options={"size": None, "train_fraction": 0.6})
    # natural order: s2 before s10 would matter with ≥ 10 people; here s1..s6 in order, README ignored
    assert data.classes == [f"s{p}" for p in range(1, PEOPLE + 1)]
    assert data.shape == (1, H, W) and data.train_x.dtype == torch.uint8
    # 60 % of 5 images = 3 per person to train, 2 to test
    assert torch.bincount(data.train_y).tolist() == [3] * PEOPLE
    assert torch.bincount(data.test_y).tolist() == [2] * PEOPLE
    # labels follow the folders: mean brightness grows with the person index
    means = [data.train_x[data.train_y == c].float().mean().item() for c in range(PEOPLE)]
    assert means == sorted(means)
    # the parent folder works too (root / att_faces is found), and resizing gives (H, W) = size
    small = load_dataset("faces", faces_root.parent, options={"size": [12, 10]})
    assert small.shape == (1, 12, 10)
    assert len(small.train_y) + len(small.test_y) == PEOPLE * PER_PERSON


def test_draw_caps_classes_and_splits_each_class(faces_root):
    data = load_dataset("faces", faces_root, options={"size": None})
    sub, names = draw(data, 100, train_fraction("40-60"), seed=3)
    assert sub.num_classes == PEOPLE and sorted(names) == sorted(data.classes)
    assert torch.bincount(sub.train_y).tolist() == [2] * PEOPLE  # round(0.4·5) = 2
    assert torch.bincount(sub.test_y).tolist() == [3] * PEOPLE
    # train and test images of a draw are disjoint
    tr = {tuple(x.flatten().tolist()) for x in sub.train_x}
    assert not any(tuple(x.flatten().tolist()) in tr for x in sub.test_x)
    # same seed → same draw; another seed → other people
    a, na = draw(data, 3, 0.2, seed=1)
    b, nb = draw(data, 3, 0.2, seed=1)
    assert na == nb and torch.equal(a.train_x, b.train_x)
    assert any(draw(data, 3, 0.2, seed=s)[1] != na for s in range(2, 8))
    assert torch.bincount(a.train_y).tolist() == [1, 1, 1]  # 20 % of 5 = 1
    with pytest.raises(ValueError):
        train_fraction("50-50")


def test_fewshot_task_end_to_end(faces_root, tmp_path):
    suite_file = tmp_path / "faces.yaml"
    suite_file.write_text(f"""
name: faces-test
task: {{name: fewshot, options: {{classes: 4, split: "60-40"}}}}
dataset: {{name: faces, root: {faces_root}, options: {{size: [16, 16]}}}}
protocol: {{epochs: 2, batch_size: 8, optimizer: {{name: adam, lr: 0.001, weight_decay: 0.0}}, augment: []}}
backbones: [{{name: resnet18, options: {{width: 0.0625}}}}]
layers:
  - conv
  - {{name: pnn, label: pnn, stem: conv}}
seeds: [0]
""")
    suite = load_suite(suite_file)
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    records = [execute(spec, ctx, suite) for spec in suite.expand()]
    for rec in records:
        assert rec["status"] == "ok", rec.get("error")
        m = rec["metrics"]
        assert rec["data"]["train"] == 4 * 3 and rec["data"]["test"] == 4 * 2
        assert len(rec["history"]) == 2
        accs = [h["test_acc"] for h in rec["history"]]
        assert m["top1"] == accs[-1] and m["top1_best"] == max(accs)
        assert m["top1_auc"] == pytest.approx(sum(accs) / 2)
        assert m["epochs_to_90"] is None or m["epochs_to_90"] in (1, 2)
        assert rec["curves"]["test_top1"]["y"] == accs and rec["curves"]["test_top1"]["x"] == [1, 2]
    # one seed → one draw for every family; PNN has fewer learned parameters than the CNN
    assert records[0]["data"]["classes"] == records[1]["data"]["classes"]
    assert records[1]["params"]["learned"] < records[0]["params"]["learned"]
