"""The central comparison as a Markdown table, read from the records of protocol v2 (issue 22's closing note).

    python benchmarks/campaign_table.py [results/fast-cifar-v2]    # or results/fast-fashion-v2, …

Per family: top-1 mean ± std over its seeds (n), Δ top-1 against conv with the 95 % Welch interval (the site's
own, bench.report.verdicts.difference_interval; shown from two seeds on each side), MAC and training-time
ratios to conv, FGSM accuracy at ε = 8/255, and training CPU-hours spent. Only records with status ok count;
every number comes from the records. A family whose runs trained on different speed paths (a folded layer in
newer runs) is timed on its newest run's path only, as on the site ("time ×" then says "k of n"). No torch.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.records.records import load_records  # noqa: E402
from bench.report.aggregate import timing_path  # noqa: E402
from bench.report.verdicts import difference_interval  # noqa: E402


def _stats(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def rows(folder: Path) -> list[dict]:
    recs, _ = load_records(folder.parent)
    by_family: dict[str, list[dict]] = defaultdict(list)
    for r in recs:
        if r["spec"]["suite"] == folder.name and r["status"] == "ok":
            by_family[r["label"]].append(r)
    out = []
    for label, rs in by_family.items():
        top1 = [r["metrics"]["top1"] for r in rs]
        fgsm = [r["metrics"].get("fgsm8") for r in rs if isinstance(r["metrics"].get("fgsm8"), (int, float))]
        train = [r["timing"]["train_s"] for r in rs]
        newest = timing_path(max(rs, key=lambda r: r.get("finished") or "")["timing"])
        timed = [r["timing"]["train_s"] for r in rs if timing_path(r["timing"]) == newest]
        out.append(
            {
                "label": label,
                "n": len(rs),
                "top1": _stats(top1),
                "fgsm8": statistics.fmean(fgsm) if fgsm else None,
                "train_s": statistics.fmean(timed),
                "timed_n": len(timed),
                "cpu_h": sum(train) / 3600,
                "macs": rs[0].get("macs"),
                "seeds": sorted(r["spec"]["seed"] for r in rs),
            }
        )
    return sorted(out, key=lambda r: (r["label"] != "conv", -r["top1"][0]))


def markdown(table: list[dict]) -> str:
    conv = next((r for r in table if r["label"] == "conv"), None)
    lines = [
        "| family | n | top-1 % (mean ± std) | Δ vs conv [95 % interval] | MACs × | time × | FGSM ε=8/255 % | CPU-h |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        m, s = r["top1"]
        delta = "—"
        if conv is not None and r is not conv:
            iv = difference_interval(m, s, r["n"], conv["top1"][0], conv["top1"][1], conv["n"])
            delta = f"{iv.centre:+.2f}" + (f" [{iv.lo:+.2f}, {iv.hi:+.2f}]" if iv.half is not None else " (n < 2)")
        macs = f"{r['macs'] / conv['macs']:.2f}" if conv and r["macs"] and conv["macs"] else "—"
        time = f"{r['train_s'] / conv['train_s']:.2f}" if conv else "—"
        if conv and r["timed_n"] < r["n"]:
            time += f" ({r['timed_n']} of {r['n']})"
        fgsm = f"{r['fgsm8']:.2f}" if r["fgsm8"] is not None and math.isfinite(r["fgsm8"]) else "—"
        spread = f" ± {s:.2f}" if s is not None else ""
        lines.append(
            f"| {r['label']} | {r['n']} | {m:.2f}{spread} | {delta} | {macs} | {time} | {fgsm} | {r['cpu_h']:.2f} |"
        )
    total = sum(r["cpu_h"] for r in table)
    lines.append(f"\nTraining CPU-hours in these records: {total:.2f} ({sum(r['n'] for r in table)} runs).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="The per-family table of one suite's records (Markdown).")
    ap.add_argument("folder", nargs="?", default=str(ROOT / "results" / "fast-cifar-v2"), help="results/<suite>")
    folder = Path(ap.parse_args(argv).folder)
    if not folder.is_dir():
        print(f"campaign_table: {folder}: no such folder of records (give results/<suite>)", file=sys.stderr)
        return 2
    print(markdown(rows(folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
