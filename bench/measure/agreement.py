"""An independent rerun checked against the committed records (issue 19: a first run that proves itself).

``bench run SUITE --results FRESH --compare-with COMMITTED`` trains into its own folder, then sets each fresh
record beside the committed record of the same run id (same spec, so the same run) and says whether they agree:

* **bitwise** expected when both ran on the same device class with the same thread count (CPU kernels are
  deterministic there): the primary metric must be exactly equal;
* otherwise **within the seed-noise band**: |fresh − committed| ≤ max(2 × the committed seeds' std of that row,
  ``MIN_BAND`` points), because another CPU, thread count or GPU picks other kernels.

Pure functions over record dicts; no torch.
"""

from __future__ import annotations

import statistics

from bench.numbers import isnum

#: the narrowest band (points of the primary metric) for runs that cannot be bitwise equal
MIN_BAND = 2.0


def device_class(rec: dict) -> tuple:
    env = rec.get("env") if isinstance(rec.get("env"), dict) else {}
    return (str(env.get("device", "")), env.get("cpu_threads"), str(env.get("torch", "")))


def row_key(rec: dict) -> tuple:
    spec = rec.get("spec") if isinstance(rec.get("spec"), dict) else {}
    return (rec.get("label"), str(spec.get("backbone")), str(spec.get("overrides")))


def compare(fresh: list[dict], committed: list[dict], metric: str = "top1") -> list[dict]:
    """One row per fresh record: committed value (same run id), fresh value, expectation and agreement."""
    by_id = {r.get("id"): r for r in committed if r.get("status") == "ok"}
    seeds: dict[tuple, list[float]] = {}
    for r in committed:
        v = (r.get("metrics") or {}).get(metric) if isinstance(r.get("metrics"), dict) else None
        if r.get("status") == "ok" and isnum(v):
            seeds.setdefault(row_key(r), []).append(v)
    rows = []
    for r in fresh:
        new = (r.get("metrics") or {}).get(metric) if isinstance(r.get("metrics"), dict) else None
        old_rec = by_id.get(r.get("id"))
        old = (old_rec.get("metrics") or {}).get(metric) if old_rec else None
        row = {
            "id": r.get("id"),
            "label": r.get("label"),
            "seed": (r.get("spec") or {}).get("seed"),
            "committed": old if isnum(old) else None,
            "fresh": new if isnum(new) else None,
            "device": device_class(r)[0],
        }
        if row["fresh"] is None:
            row.update(expect="—", agree=False, why=f"fresh run {r.get('status', 'failed')}")
        elif row["committed"] is None:
            row.update(expect="—", agree=None, why="no committed record of this run")
        elif device_class(r) == device_class(old_rec):
            row.update(
                expect="bitwise",
                agree=new == old,
                why="equal" if new == old else f"differs by {new - old:+.4f} on the same device class",
            )
        else:
            vals = seeds.get(row_key(old_rec), [])
            band = max(MIN_BAND, 2 * statistics.stdev(vals)) if len(vals) > 1 else MIN_BAND
            row.update(
                expect=f"±{band:.2f}",
                agree=abs(new - old) <= band,
                why=f"Δ {new - old:+.2f} (committed on {device_class(old_rec)[0] or 'unknown'})",
            )
        rows.append(row)
    return rows


def format_table(rows: list[dict], metric: str = "top1") -> str:
    lines = [f"{'run':<22} {'seed':>4} {'committed':>10} {'fresh':>8}  {'expect':<8} agree  why"]
    for r in rows:
        c = f"{r['committed']:.2f}" if r["committed"] is not None else "—"
        f = f"{r['fresh']:.2f}" if r["fresh"] is not None else "—"
        a = {True: "yes", False: "NO", None: "n/a"}[r["agree"]]
        lines.append(
            f"{str(r['label'])[:22]:<22} {str(r['seed']):>4} {c:>10} {f:>8}  {r['expect']:<8} {a:<5}  {r['why']}"
        )
    agreed = sum(1 for r in rows if r["agree"])
    compared = sum(1 for r in rows if r["agree"] is not None)
    lines.append(f"{metric}: {agreed} of {compared} compared runs agree with the committed records")
    return "\n".join(lines)
