"""Tasks: what a run does with a (backbone, layer family) pair.

A task is registered with ``@TASKS.register(name, columns=[...], primary="metric")`` on a function
``run(spec: RunSpec, ctx: RunContext, *, option=default, ...) -> dict``. The returned dict holds ``metrics``
(flat name → number), and optionally ``history`` (per-epoch dicts), ``params``, ``macs``, ``timing``,
``memory`` and ``artifacts``; the runner adds provenance and writes the record.

``columns`` lists the metrics the leaderboard shows: ``(key, label, higher_is_better, format)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from bench.registry import Entry, Registry


@dataclass(frozen=True)
class TaskEntry(Entry):
    document: str = ""
    columns: tuple = ()
    primary: str = "top1"
    # the site shows rows of data sets listed here as "not yet run on real data"
    smoke_datasets: tuple = ()
    # every metric the task's records may carry (fnmatch patterns): what a suite's references and claims
    # may name (bench/bindings.py); the leaderboard columns are always included
    metrics: tuple = ()
    # what the task needs its backbone to be (bench.backbones.Backbone.provides); checked when a suite loads
    needs: str = "classifier"

    def emits(self, metric: str) -> bool:
        from bench.bindings import emits

        return emits(self, metric)


TASKS: Registry[TaskEntry] = Registry("task", "bench.tasks", TaskEntry)


@dataclass
class RunContext:
    device: torch.device
    allow_download: bool = False
    progress: bool = True
    data_cache: dict = field(default_factory=dict)  # data loaded once per process, shared by runs
    extra: dict[str, Any] = field(default_factory=dict)

    def dataset(self, spec) -> Any:
        from bench.datasets import load_dataset

        key = (spec.dataset["name"], spec.data_root, repr(sorted(spec.dataset.get("options", {}).items())))
        if key not in self.data_cache:
            self.data_cache[key] = load_dataset(spec.dataset["name"], spec.data_root, self.allow_download,
                                                spec.dataset.get("options"))
        return self.data_cache[key]
