"""What a CPU campaign still has to run, as queue lines for ``tools/campaign_worker.sh``, with estimates from the
records (issue 22's and issue 18's long runs: the closing note's "what is left", and the next session's queue).

    python benchmarks/campaign_queue.py [--device "CPU: AMD EPYC (1 threads)"] [--seeds 0,1,2] \\
        fast-cifar-v2 fast-fashion-v2 "deconv epochs=1 backbone=vgg16,mobilenetv2,resnet18,preact-resnet18"

Each argument is a suite name, optionally with ``epochs=N`` (an override, as ``bench run --epochs``), ``tier=T``
and ``backbone=A,B`` (only those backbones). A run is left to do when no ``ok`` record of the results folder has
its run id (stale records have another id, so they do not count). Its estimate is the longest wall time
(``duration_s``) of the same row, backbone and overrides among that device's records (those on the newest run's
speed path, when a layer was folded since), × 1.1; else that backbone's
conv run × the row's median time ratio to conv on the suite's other backbones (or, for a suite with one
backbone, on ``--ratios-from``'s records: fast-cifar-v2 by default), × 1.1; runs with no estimate are named on
stderr, not queued. Lines come in the arguments' order (the first target is the most wanted), within a target
lowest seed first (every row's second seed before any third) and longest first within a seed, so two workers
pack the session (a worker takes the first line that still fits); the CPU-hours left per suite go to stderr.
No torch.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.records.records import load_records  # noqa: E402
from bench.report.aggregate import timing_path  # noqa: E402
from bench.spec.suite import load_suite  # noqa: E402

DEFAULT_DEVICE = "CPU: AMD EPYC (1 threads)"
SLACK = 1.1


class BadTarget(ValueError):
    """A target argument that cannot be read: one line, exit code 2."""


def parse_target(text: str) -> dict:
    """``"deconv epochs=1 backbone=a,b"`` → {suite, overrides, tier, backbones}; BadTarget on a bad word."""
    words = text.split()
    if not words:
        raise BadTarget("campaign_queue: an empty target")
    out = {"suite": words[0], "overrides": {}, "tier": None, "backbones": None}
    for w in words[1:]:
        key, sep, value = w.partition("=")
        if not sep or not value:
            raise BadTarget(f"campaign_queue: {text!r}: expected key=value, got {w!r}")
        if key == "epochs" and value.isdigit() and int(value) > 0:
            out["overrides"]["epochs"] = int(value)
        elif key == "tier":
            out["tier"] = value
        elif key == "backbone":
            out["backbones"] = value.split(",")
        else:
            raise BadTarget(f"campaign_queue: {text!r}: unknown or bad {w!r} (epochs=N, tier=T, backbone=A,B)")
    return out


def _key(label: str, backbone: str, overrides: dict) -> tuple:
    return label, backbone, json.dumps(overrides or {}, sort_keys=True)


def plan(targets: list[dict], records: list[dict], suites_dir: Path, device: str, seeds, ratios_from: str):
    """(queue lines as tuples (label, seed, est_s, suite, tier, flags), runs with no estimate as text)."""
    mine = [r for r in records if r.get("status") == "ok" and (r.get("env") or {}).get("device") == device]
    done = {(r["spec"]["suite"], r["id"]) for r in mine}
    runs: dict[tuple, dict[tuple, list[tuple]]] = {}  # suite -> (label, backbone, overrides) -> runs
    for r in mine:
        s = r["spec"]
        key = _key(r["label"], s["backbone"]["name"], s.get("overrides"))
        path = timing_path(r.get("timing") or {})
        runs.setdefault(s["suite"], {}).setdefault(key, []).append((r.get("finished") or "", path, r["duration_s"]))
    # durations of the runs on the newest run's speed path (a folded layer's older runs took the slower path)
    took = {
        suite: {key: [float(d) for _, p, d in rs if p == max(rs)[1]] for key, rs in by_key.items()}
        for suite, by_key in runs.items()
    }

    def ratio(suite: str, label: str, backbone: str, ov: dict) -> float | None:
        """The row's median time ratio to conv over the suite's other backbones (or ``ratios_from``'s)."""
        for source in (suite, ratios_from):
            got = []
            for (lab, bb, ovj), ds in took.get(source, {}).items():
                conv = took[source].get(("conv", bb, ovj))
                if lab == label and conv and (source != suite or bb != backbone):
                    got.append(max(ds) / max(conv))
            if got:
                return statistics.median(got)
        return None

    lines, missing = [], []
    for rank, t in enumerate(targets):
        suite = load_suite(suites_dir / f"{t['suite']}.yaml")
        specs = suite.expand(overrides=t["overrides"], seeds=seeds or suite.seeds, tier=t["tier"])
        for sp in specs:
            bb = sp.backbone["name"]
            if t["backbones"] and bb not in t["backbones"]:
                continue
            if (suite.name, sp.id) in done:
                continue
            measured = took.get(suite.name, {})
            same = measured.get(_key(sp.label, bb, sp.overrides))
            conv = measured.get(_key("conv", bb, sp.overrides))
            r = None if same else ratio(suite.name, sp.label, bb, sp.overrides)
            est = max(same) if same else (max(conv) * r if conv and r else None)
            flags = []
            if t["backbones"]:
                flags += ["--backbone", bb]
            if "epochs" in t["overrides"]:
                flags += ["--epochs", str(t["overrides"]["epochs"])]
            what = f"{suite.name} {sp.label} seed {sp.seed} {' '.join(flags)}".strip()
            if est is None:
                missing.append(f"{what}: nothing measured to estimate from")
                continue
            est_s = int(math.ceil(round(est * SLACK / 100.0, 6)) * 100)  # 2000 × 1.1 is 2200, not 2300
            lines.append((rank, sp.label, sp.seed, est_s, suite.name, t["tier"] or "-", flags))
    lines.sort(key=lambda x: (x[0], x[2], -x[3]))
    return [x[1:] for x in lines], missing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="+", help='suite names, e.g. fast-cifar-v2 "deconv epochs=1 backbone=vgg16"')
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--suites", default=str(ROOT / "suites"))
    ap.add_argument("--device", default=DEFAULT_DEVICE, help="records of this env.device count (default: %(default)s)")
    ap.add_argument("--seeds", help="only these seeds, e.g. 1 or 0,1 (default: each suite's)")
    ap.add_argument("--ratios-from", default="fast-cifar-v2", help="suite whose time ratios to conv estimate a row")
    args = ap.parse_args(argv)
    from bench.errors import BenchError

    try:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
        targets = [parse_target(t) for t in args.targets]
        recs, _ = load_records(args.results)
        lines, missing = plan(targets, recs, Path(args.suites), args.device, seeds, args.ratios_from)
    except (BadTarget, BenchError, ValueError) as exc:  # a bad target, seed list or suite file: one line
        print(exc if isinstance(exc, (BadTarget, BenchError)) else f"campaign_queue: --seeds: {exc}", file=sys.stderr)
        return 2
    for label, seed, est, suite, tier, flags in lines:
        print(" ".join([label, str(seed), str(est), suite, tier, *flags]))
    for m in missing:
        print(f"# not queued: {m}", file=sys.stderr)
    per: dict[str, float] = {}
    for _, _, est, suite, _, _ in lines:
        per[suite] = per.get(suite, 0.0) + est / 3600
    for suite, h in sorted(per.items()):
        print(f"# {suite}: {sum(1 for x in lines if x[3] == suite)} runs, about {h:.1f} CPU-hours", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
