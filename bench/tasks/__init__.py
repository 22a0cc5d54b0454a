"""Tasks: what a run does with a (backbone, layer family) pair.

A task is registered with ``@TASKS.register(name, columns=[...], primary="metric")`` on a function
``run(spec: RunSpec, ctx: RunContext, *, option=default, ...) -> dict``. The returned dict holds ``metrics``
(flat name → number), and optionally ``history`` (per-epoch dicts), ``params``, ``macs``, ``timing``,
``memory`` and ``artifacts``; the runner adds provenance and writes the record.

``columns`` lists the metrics the leaderboard shows: ``(key, label, higher_is_better, format)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import torch

from bench.zoo.registry import Entry, Registry


@dataclass(frozen=True)
class TaskEntry(Entry):
    document: str = ""
    columns: tuple = ()
    primary: str = "top1"
    # the site shows rows of data sets listed here as "not yet run on real data"
    smoke_datasets: tuple = ()
    # every metric the task's records may carry (fnmatch patterns): what a suite's references and claims
    # may name (bench/spec/bindings.py); the leaderboard columns are always included
    metrics: tuple = ()
    # what the task needs its backbone to be (bench.zoo.backbones.Backbone.provides); checked when a suite loads
    needs: str = "classifier"

    def emits(self, metric: str) -> bool:
        from bench.spec.bindings import emits

        return emits(self, metric)


TASKS: Registry[TaskEntry] = Registry("task", "bench.tasks", TaskEntry)


@dataclass(frozen=True)
class RunContext:
    """What a task's ``run(spec, ctx)`` may read besides its spec. Frozen: no field can be changed and no other
    attribute set (``dataclasses.FrozenInstanceError``; not ``slots=True`` as well: on Python 3.11 a frozen
    class with slots answers an unknown attribute with a TypeError), so a context shared by many runs stays as
    its executor built it; what differs per run (where its artifacts go) is a context of its own,
    :meth:`for_run` (``dataclasses.replace``). Only ``data_cache`` is shared and filled: data loaded once per
    process."""

    device: torch.device
    allow_download: bool = False
    progress: bool = True
    data_cache: dict = field(default_factory=dict)  # data loaded once per process, shared by runs
    # command-line choices that do not change what a run computes (not in its id), kept in every record
    invocation: dict = field(default_factory=dict)
    # where and how runs were trained (shard, executor): added to every record's provenance, not its id
    provenance: dict = field(default_factory=dict)
    compile: bool = False  # --compile: torch.compile the model (classification)
    tune: bool = False  # --tune: a few timed warm-up steps pick the fastest kernels (classification)
    fold: bool = True  # not --no-fold: layers train through their folded speed paths where they pay (every task)
    wait_elsewhere: bool = True  # come back to runs another process holds, waiting on their lock (not --no-wait)
    # one run's folders: set by for_run(), None on the context an executor shares between runs
    results_dir: Path | None = None  # the results folder (artifact paths in a record are relative to it)
    artifact_dir: Path | None = None  # <results>/<suite>/artifacts/<run id>: this run's files

    def for_run(self, results, spec) -> "RunContext":
        """The context of one run of ``spec`` writing under ``results``: this one with that run's folders."""
        results = Path(results)
        return replace(self, results_dir=results, artifact_dir=results / spec.suite / "artifacts" / spec.id)

    @property
    def extra(self) -> Mapping[str, Any]:
        """Read-only view under the keys of the former ``extra`` dict (before the typed fields above), for
        plug-in tasks that still read ``ctx.extra.get(...)``; it cannot be written to."""
        view = {"invocation": self.invocation, "provenance": self.provenance, "wait_elsewhere": self.wait_elsewhere}
        view.update({k: True for k in ("compile", "tune") if getattr(self, k)})
        view.update({k: getattr(self, k) for k in ("results_dir", "artifact_dir") if getattr(self, k) is not None})
        return MappingProxyType(view)

    def dataset(self, spec) -> Any:
        from bench.zoo.datasets import load_dataset

        key = (spec.dataset["name"], spec.data_root, repr(sorted(spec.dataset.get("options", {}).items())))
        if key not in self.data_cache:
            self.data_cache[key] = load_dataset(
                spec.dataset["name"], spec.data_root, self.allow_download, spec.dataset.get("options")
            )
        return self.data_cache[key]
