"""Records → tables (pandas): one row per run, then one leaderboard row per (group, backbone, layer row)
with mean ± std over seeds, the documents' numbers beside them, and a verdict per reference and claim."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd

from bench.identity import group_key
from bench.report.verdicts import (
    DEFAULT_TOLERANCE,
    MIN_SEEDS,
    claim_rule_text,
    decide_claim,
    decide_reference,
    deviation_chips,
    difference_interval,
    mean_interval,
)

NOISY_SPREAD = 0.05  # a timing whose repeats spread more than 5 % is flagged as noisy

# Verdicts speak only when the runs can support them; the rule's one source is bench.report.verdicts
# (VERDICT_RULES, printed on the site and in the README).
CHANCE_Z = 3.0  # "learned": accuracy above chance by 3 binomial standard errors of the test-set size
CHANCE_METRICS = ("top1", "top1_best", "top1_auc")  # accuracies, whose chance level is 100 / classes
SUBSET_KEYS = ("train_subset", "test_subset", "max_batches")
# number of classes of the data sets whose records do not carry it (the report does not import the data sets)
KNOWN_CLASSES = {"cifar10": 10, "cifar100": 100, "digits": 10, "mnist": 10}


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run record, with the fields the leaderboard needs flattened (:func:`run_row`)."""
    return pd.DataFrame([run_row(r) for r in records])


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
        "backbone_options": json.dumps(spec["backbone"].get("options", {}), sort_keys=True),
        "label": r["label"],
        "family": spec["layer"]["name"],
        "seed": spec["seed"],
        "display": spec["layer"].get("display"),
        "status": r["status"],
        "error": r.get("error"),
        "group": group_key(spec),
        "protocol_name": spec["protocol"].get("name", ""),
        "overrides": json.dumps(spec.get("overrides", {}), sort_keys=True),
        "params_learned": params.get("learned"),
        "params_fixed": params.get("fixed"),
        "params_total": params.get("total"),
        "macs": r.get("macs"),
        "train_s": timing.get("train_s"),
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


@dataclass
class Verdict:
    status: str  # reproduced | not reproduced | inconclusive | not yet run
    detail: str
    tolerance: str = ""
    interval: dict | None = None  # the compared 95 % interval: {centre, half, lo, hi, df, n, text}
    compared: list = field(default_factory=list)  # claims: one interval per backbone compared


def _interval_dict(iv) -> dict:
    return {
        "centre": iv.centre,
        "half": iv.half,
        "lo": iv.lo if iv.half is not None else None,
        "hi": iv.hi if iv.half is not None else None,
        "df": iv.df,
        "n": list(iv.n) if isinstance(iv.n, tuple) else iv.n,
        "text": iv.text(),
    }


@dataclass
class Setting:
    """What a leaderboard's runs are, for one reference or claim: ``document`` (the document's protocol and
    data at the number's epochs), ``shared`` (the harness's protocol, full data) or ``shortened`` (subsets,
    fewer epochs or another batch size; ``tier`` names the suite's declared tier it matches, if any).
    ``other_epochs``: the runs are unshortened but trained for other epochs than the number's."""

    kind: str
    tier: str | None = None
    epochs: int | None = None
    other_epochs: bool = False

    @property
    def tag(self) -> str:
        return f"shortened: {self.tier}" if self.tier else self.kind


def classify_setting(suite_info, protocol: dict, target_epochs: int | None) -> Setting:
    """The setting of runs with effective ``protocol`` for a number or claim at ``target_epochs``."""
    base = getattr(suite_info, "protocol", None) or {}
    target = target_epochs or base.get("epochs")
    subsets = any(protocol.get(k) for k in SUBSET_KEYS)
    other_batch = base.get("batch_size") is not None and protocol.get("batch_size") != base.get("batch_size")
    other_epochs = target is not None and protocol.get("epochs") != target
    if subsets or other_batch or (other_epochs and protocol.get("epochs", 0) < (target or 0)):
        tier = None
        for t in getattr(suite_info, "tiers", None) or []:
            if all(protocol.get(k) == v for k, v in t["overrides"].items()):
                tier = t["name"]
                break
        return Setting("shortened", tier, protocol.get("epochs"))
    kind = getattr(suite_info, "setting", "shared") or "shared"
    return Setting(kind, None, protocol.get("epochs"), other_epochs=other_epochs)


def learned_check(row, metric: str) -> str | None:
    """None when the row learned (or the metric has no chance level), else the reason it is at chance."""
    if metric not in CHANCE_METRICS:
        return None
    classes, n_test = row.get("classes"), row.get("test_images")
    mean = row.get(f"m:{metric}:mean")
    if not classes or not n_test or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return None
    p0 = 1.0 / float(classes)
    margin = 100.0 * CHANCE_Z * math.sqrt(p0 * (1 - p0) / float(n_test))
    if mean < 100.0 * p0 + margin:
        return (
            f"at chance: {row['label']} {mean:.2f} % ≤ chance {100 * p0:.1f} % + {margin:.2f} "
            f"({CHANCE_Z:g} s.e. of {int(n_test)} test images)"
        )
    return None


def _gate(setting: Setting, rows: list, metric: str, allow: tuple) -> str | None:
    """Why no verdict may be given (None: a verdict may be given)."""
    if setting.kind not in allow:
        if setting.kind == "shortened":
            return "shortened: " + (f"tier {setting.tier}" if setting.tier else "not the document's setting")
        return f"{setting.kind} protocol, not the document's setting"
    for row in rows:
        reason = learned_check(row, metric)
        if reason:
            return reason
    low = [r for r in rows if int(r.get("n") or 0) < MIN_SEEDS]
    if low:
        return f"needs {MIN_SEEDS} seeds: " + ", ".join(f"{r['label']} n={int(r.get('n') or 0)}" for r in low)
    return None


def reference_verdict(
    ref: dict, mean: float | None, std: float | None, n: int, comparable: bool, blocked: str | None = None
) -> Verdict:
    """The document's ``ref['value']`` against the measured mean's 95 % t-interval (with the document's own
    standard error in quadrature when it reports a std) widened by ``ref['tolerance']`` (bench.report.verdicts)."""
    tol = float(ref.get("tolerance", DEFAULT_TOLERANCE) if ref.get("tolerance") is not None else DEFAULT_TOLERANCE)
    tol_text = f"±{tol:g} declared tolerance"
    if ref.get("std"):
        tol_text += f"; document std {ref['std']:g}" + (
            f" over {ref['runs']} runs" if ref.get("runs") else " (runs not stated: used as its standard error)"
        )
    if mean is None or n == 0:
        return Verdict("not yet run", "no measured run for this row", tol_text)
    iv = mean_interval(mean, std, n, ref.get("std"), ref.get("runs"))
    diff = mean - ref["value"]
    ivd = _interval_dict(iv)
    head = f"Δ {diff:+.2f}; 95 % interval {iv.text()} (n={n})"
    if blocked:
        return Verdict("inconclusive", f"{head}; {blocked}", tol_text, ivd)
    if not comparable:
        return Verdict(
            "inconclusive", f"{head}: shortened or different protocol, not the document's setting", tol_text, ivd
        )
    if iv.half is None:
        return Verdict("inconclusive", f"{head}; needs {MIN_SEEDS} seeds", tol_text, ivd)
    status = decide_reference(ref["value"], iv, tol)
    where = "inside" if status == "reproduced" else "outside"
    return Verdict(
        status,
        f"{head}: {ref['value']:g} {where} [{iv.lo - tol:.2f}, {iv.hi + tol:.2f}] (interval ± tolerance {tol:g})",
        tol_text,
        ivd,
    )


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _select(rows: list[dict], ident: str) -> list[dict]:
    """Rows named ``ident``: a row label, or ``key=value[,key=value]`` matched against backbone options."""
    if "=" not in ident:
        return [r for r in rows if r["label"] == ident]
    conds = dict(kv.split("=", 1) for kv in ident.split(","))
    return [
        r
        for r in rows
        if all(
            str(json.loads(r["backbone_options"]).get(k.strip())).lower() == v.strip().lower() for k, v in conds.items()
        )
    ]


def claim_verdict(claim: dict, rows: pd.DataFrame | list[dict], setting: Setting | None = None) -> Verdict:
    """Check a qualitative claim (a vs b: within / above / below by ``points``) on leaderboard rows, within
    each backbone that has both rows (or only ``check.backbone``), by the 95 % Welch interval of the difference
    of means; it holds when it holds for every backbone. With a ``setting``, the verdict is given only when
    :func:`_gate` allows it for every compared row.
    ``rows``: the leaderboard's aggregated rows (a frame, or its ``to_dict("records")``)."""
    chk = claim["check"]
    col = f"m:{chk['metric']}"
    recs = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else rows
    if not any(col + ":mean" in r for r in recs):
        return Verdict("not yet run", f"no run measured {chk['metric']}")
    pts = chk["points"]
    rule = claim_rule_text(chk["a"], chk["b"], chk["op"], pts)
    results = []
    # rows are named by label, or by backbone options ("learn=chans,kernel=8") when the variants are backbones
    by_options = "=" in chk["a"] or "=" in chk["b"]
    second = "label" if by_options else "backbone_options"
    groups: dict[tuple, list[dict]] = {}
    for r in recs:  # plain lists: a pandas call per claim, backbone and row was a tenth of a report
        groups.setdefault((r["backbone"], r[second]), []).append(r)
    for (backbone, _), sel in sorted(groups.items(), key=lambda kv: kv[0]):
        if chk.get("backbone") and backbone != chk["backbone"]:
            continue
        a, b = _select(sel, chk["a"]), _select(sel, chk["b"])
        if len(a) != 1 or len(b) != 1 or _missing(a[0].get(col + ":mean")) or _missing(b[0].get(col + ":mean")):
            continue
        a, b = a[0], b[0]
        std = lambda r: None if _missing(r.get(col + ":std")) else float(r[col + ":std"])
        na, nb = int(a.get("n") or 0), int(b.get("n") or 0)
        iv = difference_interval(float(a[col + ":mean"]), std(a), na, float(b[col + ":mean"]), std(b), nb)
        status = decide_claim(chk["op"], pts, iv) if iv.half is not None else f"inconclusive: needs {MIN_SEEDS} seeds"
        if setting is not None:
            blocked = _gate(
                setting,
                [a, b],
                chk["metric"],
                ("document", "shared", "shortened")
                if setting.tier or setting.kind != "shortened"
                else ("document", "shared"),
            )
            if blocked:
                status = "inconclusive: " + blocked
        results.append((backbone, status, iv))
    if not results:
        return Verdict("not yet run", f"needs measured rows {chk['a']!r} and {chk['b']!r} on one backbone")
    detail = "; ".join(
        f"{bb}: {chk['a']} − {chk['b']} = {iv.text(signed=True)} (95 % Welch, n={iv.n[0]}/{iv.n[1]})"
        for bb, _, iv in results
    )
    statuses = {st for _, st, _ in results}
    reasons = sorted({st.split(": ", 1)[1] for st in statuses if st.startswith("inconclusive: ")})
    if reasons:  # a verdict needs every compared backbone to support one
        overall = "inconclusive"
        detail += "; " + "; ".join(reasons)
    else:
        overall = (
            "not reproduced"
            if "not reproduced" in statuses
            else "inconclusive"
            if "inconclusive" in statuses
            else "reproduced"
        )
    compared = [dict(_interval_dict(iv), backbone=bb, verdict=st.split(":")[0]) for bb, st, iv in results]
    return Verdict(
        overall,
        detail,
        rule + "; decided by the 95 % Welch interval of the difference (straddling the boundary = inconclusive)",
        compared[0] if len(compared) == 1 else None,
        compared,
    )


@dataclass
class Leaderboard:
    suite: str
    task: str
    dataset: str
    group: str
    protocol: dict
    overrides: dict
    rows: pd.DataFrame
    columns: list = field(default_factory=list)
    records: list = field(default_factory=list)  # the same rows, in the same order, as plain dicts (None: missing)
    references: list = field(default_factory=list)
    claims: list = field(default_factory=list)
    devices: list = field(default_factory=list)
    smoke: bool = False
    setting: str = "shared"  # document | shared | shortened: what this leaderboard's runs are
    setting_tag: str = "shared"  # with the tier's name when shortened to a declared tier
    device: str = ""  # the one device (env.device) every run of this leaderboard was measured on
    device_split: bool = False  # the suite's runs under this protocol were split over several devices


AGG_FIELDS = [
    "params_learned",
    "params_fixed",
    "params_total",
    "macs",
    "train_s",
    "warmup_epoch_s",
    "epoch_s",
    "throughput",
    "throughput_spread",
    "latency_ms",
    "latency_spread",
    "to_threshold_s",
    "to_threshold_macs",
    "train_macs",
]


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
    from bench.identity import run_id

    # (suite, overrides json) -> {(family, backbone name): [spec dicts]}: keyed by what a row's id cannot lose
    # (a relabelled row keeps its id, so the label is not part of the key)
    rows_of: dict[tuple, dict | None] = {}

    def row_specs(name: str, ov_json: str) -> dict | None:
        key = (name, ov_json)
        if key not in rows_of:
            suite, ov = suites[name], json.loads(ov_json)
            found: dict[tuple, list] = {}
            for tier in [None] + [t["name"] for t in getattr(suite, "tiers", None) or []]:
                try:
                    specs = suite.expand(overrides=ov, seeds=[0], tier=tier)
                except (BenchError, KeyError, TypeError):
                    continue
                for sp in specs:
                    found.setdefault((sp.layer.get("name"), sp.backbone.get("name")), []).append(sp.to_dict())
            rows_of[key] = found
        return rows_of[key]

    from bench.catalog import catalog

    LAYERS = catalog().layers
    out = {}
    for r in records:
        spec = r.get("spec") or {}
        name = (r.get("suite") or {}).get("name")
        if name not in suites:
            continue
        if (spec.get("layer") or {}).get("name") not in LAYERS:
            continue  # a plug-in family not loaded for this report (bench report --layers FILE): unknown, not stale
        found = row_specs(name, json.dumps(spec.get("overrides") or {}, sort_keys=True))
        seed = int(spec.get("seed", 0))
        candidates = found.get((spec["layer"].get("name"), (spec.get("backbone") or {}).get("name")), [])
        if not any(run_id(dict(c, seed=seed)) == r["id"] for c in candidates):
            out[r["id"]] = (
                f"{r.get('_path') or r['id']}: superseded by the current suite {name!r} "
                f"(row {r.get('label')!r}, seed {spec.get('seed')}: the suite file now gives this "
                f"run another id)"
            )
    return out


def leaderboards(
    runs: pd.DataFrame, records: list[dict], suites: dict, tasks, stale: dict | set | None = None
) -> list[Leaderboard]:
    """Group runs into leaderboards (suite × task × data set × protocol) with per-row aggregates. Records in
    ``stale`` (default: :func:`stale_records`) are left out of every aggregate."""
    out = []
    if runs.empty:
        return out
    if stale is None:
        stale = stale_records(records, suites)
    if stale:
        runs = runs[~runs["id"].isin(list(stale))]
        if runs.empty:
            return out
    by_id = {r["id"]: r for r in records}
    # one device per table: records measured on different devices (env.device) never share a leaderboard
    runs = runs.assign(device_key=runs["device"].fillna("unknown device") if "device" in runs else "unknown device")
    n_devices = runs.groupby(["suite", "group"])["device_key"].nunique().to_dict()
    for (suite, group, device), df in runs.groupby(["suite", "group", "device_key"], sort=True):
        df = newest_per_seed(df)
        first = by_id[df["id"].iloc[0]]["spec"]
        suite_info = suites.get(suite)
        task_name = first["task"]["name"]
        task = tasks.get(task_name) if task_name in tasks else None
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
        for r in (run_row(by_id[i]) for i in df["id"]):  # DataFrame.to_dict costs a pandas call per column
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
            row["noisy"] = any(
                v > NOISY_SPREAD for c in ("throughput_spread", "latency_spread") for v in present(good, c)
            )
            agg_rows.append(row)
        rows = pd.DataFrame(agg_rows)
        primary = f"m:{task.primary}" if task else (metric_cols[0] if metric_cols else None)
        comparable = True  # the setting gate (_gate, classify_setting) decides what may be compared
        refs, claims = [], []
        if suite_info is not None:
            row_recs = agg_rows  # the same rows as plain dicts (every one has every column)
            for ref in suite_info.references:
                match = [
                    r
                    for r in row_recs
                    if r["label"] == ref["row"] and (not ref["backbone"] or r["backbone"] == ref["backbone"])
                ]
                metric = f"m:{ref['metric']}"
                mean = std = None
                n = 0
                if match and metric + ":mean" in match[0]:
                    best = match[0]
                    mean, std, n = best[metric + ":mean"], best.get(metric + ":std"), int(best["n"])
                    if _missing(mean):
                        mean = None
                setting = classify_setting(suite_info, first["protocol"], ref.get("epochs"))
                if setting.other_epochs:
                    v = Verdict(
                        "not yet run",
                        f"no run at the number's {ref.get('epochs') or 'protocol'} epochs "
                        f"(this leaderboard: {setting.epochs})",
                    )
                    mean = std = None
                    n = 0
                else:
                    blocked = (
                        _gate(setting, [match[0]], ref["metric"], ("document",)) if mean is not None and match else None
                    )
                    v = reference_verdict(ref, mean, std, n, comparable, blocked)
                refs.append(
                    {
                        **ref,
                        "setting_text": ref["setting"],
                        "setting": setting.kind,
                        "tier": setting.tier,
                        "setting_tag": setting.tag,
                        "measured": mean,
                        "measured_std": std,
                        "n": n,
                        "diff": (mean - ref["value"]) if mean is not None else None,
                        "verdict": v.status,
                        "verdict_detail": v.detail,
                        "tolerance_text": v.tolerance,
                        "interval": v.interval,
                        "interval_half": (v.interval or {}).get("half"),
                        "deviations": deviation_chips(
                            list(getattr(suite_info, "deviations", []) or []) + list(ref.get("deviations") or [])
                        ),
                    }
                )
            for claim in suite_info.claims:
                setting = classify_setting(suite_info, first["protocol"], claim["check"].get("epochs"))
                if setting.other_epochs:
                    v = Verdict(
                        "not yet run",
                        f"no run at the claim's {claim['check'].get('epochs') or 'protocol'} "
                        f"epochs (this leaderboard: {setting.epochs})",
                    )
                else:
                    v = claim_verdict(claim, row_recs, setting)
                claims.append(
                    {
                        **claim,
                        "verdict": v.status,
                        "verdict_detail": v.detail,
                        "rule": v.tolerance,
                        "comparable": setting.kind == "document",
                        "setting": setting.kind,
                        "tier": setting.tier,
                        "setting_tag": setting.tag,
                        "interval": v.interval,
                        "compared": v.compared,
                        "deviations": deviation_chips(
                            list(getattr(suite_info, "deviations", []) or []) + list(claim.get("deviations") or [])
                        ),
                    }
                )
        if primary and primary + ":mean" in rows:
            rows = rows.sort_values(primary + ":mean", ascending=False, na_position="last")
        row_dicts = [agg_rows[i] for i in rows.index]  # pandas' to_dict costs a call per column and row
        smoke = bool(task and first["dataset"]["name"] in getattr(task, "smoke_datasets", ()))
        # the leaderboard's own setting: at epochs a reference or claim names (003 Table 1's 1-epoch column),
        # a run of fewer epochs than the suite protocol is that document setting, not a shortened one
        named = {r.get("epochs") for r in (suite_info.references if suite_info else [])} | {
            c["check"].get("epochs") for c in (suite_info.claims if suite_info else [])
        }
        epochs = first["protocol"].get("epochs")
        board_setting = classify_setting(suite_info, first["protocol"], epochs if epochs in named else None)
        out.append(
            Leaderboard(
                suite=suite,
                task=task_name,
                dataset=first["dataset"]["name"],
                group=group,
                protocol=first["protocol"],
                overrides=first.get("overrides", {}),
                rows=rows,
                records=row_dicts,
                columns=list(task.columns) if task else [],
                references=refs,
                claims=claims,
                devices=sorted(ok["device"].dropna().unique().tolist()),
                smoke=smoke,
                device=device,
                device_split=n_devices.get((suite, group), 1) > 1,
                setting=board_setting.kind,
                setting_tag=board_setting.tag,
            )
        )
    return out


def fmt_pm(mean, std, fmt=".2f"):
    return _fmt_pm(mean, std, fmt)
