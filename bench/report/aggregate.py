"""Records → run rows → leaderboard rows (pandas): one row per run record (:func:`run_row`), grouped into
leaderboards (suite × protocol group × device, :func:`board_frames`) and aggregated into one row per (backbone,
options, layer row) with mean ± std over seeds (:func:`aggregate_rows`). The pure data part of the report: no
verdict logic here (that is :mod:`bench.report.rules`)."""

from __future__ import annotations

import json
import math

import pandas as pd

from bench.spec.identity import group_key

NOISY_SPREAD = 0.05  # a timing whose repeats spread more than 5 % is flagged as noisy
# speed paths (timing.speed_paths keys) that compute the same function another way: a row's runs on different
# values of these are not timed together (its cost fields come from the runs on its newest run's path)
TIMING_PATH_KEYS = ("fold",)
# the cost fields that are times (the rest, parameters and MACs, do not depend on the speed path)
TIME_FIELDS = (
    "train_s",
    "warmup_epoch_s",
    "epoch_s",
    "throughput",
    "throughput_spread",
    "latency_ms",
    "latency_spread",
    "to_threshold_s",
)
# number of classes of the data sets whose records do not carry it (the report does not import the data sets)
KNOWN_CLASSES = {"cifar10": 10, "cifar100": 100, "digits": 10, "mnist": 10}


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run record, with the fields the leaderboard needs flattened (:func:`run_row`); each row is
    kept on its record (``_row``) for :func:`aggregate_rows`, which needs them as plain dicts again."""
    rows = []
    for r in records:
        r["_row"] = row = run_row(r)
        rows.append(row)
    return pd.DataFrame(rows)


def _canonical(value) -> str:
    """``json.dumps(value, sort_keys=True)``, without the encoder for the common empty mapping."""
    return "{}" if type(value) is dict and not value else json.dumps(value, sort_keys=True)


def run_row(r: dict) -> dict:
    """A run record's leaderboard fields, flattened; metrics as ``m:<name>`` (only those it has)."""
    spec = r["spec"]
    timing = r.get("timing", {}) or {}
    params = r.get("params", {}) or {}
    row = {
        "id": r["id"],
        "suite": r["suite"]["name"],
        "task": spec["task"]["name"],
        "dataset": spec["dataset"]["name"],
        "backbone": spec["backbone"]["name"],
        "backbone_options": _canonical(spec["backbone"].get("options", {})),
        "label": r["label"],
        "family": spec["layer"]["name"],
        "seed": spec["seed"],
        "display": spec["layer"].get("display"),
        "status": r["status"],
        "error": r.get("error"),
        "group": r["_group"] if "_group" in r else r.setdefault("_group", group_key(spec)),  # once per record
        "protocol_name": spec["protocol"].get("name", ""),
        "overrides": _canonical(spec.get("overrides", {})),
        "params_learned": params.get("learned"),
        "params_fixed": params.get("fixed"),
        "params_total": params.get("total"),
        "macs": r.get("macs"),
        "train_s": timing.get("train_s"),
        "timing_path": timing_path(timing),
        "warmup_epoch_s": timing.get("warmup_epoch_s"),
        "epoch_s": timing.get("epoch_s_median"),
        "throughput": timing.get("throughput_img_s"),
        "throughput_spread": timing.get("throughput_spread"),
        "latency_ms": timing.get("latency_ms"),
        "latency_spread": timing.get("latency_spread"),
        "to_threshold_s": (timing.get("to_threshold") or {}).get("seconds"),
        "to_threshold_macs": (timing.get("to_threshold") or {}).get("train_macs"),
        "train_macs": timing.get("train_macs_estimate"),
        "device": (r.get("env") or {}).get("device"),
        "path": r.get("_path"),
        "classes": _classes(r),
        "test_images": (r.get("data") or {}).get("test"),
        "finished": r.get("finished") or "",
    }
    for k, v in (r.get("metrics") or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            row[f"m:{k}"] = v
    return row


def timing_path(timing: dict) -> str:
    """The run's values of :data:`TIMING_PATH_KEYS` (``"{}"``: none, the layer as written), as JSON text."""
    paths = timing.get("speed_paths")
    if not isinstance(paths, dict):
        return "{}"
    return _canonical({k: paths[k] for k in TIMING_PATH_KEYS if paths.get(k)})


def _classes(record: dict) -> int | None:
    """Number of classes of a classification record (for its chance level), or None."""
    metrics, data = record.get("metrics") or {}, record.get("data") or {}
    for v in (metrics.get("classes"), data.get("classes")):
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return KNOWN_CLASSES.get(((record.get("spec") or {}).get("dataset") or {}).get("name"))


def _fmt_pm(mean: float | None, std: float | None, fmt: str = ".2f") -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return format(mean, fmt)
    return f"{format(mean, fmt)} ± {format(std, fmt)}"


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


AGG_FIELDS = ["params_learned", "params_fixed", "params_total", "macs", *TIME_FIELDS, "to_threshold_macs", "train_macs"]


def _by_key(frame: pd.DataFrame) -> dict:
    """{index key: {column: value}} of a numeric frame via one ``to_numpy`` (``to_dict`` costs a pandas call per
    column)."""
    cols = list(frame.columns)
    return {key: dict(zip(cols, vals)) for key, vals in zip(frame.index, frame.to_numpy().tolist())}


def newest_per_seed(df: pd.DataFrame) -> pd.DataFrame:
    """One run per (backbone, options, row, seed) in a leaderboard: when a row's options changed (a new family
    option with its default changes the run id), the older record of the same seed is superseded, not averaged
    in as another seed. Superseded ids are listed in ``df.attrs['superseded']``."""
    keys = ["backbone", "backbone_options", "label", "seed"]
    if "finished" not in df or not df.duplicated(keys).any():
        return df
    ordered = df.sort_values("finished")
    keep = ordered.drop_duplicates(keys, keep="last")
    out = df.loc[df.index.isin(keep.index)].copy()
    out.attrs["superseded"] = sorted(set(df["id"]) - set(out["id"]))
    return out


def stale_records(records: list[dict], suites: dict) -> dict[str, str]:
    """{record id: one line} for records whose run id the current suite file no longer produces (a family
    option added with a default, a row relabelled, a protocol changed): expanded again with the record's own
    seed and overrides, plain or under each declared tier. Records of suites that are not loaded are left
    alone (nothing to compare with).

    A suite's expansion differs from seed to seed only in the ``seed`` field, so each (suite, overrides, tier)
    is expanded once (for one seed) and a record's id is checked against the specs of its family and backbone
    with its seed put in: the work grows with the records, not with records × rows × seeds."""
    from bench.errors import BenchError
    from bench.spec.identity import id_with_seed

    # (suite, overrides json) -> {(family, backbone name): [id parts]}: keyed by what a row's id cannot lose
    # (a relabelled row keeps its id, so the label is not part of the key)
    rows_of: dict[tuple, dict | None] = {}

    def row_specs(name: str, ov_json: str) -> dict | None:
        key = (name, ov_json)
        if key not in rows_of:
            suite, ov = suites[name], json.loads(ov_json)
            found: dict[tuple, list] = {}
            for tier in [None] + [t["name"] for t in getattr(suite, "tiers", None) or []]:
                try:
                    runs = suite.seed_parts(overrides=ov, tier=tier)
                except (BenchError, KeyError, TypeError):
                    continue
                for sp, parts in runs:  # not ``key``: that names this cache entry
                    found.setdefault((sp.layer.get("name"), sp.backbone.get("name")), []).append(parts)
            rows_of[key] = found
        return rows_of[key]

    from bench.zoo.catalog import catalog

    LAYERS = catalog().layers
    out = {}
    for r in records:
        spec = r.get("spec") or {}
        name = (r.get("suite") or {}).get("name")
        if name not in suites:
            continue
        if (spec.get("layer") or {}).get("name") not in LAYERS:
            continue  # a plug-in family not loaded for this report (bench report --layers FILE): unknown, not stale
        ov = spec.get("overrides")
        found = row_specs(name, json.dumps(ov, sort_keys=True) if ov else "{}")
        seed = int(spec.get("seed", 0))
        candidates = found.get((spec["layer"].get("name"), (spec.get("backbone") or {}).get("name")), [])
        if not any(id_with_seed(c, seed) == r["id"] for c in candidates):
            out[r["id"]] = (
                f"{r.get('_path') or r['id']}: superseded by the current suite {name!r} "
                f"(row {r.get('label')!r}, seed {spec.get('seed')}: the suite file now gives this "
                f"run another id)"
            )
    return out


def board_frames(runs: pd.DataFrame, records: list[dict], suites: dict, stale: dict | set | None = None):
    """The runs of each leaderboard: ``(suite, group, device, frame, n_devices)`` per (suite, protocol group,
    device), sorted, each frame with one run per seed (:func:`newest_per_seed`); ``n_devices``: how many devices
    the suite's runs under this group were split over. Records in ``stale`` (default: :func:`stale_records`) are
    left out."""
    if runs.empty:
        return
    if stale is None:
        stale = stale_records(records, suites)
    if stale:
        runs = runs[~runs["id"].isin(list(stale))]
        if runs.empty:
            return
    # one device per table: records measured on different devices (env.device) never share a leaderboard
    runs = runs.assign(device_key=runs["device"].fillna("unknown device") if "device" in runs else "unknown device")
    n_devices = runs.groupby(["suite", "group"])["device_key"].nunique().to_dict()
    for (suite, group, device), df in runs.groupby(["suite", "group", "device_key"], sort=True):
        yield suite, group, device, newest_per_seed(df), n_devices.get((suite, group), 1)


def aggregate_rows(df: pd.DataFrame, by_id: dict) -> tuple[list[dict], list[str], pd.DataFrame]:
    """One leaderboard's runs → ``(rows, metric_cols, ok)``: one plain dict per (backbone, options, label) in
    order of first appearance, every metric ``m:<name>`` as ``:mean`` / ``:std`` over its ok seeds and every
    cost field of :data:`AGG_FIELDS` as its mean; ``ok`` is the frame of the runs that finished. When a row's
    runs trained on different speed paths (:data:`TIMING_PATH_KEYS`, e.g. a layer folded into one convolution
    in newer runs), its times (:data:`TIME_FIELDS`) are the means over the runs on the newest run's path
    (``timed_n`` of ``n``), so a time ratio never blends two implementations; ``train_s_sum`` is every ok run's
    training time."""
    ok = df[df["status"] == "ok"]
    metric_cols = sorted(c for c in df.columns if c.startswith("m:") and df[c].notna().any())
    agg_rows = []
    # per-row means / spreads of every metric and cost column in three grouped passes (one pandas call per
    # column and row was most of a report's own time)
    keys = ["backbone", "backbone_options", "label"]
    num_cols = metric_cols + [c for c in AGG_FIELDS if c in ok]
    if len(ok):
        values = ok[keys].join(ok[num_cols].apply(pd.to_numeric, errors="coerce").astype(float))
        grouped = values.groupby(keys, sort=False)
        # plain dicts: a MultiIndex .at lookup per cell cost more than the grouping itself
        means = _by_key(grouped[num_cols].mean())
        counts = _by_key(grouped[num_cols].count())
        stds = _by_key(grouped[metric_cols].std(ddof=1))
    else:
        means, stds, counts = {}, {}, {}
    members: dict[tuple, list[dict]] = {}  # runs per row, in order of first appearance (plain dicts)
    # the rows runs_frame built (DataFrame.to_dict costs a pandas call per column)
    for r in (by_id[i]["_row"] if "_row" in by_id[i] else run_row(by_id[i]) for i in df["id"]):
        members.setdefault((r["backbone"], r["backbone_options"], r["label"]), []).append(r)
    for key, g in members.items():
        backbone, bopts, label = key
        good = [r for r in g if r["status"] == "ok"]
        mean_k, count_k, std_k = means.get(key, {}), counts.get(key, {}), stds.get(key, {})
        present = lambda rs, c: [r[c] for r in rs if not _missing(r.get(c))]
        titles, classes, test_images = present(g, "display"), present(good, "classes"), present(good, "test_images")
        row = {
            "backbone": backbone,
            "backbone_options": bopts,
            "label": label,
            "family": g[0]["family"],
            "title": str(titles[-1]) if titles else None,
            "n": len(good),
            "failed": len(g) - len(good),
            "errors": present(g, "error")[:3],
            "run_ids": [r["id"] for r in g],
            "seeds": sorted(r["seed"] for r in g),
            "classes": classes[0] if classes else None,
            "test_images": min(test_images) if test_images else None,
        }
        for c in metric_cols:
            k = int(count_k.get(c, 0))
            row[c + ":mean"] = float(mean_k[c]) if k else None
            row[c + ":std"] = float(std_k[c]) if k > 1 else None
        for c in AGG_FIELDS:
            k = int(count_k.get(c, 0))
            row[c] = float(mean_k[c]) if k else None
        # seeds whose test accuracy reached the protocol's threshold (to_threshold_s is their mean)
        row["to_threshold_n"] = int(count_k.get("to_threshold_s", 0))
        row["train_s_sum"] = float(sum(present(good, "train_s")))  # compute spent, whatever the path
        newest = max(good, key=lambda r: r["finished"])["timing_path"] if good else "{}"
        timed = [r for r in good if r["timing_path"] == newest]
        row["timed_n"], row["timing_path"] = len(timed), newest
        if len(timed) < len(good):  # runs on another speed path: times from the newest run's path only
            for c in TIME_FIELDS:
                vals = present(timed, c)
                row[c] = float(sum(vals) / len(vals)) if vals else None
            row["to_threshold_n"] = len(present(timed, "to_threshold_s"))
        row["noisy"] = any(v > NOISY_SPREAD for c in ("throughput_spread", "latency_spread") for v in present(good, c))
        agg_rows.append(row)
    return agg_rows, metric_cols, ok


def fmt_pm(mean, std, fmt=".2f"):
    return _fmt_pm(mean, std, fmt)
