"""Declared tiers (suite ``tiers:``): ``bench run --tier NAME`` applies a tier's overrides and task options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import SpecError
from bench.report.rules import classify_setting
from bench.spec.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]


def test_tier_applies_overrides_and_task_options():
    suite = load_suite(ROOT / "suites" / "cifar.yaml")
    tier = suite.tier("cpu-3ep")
    specs = suite.expand(tier=tier["name"], seeds=[0])
    plain = suite.expand(seeds=[0])
    assert len(specs) == len(plain)
    for s, p in zip(specs, plain):
        assert {k: s.protocol[k] for k in tier["overrides"]} == tier["overrides"]
        assert s.overrides == tier["overrides"]
        assert (
            s.task["options"]["attack_subset"]
            == tier["task_options"]["attack_subset"]
            != p.task["options"]["attack_subset"]
        )
        assert s.id != p.id
    # the report tags runs made at the tier with its name
    setting = classify_setting(suite, specs[0].protocol, None)
    assert (setting.kind, setting.tier) == ("shortened", "cpu-3ep")


def test_tier_and_agreeing_flags_give_the_same_runs_contradicting_ones_fail():
    suite = load_suite(ROOT / "suites" / "cifar.yaml")
    a = [s.id for s in suite.expand(tier="cpu-3ep", seeds=[0])]
    b = [s.id for s in suite.expand({"epochs": 3}, tier="cpu-3ep", seeds=[0])]
    assert a == b
    with pytest.raises(SpecError, match="contradicts tier 'cpu-3ep'"):
        suite.expand({"epochs": 5}, tier="cpu-3ep")


def test_unknown_tier_is_one_line_exit_2(tmp_path, capsys):
    rc = main(
        ["run", str(ROOT / "suites" / "cifar.yaml"), "--tier", "gpu-1ep", "--dry-run", "--results", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "cifar.yaml" in err and "tiers" in err and "cpu-3ep" in err


def test_dry_run_at_a_tier_lists_the_tier_runs(tmp_path, capsys):
    suite = load_suite(ROOT / "suites" / "quick.yaml")
    name = suite.tiers[0]["name"]
    assert main(["run", str(suite.path), "--tier", name, "--dry-run", "--results", str(tmp_path)]) == 0
    listed = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("todo")]
    assert listed == [s.id for s in suite.expand(tier=name)]
    assert set(listed).isdisjoint(s.id for s in suite.expand()) or not suite.tiers[0]["overrides"]


@pytest.mark.parametrize(
    "bad, field",
    [
        (
            "{name: t, overrides: {epochs: 1}, task_options: {attack_subsett: 8}}",
            "tiers[0].task_options.attack_subsett",
        ),
        (
            "{name: t, overrides: {epochs: 1}, task_options: {attack_subset: fast}}",
            "tiers[0].task_options.attack_subset",
        ),
        ("{name: t, overrides: {lr: 1}}", "tiers[0].overrides.lr"),
    ],
)
def test_bad_tier_is_rejected_naming_the_field(tmp_path, bad, field):
    import yaml

    data = yaml.safe_load((ROOT / "suites" / "quick.yaml").read_text())
    data["tiers"] = [yaml.safe_load(bad)]  # replaced: a second `tiers:` key is itself an error (duplicate key)
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as exc:
        load_suite(tmp_path / "q.yaml")
    assert field in str(exc.value) and "q.yaml" in str(exc.value)


def test_faces_grid_cells_share_overrides_and_are_told_apart_by_task_options():
    suite = load_suite(ROOT / "suites" / "faces.yaml")
    cells = [t["name"] for t in suite.tiers]
    assert len(cells) == 6 and len({json.dumps(t["overrides"]) for t in suite.tiers}) == 1
    seen = set()
    for name in cells:
        spec = suite.expand(tier=name, seeds=[0])[0]
        seen.add((spec.task["options"]["classes"], spec.task["options"]["split"]))
        setting = classify_setting(suite, spec.protocol, None, spec.task["options"])
        assert (setting.kind, setting.tier) == ("shortened", name)
    assert seen == {(c, s) for c in (10, 40) for s in ("60-40", "40-60", "20-80")}
