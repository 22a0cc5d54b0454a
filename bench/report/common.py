"""What every page of the site shares: the jinja2 environment (filters and globals) and the formatting helpers
(numbers, SI prefixes, backbone options, file-name slugs, JSON-safe values)."""

from __future__ import annotations

import json
import math
import os

import jinja2

from bench.numbers import isnum
from bench.report.aggregate import fmt_pm
from bench.report.mdtext import md_inline
from bench.report.rules import VERDICT_RULES
from bench.report.runpage import data_href
from bench.report.verdicts import DEVIATIONS, MIN_SEEDS, deviation_chips

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not yet run")


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates cached in ``$BENCH_CACHE/jinja2`` (keyed by each template's source checksum, so an
    edited template recompiles): compiling them is a tenth of a report's wall time. None if not writable."""
    from bench.cache import cache_root

    folder = os.path.join(cache_root(), "jinja2")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(folder) if os.access(folder, os.W_OK) else None


def make_env(documents: dict | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.report", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["num"] = num
    env.filters["si"] = si
    env.filters["pm"] = lambda pair, fmt=".2f": fmt_pm(pair[0], pair[1], fmt)
    env.filters["chips"] = deviation_chips
    env.filters["tojson_attr"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    env.filters["opts"] = options_text
    env.filters["md"] = md_inline
    env.filters["data_href"] = data_href  # a run id → its shard's records file (the no-JavaScript view)
    env.globals["DOCUMENTS"] = documents or {}
    env.globals["VERDICTS"] = VERDICTS
    env.globals["VERDICT_RULES"] = VERDICT_RULES
    env.globals["DEVIATIONS"] = DEVIATIONS
    env.globals["MIN_SEEDS"] = MIN_SEEDS
    return env


def num(v, fmt=".2f"):
    if not isnum(v):
        return "—"
    try:
        return format(v, fmt)
    except (ValueError, TypeError):  # a format string from a data file that is not one
        return format(v, ".3g")


def si(v, unit: str = ""):
    """54879872 → "54.9 M" (3 significant digits, a thin space, an SI prefix); ``unit`` follows the prefix."""
    if not isnum(v):
        return "—"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}\u00a0{suf}{unit}"
    return f"{v:.3g}" + (f"\u00a0{unit}" if unit else "")


def options_text(options) -> str:
    """Backbone options for people: ``{"n": 3, "width": 1}`` (a dict or its JSON) → ``n=3, width=1``."""
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            return options
    if not isinstance(options, dict):
        return str(options)

    def one(v):
        if isinstance(v, float):
            return f"{v:.4g}"  # 0.1111111111111111 → 0.1111
        return json.dumps(v) if isinstance(v, (dict, list)) else str(v)

    return ", ".join(f"{k}={one(v)}" for k, v in options.items())


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v
