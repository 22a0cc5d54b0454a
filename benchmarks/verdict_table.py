"""Every verdict the report gives, one line each: document value, measured mean, interval, n, verdict.

Issue 18's closing note lists the verdicts before and after the rule change. Run it once with this tree's code
and once with the code of the commit before the change, on the same ``results/``::

    python benchmarks/verdict_table.py --results results --suites suites            # after (this tree)
    git archive db34f09 | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before python benchmarks/verdict_table.py --suites /tmp/before/suites   # before

It uses only what :func:`bench.report.tables.leaderboards` returns, so it reads the old format (``measured_std``
and the seed-slack text) as well as the new one (``interval``, ``compared``). Items with no measured run ("not
yet run") are left out unless ``--all``.
"""

from __future__ import annotations

import argparse
import re
import sys


def _n(v):
    return "" if v is None else str(v)


def _f(v, fmt=".2f"):
    return "" if v is None else format(v, fmt)


def rows(results: str, suites_dir: str) -> list[dict]:
    from bench.records.records import load_records
    from bench.report.site import load_suites
    from bench.report.aggregate import runs_frame
    from bench.report.tables import leaderboards
    from bench.tasks import TASKS

    records, _ = load_records(results)
    records = [r for r in records if "/benchmarks/" not in str(r.get("_path", ""))]
    suites, _ = load_suites(suites_dir)
    out = []
    for b in leaderboards(runs_frame(records), records, suites, TASKS):
        for ref in b.references:
            iv = ref.get("interval")
            if iv:
                interval = f"± {_f(iv['half'])}" if iv.get("half") is not None else "no interval"
                interval += f" (95 % t, ±{ref.get('tolerance', 1):g} tol.)"
            elif ref.get("measured") is not None:
                interval = (
                    f"± {_f(ref.get('measured_std'))} (seed std; tol. {ref.get('tolerance', '')})"
                    if ref.get("measured_std") is not None
                    else "no spread"
                )
            else:
                interval = ""
            out.append(
                {
                    "suite": b.suite,
                    "kind": "ref",
                    "what": f"{ref['row']} / {ref.get('backbone') or 'any'}"
                    f" / {ref['metric']}" + (f" @{ref['epochs']}ep" if ref.get("epochs") else ""),
                    "setting": ref["setting_tag"],
                    "document": _f(ref["value"]),
                    "mean": _f(ref.get("measured")),
                    "interval": interval,
                    "n": _n(ref.get("n") or None),
                    "verdict": ref["verdict"],
                    "measured": ref.get("measured") is not None,
                }
            )
        for c in b.claims:
            chk = c["check"]
            boundary = {
                "above": f"≥ {chk['points']:g}",
                "below": f"≤ −{chk['points']:g}",
                "within": f"within ±{chk['points']:g}",
            }[chk["op"]]
            per = []
            if c.get("compared"):
                per = [
                    (
                        x["backbone"],
                        x["centre"],
                        f"± {_f(x['half'])} (95 % Welch)" if x.get("half") is not None else "no interval",
                        "/".join(map(str, x["n"])) if isinstance(x["n"], list) else _n(x["n"]),
                        x["verdict"],
                    )
                    for x in c["compared"]
                ]
            else:  # the old text: "<backbone>: a − b = +1.23 (seed slack 0.45)"
                for m in re.finditer(
                    r"([\w.-]+): \S+ − \S+ = ([+-][\d.]+) \(seed slack ([\d.]+)\)", c.get("verdict_detail", "")
                ):
                    per.append((m.group(1), float(m.group(2)), f"slack {m.group(3)} (2 × max seed std)", "", ""))
            if not per:
                per = [("", None, "", "", "")]
            for bb, centre, interval, n, _ in per:
                out.append(
                    {
                        "suite": b.suite,
                        "kind": "claim",
                        "what": f"{c['id']} ({chk['a']} − {chk['b']}" + (f", {bb}" if bb else "") + ")",
                        "setting": c["setting_tag"],
                        "document": boundary,
                        "mean": _f(centre),
                        "interval": interval,
                        "n": n,
                        "verdict": c["verdict"],
                        "measured": centre is not None,
                    }
                )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--suites", default="suites")
    p.add_argument("--all", action="store_true", help="also the items with no measured run")
    p.add_argument("--before", metavar="TABLE.md", help="this script's output under the old code: print both, joined")
    a = p.parse_args(argv)
    table = [r for r in rows(a.results, a.suites) if a.all or r["measured"] or r["verdict"] != "not yet run"]
    if a.before:
        return _joined(table, a.before)
    print("| suite | kind | reference / claim | setting | document | mean | interval | n | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['suite']} | {r['kind']} | {r['what']} | {r['setting']} | {r['document']} | {r['mean']} | "
            f"{r['interval']} | {r['n']} | {r['verdict']} |"
        )
    return 0


def _joined(after: list[dict], before_md: str) -> int:
    """Before and after side by side, matched on (suite, kind, item, setting); an item only on one side says so."""
    before = {}
    for line in open(before_md):
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 9 and cells[0] not in ("suite", "---|---|---|---|---|---|---|---|---"):
            before.setdefault(tuple(cells[:4]), []).append(cells)
    print(
        "| suite | kind | reference / claim | setting | document | before: mean, spread, n → verdict | "
        "after: mean ± 95 % half-width, n → verdict |"
    )
    print("|---|---|---|---|---|---|---|")
    seen = set()
    for r in after:
        key = (r["suite"], r["kind"], r["what"], r["setting"])
        olds = before.get(key) or []
        old = olds.pop(0) if olds else None
        seen.add(key)
        b = f"{old[5]} {old[6]}, n={old[7] or '–'} → **{old[8]}**" if old else "(not listed)"
        doc = r["document"] if not old or old[4] == r["document"] else f"{old[4]} → {r['document']}"
        print(
            f"| {r['suite']} | {r['kind']} | {r['what']} | {r['setting']} | {doc} | {b} | "
            f"{r['mean']} {r['interval']}, n={r['n'] or '–'} → **{r['verdict']}** |"
        )
    for key, olds in before.items():
        for old in olds:
            print(
                f"| {old[0]} | {old[1]} | {old[2]} | {old[3]} | {old[4]} | {old[5]} {old[6]}, n={old[7] or '–'} → "
                f"**{old[8]}** | moved to context (no verdict) or no longer aggregated |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
