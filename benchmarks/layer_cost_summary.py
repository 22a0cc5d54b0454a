"""Summarise ``benchmarks/test_layer_cost.py``'s pytest-benchmark JSON into the site's benchmark tables.

    python benchmarks/layer_cost_summary.py RAW_JSON --out results/benchmarks/layer_cost.json \\
        [--summary-out results/benchmarks/layer_cost_summary.json] [--note "…"]

Writes two files in the site's benchmark format ({"title", "description", "device", "source", "columns",
"formats", "rows", "measured"}): one row per family × stage (medians in ms, ratios to the 3×3 ``conv`` at the
same shape, device and mode, the IQR/median spread, the document's cost claim where there is one), and a
per-family summary (geometric mean of each ratio over the stages, and what the measurement says about the
claim). ``--summary-out`` defaults to ``<out stem>_summary.json`` next to ``--out``; pass '' to skip it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

SOURCE = "benchmarks/test_layer_cost.py"
REFERENCE = "conv"

# What the documents say about cost, quoted from the seed texts (see the module docstring of each family).
CLAIMS = {
    "pnn": (
        "000 suppl. §3.2: an NHWC matrix-product implementation 'demonstrates a modest 10% speed-up over "
        "standard 3 × 3 convolution' (GPU; §3.1: as a 1×1 convolution 'we did not observe any speed-up'). "
        "This family runs a 1×1 convolution on NCHW tensors."
    ),
    "deconv": (
        "003 §4.5, A.6 (Fig. 12): 'the slow down is tunable to be around ∼10−30% on modern networks' "
        "(whole-network training wall time vs batch norm, B = 16, S = 4); compare the with-norm column "
        "(deconv layer vs conv + BatchNorm2d)."
    ),
    "sep-chans": (
        "004 §4.1, Fig. 4: networks with frozen spatial mixing (Sep-Chans) train significantly faster "
        "than fully learned separable ones (Sep-Full); Figs. 5, 8: learned spatial mixing costs more "
        "than learned channel mixing."
    ),
    "sep-space": (
        "004 §4.1, Fig. 4: frozen channel mixing (Sep-Space) trains faster than Sep-Full; Figs. 5, 8: "
        "spatial-learning networks still take about as long as (ConvMixer: longer than) "
        "channel-learning ones."
    ),
    "sep-full": (
        "004 §4.1, Fig. 4: the slowest separable variant to train (learns both factors); separable "
        "networks are 'held back by the overhead of converting the standard convolutions to separable "
        "ones'."
    ),
}

LAYER_COLUMNS = [
    "family",
    "document",
    "stage",
    "fwd ms",
    "fwd+bwd ms",
    "fwd / conv",
    "fwd+bwd / conv",
    "with norm: fwd / conv+BN",
    "with norm: fwd+bwd / conv+BN",
    "fwd+bwd spread",
    "document claim",
    "error",
]
SUMMARY_COLUMNS = [
    "family",
    "document",
    "stages",
    "fwd / conv",
    "fwd+bwd / conv",
    "with norm: fwd+bwd / conv+BN",
    "document claim",
    "measured here",
]
FORMATS = {
    "fwd ms": ".3f",
    "fwd+bwd ms": ".3f",
    "fwd / conv": ".2f",
    "fwd+bwd / conv": ".2f",
    "with norm: fwd / conv+BN": ".2f",
    "with norm: fwd+bwd / conv+BN": ".2f",
    "fwd+bwd spread": ".0%",
    "stages": "d",
}


def geomean(values):
    vals = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _ratio(a, b):
    return a / b if a is not None and b else None


def load_entries(raw: dict) -> dict:
    """(device, label, unit, channels, size, mode) -> {"median": s, "iqr": s, "rounds": n, "error": str|None}."""
    out = {}
    for b in raw.get("benchmarks", []):
        info = b.get("extra_info") or {}
        if "family" not in info:
            continue
        key = (
            info.get("device", "cpu"),
            info.get("label") or info["family"],
            bool(info.get("unit")),
            int(info["channels"]),
            int(info["size"]),
            info["mode"],
        )
        err = info.get("error")
        stats = b.get("stats") or {}
        out[key] = {
            "median": None if err else stats.get("median"),
            "iqr": None if err else stats.get("iqr"),
            "rounds": stats.get("rounds"),
            "error": err,
            "info": info,
        }
    return out


def layer_rows(entries: dict) -> list[dict]:
    rows = []
    devices = sorted({k[0] for k in entries})
    fams = sorted({k[1] for k in entries}, key=lambda f: (f != REFERENCE, f))
    stages = sorted({(k[3], k[4]) for k in entries})
    for dev in devices:
        for fam in fams:
            for ch, size in stages:
                get = lambda unit, mode, fam=fam: entries.get((dev, fam, unit, ch, size, mode))  # noqa: E731
                ref = lambda unit, mode: entries.get((dev, REFERENCE, unit, ch, size, mode))  # noqa: E731
                fwd, fb = get(False, "fwd"), get(False, "fwdbwd")
                if fwd is None and fb is None:
                    continue
                med = lambda e: e["median"] if e else None  # noqa: E731
                info = (fwd or fb)["info"]
                errors = sorted(
                    {e["error"] for e in (fwd, fb, get(True, "fwd"), get(True, "fwdbwd")) if e and e["error"]}
                )
                row = {
                    "family": fam,
                    "document": info.get("document", ""),
                    "stage": f"{ch}ch {size}×{size}",
                    "fwd ms": _ms(med(fwd)),
                    "fwd+bwd ms": _ms(med(fb)),
                    "fwd / conv": _ratio(med(fwd), med(ref(False, "fwd"))),
                    "fwd+bwd / conv": _ratio(med(fb), med(ref(False, "fwdbwd"))),
                    "fwd+bwd spread": _ratio(fb["iqr"], fb["median"]) if fb and fb["median"] else None,
                    "document claim": CLAIMS.get(info["family"]),
                    "error": "; ".join(errors) or None,
                }
                if fam != REFERENCE and get(True, "fwdbwd") is not None:
                    row["with norm: fwd / conv+BN"] = _ratio(med(get(True, "fwd")), med(ref(True, "fwd")))
                    row["with norm: fwd+bwd / conv+BN"] = _ratio(med(get(True, "fwdbwd")), med(ref(True, "fwdbwd")))
                if len(devices) > 1:
                    row["device"] = dev
                rows.append(row)
    return rows


def _ms(seconds):
    return None if seconds is None else seconds * 1000.0


def summary_rows(rows: list[dict]) -> list[dict]:
    devices = sorted({r.get("device") for r in rows}, key=str)
    out = []
    for dev in devices:
        dev_rows = [r for r in rows if r.get("device") == dev]
        fams = list(dict.fromkeys(r["family"] for r in dev_rows))
        gm = {}
        for fam in fams:
            fr = [r for r in dev_rows if r["family"] == fam]
            gm[fam] = {
                c: geomean([r.get(c) for r in fr])
                for c in ("fwd / conv", "fwd+bwd / conv", "with norm: fwd+bwd / conv+BN")
            }
            gm[fam]["stages"] = sum(1 for r in fr if r.get("fwd+bwd / conv") is not None)
            gm[fam]["document"] = fr[0]["document"]
            gm[fam]["claim"] = fr[0]["document claim"]
        for fam in fams:
            row = {
                "family": fam,
                "document": gm[fam]["document"],
                "stages": gm[fam]["stages"],
                **{c: gm[fam][c] for c in ("fwd / conv", "fwd+bwd / conv", "with norm: fwd+bwd / conv+BN")},
                "document claim": gm[fam]["claim"],
                "measured here": verdict(fam, gm),
            }
            if dev is not None:
                row["device"] = dev
            out.append(row)
    return out


def verdict(fam: str, gm: dict) -> str | None:
    """One sentence on what this measurement says about the document's claim (fwd+bwd, geometric means)."""
    fb = lambda f: gm.get(f, {}).get("fwd+bwd / conv")  # noqa: E731
    base = fam.split("[", 1)[0]
    if fam == "pnn" and fb("pnn") is not None:
        r = fb("pnn")
        return f"fwd+bwd {r:.2f}× conv: {'faster' if r < 1 else 'not faster'} than the 3×3 convolution here"
    if base == "deconv":
        r = gm[fam].get("with norm: fwd+bwd / conv+BN")
        if r is None:
            return None
        where = "within" if 1.1 <= r <= 1.3 else ("below" if r < 1.1 else "above")
        return f"layer without BN vs conv + BN, fwd+bwd {r:.2f}×: {where} the document's 1.1–1.3× (network-level)"
    if fam in ("sep-chans", "sep-space") and fb(fam) is not None and fb("sep-full"):
        r = fb(fam) / fb("sep-full")
        text = f"fwd+bwd {r:.2f}× sep-full: {'cheaper' if r < 1 else 'not cheaper'} than learning both"
        if fam == "sep-space" and fb("sep-chans"):
            q = fb("sep-space") / fb("sep-chans")
            text += f"; {q:.2f}× sep-chans"
        return text
    if fam == "sep-full" and fb("sep-full") is not None:
        r = fb("sep-full")
        return f"fwd+bwd {r:.2f}× conv: {'slower' if r > 1 else 'not slower'} than the 3×3 convolution here"
    return None


def describe(raw: dict, entries: dict, note: str) -> tuple[str, str]:
    infos = [e["info"] for e in entries.values()]
    batch = sorted({i.get("batch") for i in infos})
    threads = sorted({i.get("threads") for i in infos})
    rounds = sorted({e["rounds"] for e in entries.values() if not e["error"] and e["rounds"]})
    device = "; ".join(sorted({i.get("device_name", i.get("device", "?")) for i in infos}))
    text = (
        f"One layer (kernel 3, stride 1, cin = cout) at the three stages of a CIFAR ResNet, batch "
        f"{'/'.join(map(str, batch))}, torch {infos[0].get('torch', '?') if infos else '?'}, "
        f"{'/'.join(map(str, threads))} thread(s); medians of {'/'.join(map(str, rounds))} rounds after "
        f"warm-up (pytest-benchmark). fwd: eval mode, no grad; fwd+bwd: train mode, gradients w.r.t. input and "
        f"learned parameters. Ratios: family ÷ conv at the same shape (below 1 = cheaper); 'with norm' times "
        f"the layer followed by its family's norm against conv + BatchNorm2d (only for families that replace "
        f"the norm). Spread = IQR / median."
    )
    if note:
        text += " " + note
    return text, device


def build(raw: dict, note: str = "") -> tuple[dict, dict]:
    entries = load_entries(raw)
    if not entries:
        raise SystemExit("no layer-cost benchmarks (extra_info['family']) in the input")
    rows = layer_rows(entries)
    srows = summary_rows(rows)
    text, device = describe(raw, entries, note)
    multi = any("device" in r for r in rows)
    measured = raw.get("datetime") or ""
    layer = {
        "title": "Layer cost: forward and forward+backward of every family vs the 3×3 convolution",
        "description": text,
        "device": device,
        "source": SOURCE,
        "columns": (["device"] if multi else []) + LAYER_COLUMNS,
        "formats": FORMATS,
        "rows": rows,
        "measured": measured,
    }
    summary = {
        "title": "Layer cost per family: geometric mean over the three stages",
        "description": "Geometric means over stages of the per-stage ratios in the layer-cost table. " + text,
        "device": device,
        "source": SOURCE,
        "columns": (["device"] if multi else []) + SUMMARY_COLUMNS,
        "formats": FORMATS,
        "rows": srows,
        "measured": measured,
    }
    return layer, summary


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("raw", help="pytest-benchmark --benchmark-json output")
    ap.add_argument("--out", required=True, help="per family × stage table (JSON)")
    ap.add_argument("--summary-out", default=None, help="per-family table; default <out stem>_summary.json")
    ap.add_argument("--note", default="", help="appended to the description (e.g. machine load)")
    args = ap.parse_args(argv)
    raw = json.loads(Path(args.raw).read_text())
    layer, summary = build(raw, args.note)
    out = Path(args.out)
    _write(out, layer)
    sout = args.summary_out if args.summary_out is not None else str(out.with_name(out.stem + "_summary.json"))
    if sout:
        _write(Path(sout), summary)
    for r in summary["rows"]:
        fb = r["fwd+bwd / conv"]
        print(
            f"{r.get('device', '') or ''}{r['family']:>16}  fwd+bwd/conv "
            f"{'—' if fb is None else format(fb, '.2f')}  {r['measured here'] or ''}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
