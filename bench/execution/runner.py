"""Runs: execute run specs one by one, write one record per run, skip what is already done."""

from __future__ import annotations

from pathlib import Path

from bench.execution.execute import execute  # noqa: F401  (bench.execution.runner.execute: the single-run path, re-exported)
from bench.execution.executors import Launch, Policy, claim_and_run, register_executor
from bench.execution.locks import describe
from bench.spec.suite import RunSpec, Suite
from bench.tasks import RunContext


def run_specs(
    suite: Suite,
    specs: list[RunSpec],
    results: str | Path,
    ctx: RunContext,
    force: bool = False,
    retry_failed: bool = False,
    max_failures: int | None = None,
    log=print,
    policy: Policy | None = None,
) -> dict:
    """Run every spec without a record (or all with ``force``). Returns counts."""
    counts = {"ran": 0, "skipped": 0, "failed": 0}
    bar = None
    if ctx.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), desc=f"suite {suite.name}", unit="run")
    # one run trained once across processes: every run goes through the lock protocol of bench.execution.executors;
    # runs another process is training are come back to at the end (waiting on their lock) or reported
    # which records count as done, by content; with --force the records there now are noted before anything
    # runs, so a peer's record written meanwhile counts as done (bench.execution.executors.Policy)
    policy = (policy or Policy(force=force, retry_failed=retry_failed)).baseline(results, specs)
    wait_elsewhere = ctx.wait_elsewhere
    queue, busy, waiting = list(specs), [], False
    while queue or (busy and wait_elsewhere and not waiting):
        if not queue:
            queue, busy, waiting = busy, [], True
            log(f"waiting for {len(queue)} run(s) running elsewhere")
        spec = queue.pop(0)
        run_ctx = ctx.for_run(results, spec)  # this run's folders, in a context of its own (ctx is shared)
        outcome = claim_and_run(
            spec, results, lambda: execute(spec, run_ctx, suite), policy, wait=waiting, provenance=ctx.provenance
        )
        if outcome.status == "busy":
            busy.append(spec)
            if not wait_elsewhere:
                log(f"{spec.backbone['name']}/{spec.label}/seed {spec.seed}: {describe(outcome.holder)}")
            continue
        if outcome.status == "skipped":
            counts["skipped"] += 1
            if bar is not None:
                bar.update(1)
            continue
        record = outcome.record
        counts["ran"] += 1
        if record["status"] != "ok":
            counts["failed"] += 1
            log(f"run failed: {spec.backbone['name']}/{spec.label}/seed {spec.seed}: {record['error']}")
        elif bar is None:
            log(f"{spec.backbone['name']:>14} {spec.label:<22} seed {spec.seed}: {_summary(record)}")
        if bar is not None:
            bar.set_postfix_str(f"{spec.label}: {_summary(record)}"[:60])
            bar.update(1)
        if max_failures is not None and counts["failed"] >= max_failures:
            log(f"stopping: {counts['failed']} failed runs (--max-failures {max_failures})")
            break
    if bar is not None:
        bar.close()
    if busy:
        counts["elsewhere"] = len(busy)
    return counts


def _summary(record: dict) -> str:
    if record.get("status") != "ok":
        return "failed"
    m = record.get("metrics", {})
    return ", ".join(f"{k}={v:.2f}" for k, v in list(m.items())[:2] if isinstance(v, (int, float)))


@register_executor("local", "one run after another in this process")
def run_local(launch: Launch) -> dict:
    return run_specs(
        launch.suite,
        launch.specs,
        launch.results,
        launch.ctx,
        force=launch.force,
        retry_failed=launch.retry_failed,
        max_failures=launch.max_failures,
    )
