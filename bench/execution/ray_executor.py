"""The Ray executor (``bench run --executor ray``): runs placed by Ray on a local or running cluster, each through
the same claim → run → record protocol (:func:`bench.execution.executors.run_ray`)."""

from __future__ import annotations

from pathlib import Path

from bench.errors import SpecError
from bench.execution.executors import Launch, Policy, register_executor, run_ray


@register_executor("ray", "runs placed by Ray (--address, --cpus-per-run, --gpus-per-run)")
def run_ray_launch(launch: Launch) -> dict:
    import torch

    if launch.jobs > 1:
        raise SpecError(
            "command line",
            "--jobs",
            "runs N local processes; with --executor ray, Ray places the runs (--cpus-per-run, --gpus-per-run)",
        )
    gpus = launch.gpus_per_run if launch.gpus_per_run is not None else (1.0 if torch.cuda.is_available() else 0.0)
    if gpus < 0 or launch.cpus_per_run <= 0:
        raise SpecError("command line", "--gpus-per-run/--cpus-per-run", "must be positive")
    ctx = launch.ctx
    setup = {
        "layer_files": [str(Path(f).resolve()) for f in launch.layer_files],
        "threads": launch.threads,
        "device": launch.device,
        "allow_download": launch.allow_download,
        "invocation": ctx.invocation,
        "provenance": ctx.provenance,
        "options": {"compile": ctx.compile, "tune": ctx.tune, "fold": ctx.fold},
    }
    policy = Policy(force=launch.force, retry_failed=launch.retry_failed).baseline(launch.results, launch.specs)
    return run_ray(
        launch.suite,
        launch.specs,
        launch.results,
        setup,
        policy,
        address=launch.address,
        cpus_per_run=launch.cpus_per_run,
        gpus_per_run=gpus,
        local_cpus=launch.ray_cpus,
        max_failures=launch.max_failures,
    )
