"""costs.html: the benchmark outputs (results/benchmarks/*.json): what a run, a layer and a report cost."""

from __future__ import annotations

from pathlib import Path

from bench.report.owned import Site


def benchmarks(results: Path) -> list[dict]:
    """Benchmark outputs (results/benchmarks/*.json): harness overhead, layer costs, deconv vs BN…"""
    out = []
    from bench.records.safeio import RECORD_MAX_BYTES, parse_json, read_regular

    for path in sorted((results / "benchmarks").glob("*.json")):
        try:
            data = parse_json(read_regular(path, RECORD_MAX_BYTES))
        except (OSError, ValueError):
            continue
        if benchmark_ok(data):
            out.append(data)
    return out


def benchmark_ok(data) -> bool:
    """A benchmark output the index can show: a title, rows that are mappings, columns and formats of text."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("title"), str)
        and isinstance(data.get("rows"), list)
        and all(isinstance(r, dict) for r in data["rows"])
        and isinstance(data.get("columns", []), list)
        and all(isinstance(c, str) for c in data.get("columns", []))
        and isinstance(data.get("formats", {}), dict)
        and all(isinstance(f, str) for f in data.get("formats", {}).values())
    )


def write(site: Site, env, benchmarks: list[dict]) -> None:
    site.write(
        "costs.html",
        env.get_template("costs.html").render(
            title="convbench: measured costs", depth="", page="costs", benchmarks=benchmarks
        ),
    )
