"""Suite files (YAML): which task, data set, backbones and layer families to run, under which protocol,
with which seeds, and the document numbers each row is compared with. ``Suite.expand()`` turns a suite into
run specs; a run is identified by the hash of its resolved spec.

Data flows one way: suite → run specs (here) → runs (:mod:`bench.execution.runner`) → records (:mod:`bench.records.records`)
→ tables (:mod:`bench.report.tables`) → site (:mod:`bench.report.site`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.spec.bindings import check_bindings, check_comment_truncation
from bench.zoo.catalog import Catalog, Kind, catalog
from bench.errors import SpecError
from bench.spec.identity import canonical_parts, id_with_seed, legacy_id_v1, run_id
from bench.records.records import SAFE_NAME
from bench.zoo.registry import merge_options
from bench.report.verdicts import DEFAULT_TOLERANCE, DEVIATIONS, check_deviation
from bench.spec.schema import ANY_MAPPING, REQUIRED, F, check_options, option_error, validate, validate_mapping

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "triangle")
AUGMENTS = ("crop", "flip", "flip-alternate")
TTAS = (None, "flip", "flip-translate")


def _one_of(choices):
    return lambda v: None if v in choices else f"must be one of {', '.join(map(str, choices))}, not {v!r}"


def _positive(v):
    return None if v is None or v > 0 else f"must be positive, got {v}"


def _unit(v):
    return None if v is None or 0 <= v <= 1 else f"must be in [0, 1], got {v}"


def _open_unit(v):
    return None if v is None or 0 < v < 1 else f"must be in (0, 1), got {v}"


MAX_EPOCHS = 10_000  # a sane upper bound: more is a typo, not a protocol
MAX_BATCH = 1 << 20  # images per batch
MAX_IMAGES = 10**9  # subsets and batches per epoch
MAX_PADDING = 256  # pixels of crop padding


def _between(lo, hi, lo_open: bool = False, hi_open: bool = False):
    """A check that a number (or None) lies in [lo, hi] (open ends as asked)."""

    def check(v):
        if v is None:
            return None
        below = v <= lo if lo_open else v < lo
        above = v >= hi if hi_open else v > hi
        if below or above:
            return f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}, got {v}"
        return None

    return check


def _at_most(limit):
    """Positive and at most ``limit`` (None passes)."""
    return lambda v: _positive(v) or (None if v is None or v <= limit else f"must be at most {limit}, got {v}")


def _epochs(v):
    return _positive(v) or (None if v <= MAX_EPOCHS else f"must be at most {MAX_EPOCHS}, got {v}")


def _safe_name(v):
    """Suite names and row labels name files: one path component of letters, digits, ``_ . + -``."""
    if v is None or SAFE_NAME.fullmatch(v):
        return None
    return (
        f"{v!r:.60} is not a safe name: use 1-64 letters, digits, '_', '.', '+' or '-', starting with a letter "
        f"or digit (a row's free-text title goes in 'display')"
    )


NAMED = {"name": F((str,), REQUIRED), "options": F((dict,), dict, schema=ANY_MAPPING)}

PROTOCOL = {
    "name": F((str,), "default", doc="name of the protocol, shown on the site"),
    "description": F((str,), ""),
    "epochs": F((int,), REQUIRED, check=_epochs),
    "batch_size": F((int,), 128, check=_at_most(MAX_BATCH)),
    "eval_batch_size": F((int,), 1000, check=_at_most(MAX_BATCH)),
    "optimizer": F(
        (dict,),
        lambda: {"name": "sgd"},
        schema={
            "name": F((str,), "sgd", check=_one_of(OPTIMIZERS)),
            "lr": F((float,), 0.1, check=_between(0, 1e3, lo_open=True)),
            "momentum": F((float,), 0.9, check=_between(0, 1)),
            "nesterov": F((bool,), True),
            "weight_decay": F((float,), 5e-4, check=_between(0, 1)),
            "betas": F(
                (list,),
                None,
                items=F((float,), check=_between(0, 1, hi_open=True)),
                check=lambda v: None if v is None or len(v) == 2 else f"must be two numbers, got {len(v)}",
            ),
            "norm_lr_scale": F(
                (float, type(None)),
                None,
                check=_between(0, 1e6, lo_open=True),
                doc="learning rate × s and weight decay ÷ s for normalisation layers' parameters",
            ),
        },
    ),
    "schedule": F(
        (dict,),
        lambda: {"name": "cosine"},
        schema={
            "name": F((str,), "cosine", check=_one_of(SCHEDULES)),
            "milestones": F((list,), list, items=F((int,), check=_epochs)),
            "gamma": F((float,), 0.1, check=_between(0, 1e3, lo_open=True)),
            "warmup_epochs": F((float,), 0.0, check=_between(0, MAX_EPOCHS)),
            # triangle: lr factor from `start` up to 1 at fraction `peak` of the steps, then linearly to `end`
            "start": F((float, type(None)), None, check=_unit),
            "peak": F((float, type(None)), None, check=_open_unit),
            "end": F((float, type(None)), None, check=_unit),
        },
    ),
    "augment": F((list,), lambda: ["crop", "flip"], items=F((str,), check=_one_of(AUGMENTS))),
    "crop_padding": F((int,), 4, check=_between(0, MAX_PADDING)),
    "label_smoothing": F((float,), 0.0, check=_between(0, 1, hi_open=True)),
    "train_subset": F((int, type(None)), None, check=_at_most(MAX_IMAGES)),
    "test_subset": F((int, type(None)), None, check=_at_most(MAX_IMAGES)),
    "max_batches": F(
        (int, type(None)), None, check=_at_most(MAX_IMAGES), doc="cap on training batches per epoch (smoke runs)"
    ),
    "threshold": F(
        (float, type(None)), None, check=_between(0, 100), doc="accuracy (%) whose time-to-reach is recorded"
    ),
    # options added later: left out of the protocol (so out of every run id) while unset, see OPTIONAL_PROTOCOL
    "ema": F(
        (dict, type(None)),
        None,
        schema={
            "decay": F((float,), 0.999, check=lambda v: None if 0 < v < 1 else f"must be in (0, 1), got {v}"),
            "warmup": F((bool,), True, doc="effective decay min(decay, (1 + t) / (10 + t)) at step t"),
        },
        doc="exponential moving average of the weights (and buffers), used for every evaluation",
    ),
    "tta": F(
        (str, type(None)),
        None,
        check=_one_of(TTAS),
        doc="test-time augmentation: 'flip' averages the logits of each image and its mirror; "
        "'flip-translate' also those of the image shifted by one pixel (six views)",
    ),
    "lookahead": F(
        (dict, type(None)),
        None,
        schema={
            "every": F((int,), 5, check=_positive),
            "decay": F((float,), 0.95, check=lambda v: None if 0 < v < 1 else f"must be in (0, 1), got {v}"),
        },
        doc="lookahead averaging of the live weights (bench.execution.train.Lookahead)",
    ),
    "eval_epochs": F(
        (list, type(None)),
        None,
        items=F((int,), check=_epochs),
        doc="epochs after which the test set is evaluated (the last always is); default every epoch",
    ),
    "precision": F(
        (str, type(None)),
        None,
        check=_one_of((None, "fp32", "bf16")),
        doc="'bf16': bf16 autocast on CPU and CUDA; 'fp32': none; unset: bf16 on CUDA only",
    ),
    "channels_last": F((bool, type(None)), None, doc="channels_last memory format; unset: on CUDA only"),
}

#: protocol fields that are dropped while unset (None), so suites that do not use them keep their run ids
OPTIONAL_PROTOCOL = ("ema", "tta", "lookahead", "eval_epochs", "precision", "channels_last")
#: the same for fields inside the protocol's optimizer and schedule mappings
OPTIONAL_NESTED = {"optimizer": ("norm_lr_scale",), "schedule": ("start", "peak", "end")}

LAYER_ITEM = {
    "name": F((str,), REQUIRED),
    "options": F((dict,), dict, schema=ANY_MAPPING),
    "label": F((str, type(None)), None, check=_safe_name),
    "display": F((str, type(None)), None, doc="the row's name as shown on the site, free text (default: label)"),
    "stem": F(
        (str, type(None)),
        None,
        check=lambda v: (
            None
            if v in (None, "conv", "family", "frozen-conv")
            else f"must be 'family', 'conv' or 'frozen-conv', not {v!r}"
        ),
    ),
}

REFERENCE = {
    "row": F((str,), REQUIRED, doc="layer label the number belongs to"),
    "backbone": F((str, type(None)), None),
    "metric": F((str,), "top1"),
    "value": F((float,), REQUIRED),
    "std": F((float, type(None)), None),
    "document": F((str,), REQUIRED),
    "where": F((str,), REQUIRED, doc="table or figure, row and column"),
    "setting": F((str,), REQUIRED),
    "source": F((str,), "paper", check=_one_of(("paper", "reproduction", "code"))),
    "note": F((str,), ""),
    "epochs": F(
        (int, type(None)),
        None,
        check=_positive,
        doc="epochs of the document's setting for this number (default: the suite protocol's)",
    ),
    # verdict fields (bench.report.verdicts): not part of any run id (references never are)
    "tolerance": F(
        (float,),
        DEFAULT_TOLERANCE,
        check=lambda v: None if v >= 0 else f"must be >= 0, got {v}",
        doc="points the measured 95 % interval is widened by before the verdict; fixed before the runs",
    ),
    "runs": F(
        (int, type(None)),
        None,
        check=_positive,
        doc="how many runs the document's std is over (its standard error is std / sqrt(runs))",
    ),
    "deviations": F(
        (list,),
        list,
        items=F((str, dict), check=check_deviation),
        doc="deviations from the document: " + ", ".join(DEVIATIONS) + " ({kind: other, text: ...})",
    ),
}

# A number a document quotes that no row of the suite can produce (another method's result, a network or
# data set not built here): shown beside the leaderboard for orientation, never compared, no verdict.
CONTEXT = {
    "label": F((str,), REQUIRED, doc="what the number is, e.g. 'Maxout (Goodfellow et al.)'"),
    "metric": F((str,), "top1"),
    "value": F((float,), REQUIRED),
    "document": F((str,), REQUIRED),
    "where": F((str,), REQUIRED),
    "setting": F((str,), ""),
    "note": F((str,), ""),
}

TIER = {
    "name": F((str,), REQUIRED),
    "description": F((str,), ""),
    "overrides": F((dict,), REQUIRED, schema=ANY_MAPPING, doc="command-line overrides that make this tier"),
    "task_options": F(
        (dict,),
        dict,
        schema=ANY_MAPPING,
        doc="task options this tier runs with (e.g. a smaller attack subset); "
        "bench run --tier NAME applies them with the overrides",
    ),
}

CLAIM = {
    "id": F((str,), REQUIRED),
    "text": F((str,), REQUIRED),
    "document": F((str,), REQUIRED),
    "where": F((str,), REQUIRED),
    "check": F(
        (dict,),
        REQUIRED,
        schema={
            "metric": F((str,), "top1"),
            "a": F((str,), REQUIRED),
            "b": F((str,), REQUIRED),
            "op": F((str,), REQUIRED, check=_one_of(("within", "above", "below"))),
            "points": F((float,), REQUIRED),
            "backbone": F((str, type(None)), None),
            "epochs": F((int, type(None)), None, check=_positive),
        },
    ),
    "deviations": F(
        (list,),
        list,
        items=F((str, dict), check=check_deviation),
        doc="deviations from the document: " + ", ".join(DEVIATIONS) + " ({kind: other, text: ...})",
    ),
}

SUITE = {
    "name": F((str,), None),
    "description": F((str,), ""),
    "task": F((str, dict), REQUIRED),
    "dataset": F((str, dict), REQUIRED),
    "protocol": F((dict,), REQUIRED, schema=PROTOCOL),
    "backbones": F((list,), REQUIRED, items=F((str, dict))),
    "layers": F(
        (str, list),
        "all",
        items=F((str, dict)),
        doc="'all' (every registered family, plug-ins included) or a list of rows",
    ),
    "layer_options": F(
        (dict,),
        dict,
        schema={"*": F((dict,), schema=ANY_MAPPING)},
        doc="with layers: all, options per family name, e.g. {pnn: {fanout: 1}}",
    ),
    "seeds": F(
        (list,), lambda: [0], items=F((int,), check=lambda v: None if v >= 0 else f"must be non-negative, got {v}")
    ),
    "references": F((list,), list, items=F((dict,), schema=REFERENCE)),
    "claims": F((list,), list, items=F((dict,), schema=CLAIM)),
    "context": F((list,), list, items=F((dict,), schema=CONTEXT)),
    "notes": F((list,), list, items=F((str,))),
    # what the suite's own protocol is: the document's ("document": its protocol and data) or the harness's
    # shared protocol on full data ("shared"); protocols with subsets are "shortened" whatever this says
    "setting": F((str,), "shared", check=_one_of(("document", "shared"))),
    # declared shortened tiers (e.g. CPU-sized overrides): verdicts from them carry the tier's tag
    "tiers": F((list,), list, items=F((dict,), schema=TIER)),
    # deviations from the documents that hold for every reference and claim of the suite (each adds its own)
    "deviations": F(
        (list,),
        list,
        items=F((str, dict), check=check_deviation),
        doc="deviations of every reference and claim: " + ", ".join(DEVIATIONS),
    ),
}

# Fields the command line may override; the record keeps what was overridden.
OVERRIDABLE = ("epochs", "train_subset", "test_subset", "max_batches", "batch_size")


def check_overrides(overrides: dict, path: str, where: str) -> dict:
    """``overrides`` validated field by field through the protocol's own schema (types, finiteness, ranges):
    a tier's ``epochs: -5`` or ``max_batches: 0`` is refused as the protocol would refuse it. One SpecError
    naming ``where.key``; unknown or not overridable keys are refused too."""
    for key in overrides:
        if key not in OVERRIDABLE:
            raise SpecError(
                path,
                f"{where}.{key}" if where else key,
                f"not an overridable field (allowed: {', '.join(OVERRIDABLE)})",
            )
    schema = {
        k: F(tuple(t for t in PROTOCOL[k].types if t is not type(None)), None, check=PROTOCOL[k].check)
        for k in OVERRIDABLE
    }
    return {k: validate(v, schema[k], path, f"{where}.{k}" if where else k) for k, v in overrides.items()}


@dataclass
class RunSpec:
    """A run: what it computes and where it is listed. ``id`` is :func:`bench.spec.identity.run_id` of
    :meth:`to_dict` (only what changes the result); :meth:`identity` is the stored spec without ``data_root``."""

    suite: str
    task: dict
    dataset: dict
    backbone: dict
    layer: dict
    protocol: dict
    seed: int
    overrides: dict = field(default_factory=dict)
    data_root: str | None = None  # where the data came from: not part of the identity

    def identity(self) -> dict:
        return {
            "suite": self.suite,
            "task": self.task,
            "dataset": self.dataset,
            "backbone": self.backbone,
            "layer": self.layer,
            "protocol": self.protocol,
            "seed": self.seed,
            "overrides": self.overrides,
        }

    @property
    def id(self) -> str:
        return run_id(self.to_dict())

    @property
    def legacy_id(self) -> str:
        """The id identity version 1 gave this run (records written before ``bench.spec.identity``)."""
        return legacy_id_v1(self.to_dict())

    @property
    def label(self) -> str:
        return self.layer["label"]

    @property
    def filename(self) -> str:
        return f"{self.slug}--{self.id}.json"

    @property
    def legacy_filename(self) -> str:
        return f"{self.slug}--{self.legacy_id}.json"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.backbone['name']}--{self.label}--s{self.seed}")[:80]

    def to_dict(self) -> dict:
        d = self.identity()
        d["data_root"] = self.data_root
        return d


@dataclass
class Suite:
    path: Path
    name: str
    description: str
    task: dict
    dataset: dict
    protocol: dict
    backbones: list[dict]
    layers: list[dict]
    seeds: list[int]
    references: list[dict]
    claims: list[dict]
    notes: list[str]
    sha256: str
    context: list[dict] = field(default_factory=list)
    setting: str = "shared"
    tiers: list[dict] = field(default_factory=list)
    deviations: list = field(default_factory=list)
    # (overrides json, tier) -> one seed's runs with their id parts: see :meth:`seed_parts`
    _parts_memo: dict = field(default_factory=dict, repr=False, compare=False)

    def seed_parts(self, overrides: dict | None = None, tier: str | None = None) -> list[tuple[RunSpec, tuple]]:
        """One seed's runs (seed 0), each with its id parts (:func:`bench.spec.identity.canonical_parts`).
        An expansion differs from seed to seed only in ``seed``, so these give the id of every run of any seeds
        (:func:`~bench.spec.identity.id_with_seed`) from one expansion; kept per (overrides, tier), so the
        report's readers (stale records, document costs) share it. Raises what :meth:`expand` raises."""
        key = (json.dumps(overrides or {}, sort_keys=True, default=str), tier)
        if key not in self._parts_memo:
            specs = self.expand(overrides=overrides, seeds=[0], tier=tier)
            self._parts_memo[key] = [(sp, canonical_parts(sp.to_dict())) for sp in specs]
        return self._parts_memo[key]

    def default_run_ids(self) -> list[tuple[RunSpec, str]]:
        """``(run, id)`` for every run of the suite's default seeds, no tier: the runs of :meth:`seed_parts`
        (seed 0's specs: backbone, layer and protocol are those of every seed) with each seed's id."""
        return [(sp, id_with_seed(parts, seed)) for seed in self.seeds for sp, parts in self.seed_parts()]

    def tier(self, name: str) -> dict:
        """The declared tier ``name`` (SpecError naming the suite file and ``tiers`` if there is none)."""
        for t in self.tiers:
            if t["name"] == name:
                return t
        known = ", ".join(t["name"] for t in self.tiers) or "none declared"
        raise SpecError(self.path, "tiers", f"no tier {name!r} (known: {known})")

    def expand(
        self,
        overrides: dict | None = None,
        seeds: list[int] | None = None,
        data_root: str | None = None,
        tier: str | None = None,
    ) -> list[RunSpec]:
        """Run specs for every (seed, backbone, layer). ``tier``: a declared tier whose overrides and task
        options apply (explicit ``overrides`` may not contradict it)."""
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        for key in overrides:
            if key not in OVERRIDABLE:
                raise SpecError("command line", key, f"cannot be overridden (allowed: {', '.join(OVERRIDABLE)})")
        check_overrides(overrides, "command line", "")
        task = copy.deepcopy(self.task)
        if tier is not None:
            declared = self.tier(tier)
            for key, value in overrides.items():
                if key in declared["overrides"] and declared["overrides"][key] != value:
                    raise SpecError(
                        "command line",
                        key,
                        f"{value!r} contradicts tier {tier!r} ({key}: {declared['overrides'][key]!r})",
                    )
            overrides = {**declared["overrides"], **overrides}
            task["options"] = {**task.get("options", {}), **declared["task_options"]}
        protocol = copy.deepcopy(self.protocol)
        protocol.update(overrides)
        dataset = {k: v for k, v in self.dataset.items() if k != "root"}
        specs = []
        for seed in seeds if seeds is not None else self.seeds:
            for backbone in self.backbones:
                for layer in self.layers:
                    specs.append(
                        RunSpec(
                            self.name,
                            copy.deepcopy(task),
                            copy.deepcopy(dataset),
                            copy.deepcopy(backbone),
                            copy.deepcopy(layer),
                            copy.deepcopy(protocol),
                            int(seed),
                            dict(overrides),
                            data_root=data_root or self.dataset.get("root"),
                        )
                    )
        seen: dict[str, RunSpec] = {}
        for spec in specs:  # run ids hash only what changes a result: two rows that differ in name only collide
            other = seen.setdefault(spec.id, spec)
            if other is not spec:
                raise SpecError(
                    self.path,
                    "layers",
                    f"rows {other.label!r} and {spec.label!r} are the same run "
                    f"(backbone {spec.backbone['name']}, seed {spec.seed}): they differ only in "
                    "name; give one other options or drop it",
                )
        return specs


def _drop_unset(protocol: dict) -> dict:
    """The protocol without its optional fields that are unset, so suites written before a field existed keep
    their run ids."""
    out = {k: v for k, v in protocol.items() if not (k in OPTIONAL_PROTOCOL and v is None)}
    for key, names in OPTIONAL_NESTED.items():
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if not (k in names and v is None)}
    return out


def _named(value: Any, kind: Kind, path: str, where: str, extra: dict | None = None) -> dict:
    """Normalise ``name`` or ``{name, options}`` and check the name and options against a catalog kind."""
    if isinstance(value, str):
        value = {"name": value}
    value = validate_mapping(value, {**NAMED, **(extra or {})}, path, where)
    if value["name"] not in kind:
        raise SpecError(
            path, f"{where}.name", f"unknown {kind.kind} {value['name']!r} (known: {', '.join(kind.names())})"
        )
    _resolve_options(kind, value, path, where)
    return value


def _resolve_options(kind: Kind, item: dict, path: str, where: str) -> None:
    """``item["options"]`` checked (unknown keys first, then types and declared ranges) and merged with the
    entry's defaults, in place."""
    entry = kind.get(item["name"])
    try:
        given, item["options"] = item["options"], merge_options(entry.name, entry.defaults, item["options"])
    except KeyError as exc:
        raise SpecError(path, f"{where}.options", exc.args[0]) from None
    check_options(entry.defaults, entry.ranges, given, path, where)


class _YamlProblem(Exception):
    """A YAML syntax error, as (where, problem), raised without the caller importing yaml."""

    def __init__(self, where: str, problem):
        super().__init__(where, problem)
        self.where, self.problem = where, problem


#: values a suite may hold once its aliases are expanded (the largest committed suite has about 3,000)
MAX_YAML_NODES = 200_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ufffe\uffff]")


def _control_character(text: str) -> str | None:
    """``line N: message`` for the first control character in ``text`` (tab, newline and CR are text), or None."""
    m = _CONTROL.search(text)
    if m is None:
        return None
    line = text.count("\n", 0, m.start()) + 1
    return f"line {line}: control character U+{ord(m.group()):04X} is not allowed"


def _yaml_loader():
    """A safe loader (libyaml when present) that refuses duplicate keys in a mapping: with the last one winning,
    a second ``seeds:`` silently replaced the first. Merge keys (``<<``) may still be overridden explicitly."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: the constructor reports it
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r:.40} (first on line {first.start_mark.line + 1})",
                        key_node.start_mark,
                    )
            return super().construct_mapping(node, deep)

    return Loader


def _check_shape(raw: Any) -> None:
    """Refuse (as _YamlProblem) data that expands past the node budget (an alias bomb), refers to itself (a
    recursive alias) or nests too deep, before anything walks it recursively (validation, json.dumps)."""
    from bench.records.safeio import MAX_DEPTH, depth_error, size_error

    reason = size_error(raw, MAX_YAML_NODES) or depth_error(raw, MAX_DEPTH)
    if reason:
        raise _YamlProblem("yaml", reason)


#: first bytes of a YAML memo file (then the 32-byte digest of key and payload, then the marshal payload)
_MEMO_MAGIC = b"convbench-yaml-memo-2\n"


def _parse_yaml(text: str, use_memo: bool = True) -> Any:
    """Safe-load YAML (libyaml when present: ~10× faster), memoised in ``$BENCH_CACHE/yaml`` by the text's
    checksum: ``bench report`` parses every suite, and building the Python objects was most of that. The memo
    is marshal, so only plain data is memoised (anything else is parsed each time); an unwritable cache or a
    bad memo falls back to parsing. Errors are never memoised; a memo is checked as the parse would be, and
    carries a sha256 of the text's key and of its payload, so an edited, truncated or misplaced memo is not
    used (issue 19, item 6; ``use_memo=False``, as ``bench run`` asks: parse the text, whatever the cache
    holds). The memo folder is kept under :data:`bench.cache.YAML_MAX_BYTES` (least recently used out).
    Duplicate keys, alias bombs, recursive aliases and deep nesting are YAML problems (:func:`_check_shape`)."""
    import marshal
    import sys

    from bench.cache import YAML_MAX_BYTES, cache_root, prune, touch
    from bench.records.records import write_bytes_atomic

    key = hashlib.sha256(f"{sys.version_info[:2]}|{marshal.version}|dupkeys|{text}".encode()).hexdigest()[:32]
    memo = cache_root() / "yaml" / f"{key}.marshal"
    if use_memo:
        try:
            blob = memo.read_bytes()
            head = len(_MEMO_MAGIC)
            digest, payload = blob[head : head + 32], blob[head + 32 :]
            if blob[:head] != _MEMO_MAGIC or hashlib.sha256(key.encode() + payload).digest() != digest:
                raise ValueError("not this text's memo")
            raw = marshal.loads(payload)
        except (OSError, ValueError, EOFError, TypeError):
            pass
        else:
            _check_shape(raw)
            touch(memo)
            return raw
    import yaml  # only when the memo misses: its import is a hundredth of a report

    try:
        raw = yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _YamlProblem(f"line {mark.line + 1}" if mark else "yaml", getattr(exc, "problem", None) or exc) from None
    except RecursionError:
        raise _YamlProblem("yaml", "nested too deeply") from None
    _check_shape(raw)
    try:
        payload = marshal.dumps(raw)
        write_bytes_atomic(memo, _MEMO_MAGIC + hashlib.sha256(key.encode() + payload).digest() + payload, durable=False)
    except (OSError, ValueError):
        pass
    else:
        _MEMO_WRITES[0] += 1
        if _MEMO_WRITES[0] % 32 == 1:  # the first write of a process, then every 32nd: a bound, cheaply kept
            prune(memo.parent, YAML_MAX_BYTES, keep=memo, pattern="*.marshal")
    return raw


_MEMO_WRITES = [0]


def _one_line(message: Any) -> str:
    """A message on one line (PyYAML's span several)."""
    return " ".join(str(message).split())[:300]


def _read_text(path: Path) -> str:
    """A suite file's text: a regular file under the size cap (a FIFO or /dev/zero is refused at once), UTF-8
    (a BOM allowed), without control characters. One SpecError otherwise."""
    from bench.records.safeio import SUITE_MAX_BYTES, Refused, read_regular

    try:
        blob = read_regular(path, SUITE_MAX_BYTES)
    except OSError as exc:
        raise SpecError(path, "", f"cannot read: {exc.strerror or type(exc).__name__}") from None
    except Refused as exc:
        raise SpecError(path, "", f"cannot read: {exc}") from None
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            path, "", f"not UTF-8 text (byte {exc.start}: {blob[exc.start : exc.start + 1]!r}); save the suite as UTF-8"
        ) from None
    text = text.replace("\r\n", "\n")
    bad = _control_character(text)
    if bad:
        where, message = bad.split(": ", 1)
        raise SpecError(path, where, message)
    return text


def load_suite(path: str | Path, use_memo: bool = True, registries: Catalog | None = None) -> Suite:
    """The suite in ``path``, validated against the registries' metadata (``registries``, default
    :func:`bench.zoo.catalog.catalog`: no torch import). ``use_memo=False``: parse the file itself, not the YAML
    memo (what ``bench run`` does: nothing in the cache can change which runs run)."""
    path = Path(path)
    cat = registries or catalog()
    text = _read_text(path)
    try:
        raw = _parse_yaml(text, use_memo)
    except _YamlProblem as exc:
        raise SpecError(path, exc.where, f"invalid YAML: {_one_line(exc.problem)}") from None
    if not isinstance(raw, dict):
        raise SpecError(path, "", "a suite file must be a YAML mapping")
    data = validate_mapping(raw, SUITE, str(path))
    p = str(path)
    task = _named(data["task"], cat.tasks, p, "task")
    dataset = _named(data["dataset"], cat.datasets, p, "dataset", extra={"root": F((str, type(None)), None)})
    backbones = [_named(b, cat.backbones, p, f"backbones[{i}]") for i, b in enumerate(data["backbones"])]
    if not backbones:
        raise SpecError(p, "backbones", "at least one backbone is required")
    task_entry = cat.tasks.get(task["name"])
    needs = task_entry.needs
    for i, b in enumerate(backbones):
        provides = cat.backbones.get(b["name"]).provides
        if needs not in provides:
            fits = ", ".join(e.name for e in cat.backbones if needs in e.provides)
            raise SpecError(
                p,
                f"backbones[{i}]",
                f"{b['name']!r} cannot serve task {task['name']!r} (it needs a "
                f"{needs}; {b['name']} is a {' / '.join(provides)}; backbones that fit: {fits})",
            )

    layers_raw = data["layers"]
    per_family = data["layer_options"]
    if isinstance(layers_raw, str):
        if layers_raw != "all":
            raise SpecError(p, "layers", f"must be 'all' or a list, not {layers_raw!r}")
        for fam in per_family:
            if fam not in cat.layers:
                raise SpecError(
                    p, f"layer_options.{fam}", f"unknown layer family {fam!r} (known: {', '.join(cat.layers.names())})"
                )
        # every registered family (plug-ins from --layers and entry points included), each with its options
        layers_raw = [{"name": n, "options": per_family[n]} if n in per_family else n for n in cat.layers.names()]
    elif per_family:
        raise SpecError(p, "layer_options", "only with 'layers: all' (a list gives each row its own options)")
    if not layers_raw:
        raise SpecError(p, "layers", "at least one layer row is required")
    layers, labels = [], set()
    for i, item in enumerate(layers_raw):
        where = f"layers[{i}]"
        item = validate_mapping({"name": item} if isinstance(item, str) else item, LAYER_ITEM, p, where)
        if item["name"] not in cat.layers:
            raise SpecError(
                p, f"{where}.name", f"unknown layer family {item['name']!r} (known: {', '.join(cat.layers.names())})"
            )
        _resolve_options(cat.layers, item, p, where)
        item["label"] = item["label"] or item["name"]
        if item["display"] is None:
            del item["display"]  # absent unless given: run ids of rows without one stay as they were
        if item["label"] in labels:
            raise SpecError(p, f"{where}.label", f"duplicate row label {item['label']!r}: give each variant a label")
        labels.add(item["label"])
        layers.append(item)

    if not data["seeds"]:
        raise SpecError(p, "seeds", "at least one seed is required")
    check_comment_truncation(text, p)
    check_bindings(
        p, references=data["references"], claims=data["claims"], labels=labels, backbones=backbones, task=task_entry
    )
    for i, tier in enumerate(data["tiers"]):
        check_overrides(tier["overrides"], p, f"tiers[{i}].overrides")
        defaults = task_entry.defaults
        for key, value in tier["task_options"].items():
            if key not in defaults:
                raise SpecError(
                    p,
                    f"tiers[{i}].task_options.{key}",
                    f"unknown option of task {task['name']!r} (known: {', '.join(sorted(defaults)) or 'none'})",
                )
            msg = option_error(defaults[key], task_entry.ranges.get(key), value)
            if msg:
                raise SpecError(p, f"tiers[{i}].task_options.{key}", msg)
    name = data["name"] or path.stem
    bad = _safe_name(name)
    if bad:
        raise SpecError(
            p,
            "name",
            bad.split(" (a row")[0] + ("" if data["name"] else " (taken from the file name: give the suite a 'name:')"),
        )
    return Suite(
        path=path,
        name=name,
        description=data["description"],
        task=task,
        dataset=dataset,
        backbones=backbones,
        layers=layers,
        protocol=_drop_unset(data["protocol"]),
        seeds=list(data["seeds"]),
        references=data["references"],
        claims=data["claims"],
        notes=data["notes"],
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        context=data["context"],
        setting=data["setting"],
        tiers=data["tiers"],
        deviations=data["deviations"],
    )
