"""Command line: ``bench run``, ``bench report``, ``bench layers``, ``bench list``.

Bad input (suite file, flags, missing data) is one line on stderr naming the file and field, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.errors import BenchError, DataMissing, SpecError


def _int_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own code), without the usage dump
        sys.stderr.write(f"bench: error: {message} (see 'bench {self.prog.split()[-1]} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from bench.tasks import TASKS

    p = _Parser(prog="bench", description="Benchmark harness for alternatives to the convolution layer.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a suite: one record per run under results/<suite>/",
                       description="Run every (seed, backbone, layer) of a suite. Tasks: " + ", ".join(TASKS.names()))
    r.add_argument("suite", help="suite file (YAML), e.g. suites/quick.yaml")
    r.add_argument("--results", default="results", help="records folder (default: results)")
    r.add_argument("--layers", action="append", default=[], metavar="FILE",
                   help="Python file registering extra layer families (repeatable)")
    r.add_argument("--epochs", type=int, help="override protocol.epochs")
    r.add_argument("--train-subset", type=int, help="override protocol.train_subset (images)")
    r.add_argument("--test-subset", type=int, help="override protocol.test_subset (images)")
    r.add_argument("--max-batches", type=int, help="override protocol.max_batches (per epoch)")
    r.add_argument("--batch-size", type=int, help="override protocol.batch_size")
    r.add_argument("--seeds", type=_int_list, help="override seeds, e.g. 0,1,2")
    r.add_argument("--only", action="append", default=[], metavar="LABEL", help="run only these layer rows")
    r.add_argument("--backbone", action="append", default=[], metavar="NAME", help="run only these backbones")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available)")
    r.add_argument("--data-root", default=None, help="data root (default: dataset.root or $BENCH_DATA_ROOT)")
    r.add_argument("--allow-download", action="store_true", default=os.environ.get("BENCH_ALLOW_DOWNLOAD") == "1",
                   help="let torchvision download missing data (or set BENCH_ALLOW_DOWNLOAD=1)")
    r.add_argument("--force", action="store_true", help="rerun runs that already have a record")
    r.add_argument("--retry-failed", action="store_true", help="rerun runs whose record says failed")
    r.add_argument("--max-failures", type=int, default=None, help="stop the suite after this many failed runs")
    r.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done; run nothing")
    r.add_argument("--report", metavar="SITE", default=None, help="build the site into SITE afterwards")

    rep = sub.add_parser("report", help="render the static leaderboard from records")
    rep.add_argument("--results", default="results")
    rep.add_argument("--suites", default="suites", help="folder of suite files (for references and claims)")
    rep.add_argument("--site", default="site", help="output folder")

    lay = sub.add_parser("layers", help="list every registered layer family")
    lay.add_argument("--layers", action="append", default=[], metavar="FILE")
    lay.add_argument("--json", action="store_true")

    sub.add_parser("list", help="list registered backbones, tasks and data sets")
    return p


def cmd_layers(args) -> int:
    from bench.layers import LAYERS

    for f in args.layers:
        LAYERS.load_file(f)
    rows = [{"name": e.name, "document": e.document, "section": e.section, "fixed": e.fixed,
             "learned": e.learned, "defaults": e.defaults, "summary": e.summary, "origin": e.origin} for e in LAYERS]
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    for r in rows:
        opts = ", ".join(f"{k}={v!r}" for k, v in r["defaults"].items()) or "—"
        print(f"{r['name']:<16} doc {r['document']:<6} {r['section']}")
        print(f"{'':<16} {r['summary']}")
        print(f"{'':<16} fixed: {r['fixed']}; learned: {r['learned']}; options: {opts}")
    return 0


def cmd_list(args) -> int:
    from bench.backbones import BACKBONES
    from bench.datasets import DATASETS
    from bench.tasks import TASKS

    for reg in (TASKS, BACKBONES, DATASETS):
        print(f"{reg.kind}s:")
        for e in reg:
            opts = ", ".join(f"{k}={v!r}" for k, v in e.defaults.items())
            print(f"  {e.name:<18} {e.summary}" + (f" [{opts}]" if opts else ""))
    return 0


def cmd_run(args) -> int:
    import torch

    from bench.layers import LAYERS
    from bench.records import existing_record
    from bench.runner import run_specs
    from bench.suite import load_suite
    from bench.tasks import RunContext

    for f in args.layers:
        LAYERS.load_file(f)
    suite = load_suite(args.suite)
    if args.only:
        unknown = [o for o in args.only if o not in {l["label"] for l in suite.layers}]
        if unknown:
            raise SpecError("command line", "--only", f"no layer row labelled {unknown[0]!r} in {args.suite}")
        suite.layers = [l for l in suite.layers if l["label"] in args.only]
    if args.backbone:
        unknown = [b for b in args.backbone if b not in {b["name"] for b in suite.backbones}]
        if unknown:
            raise SpecError("command line", "--backbone", f"no backbone {unknown[0]!r} in {args.suite}")
        suite.backbones = [b for b in suite.backbones if b["name"] in args.backbone]
    overrides = {"epochs": args.epochs, "train_subset": args.train_subset, "test_subset": args.test_subset,
                 "max_batches": args.max_batches, "batch_size": args.batch_size}
    for key, value in overrides.items():
        if value is not None and value <= 0:
            raise SpecError("command line", f"--{key.replace('_', '-')}", f"must be positive, got {value}")
    specs = suite.expand(overrides, seeds=args.seeds, data_root=args.data_root)
    if args.dry_run:
        for s in specs:
            done = existing_record(args.results, s)
            state = "done" if done and done.get("status") == "ok" else ("failed" if done else "todo")
            print(f"{state:<6} {s.id} {s.backbone['name']}/{s.label}/seed {s.seed}")
        return 0
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError("command line", "--device", "CUDA requested but not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = RunContext(device=device, allow_download=args.allow_download, progress=not args.no_progress)
    # command-line choices that do not change what a run computes (so not in its id), kept in every record
    ctx.extra["invocation"] = {"seeds": args.seeds, "device": args.device, "only": args.only or None,
                               "backbone": args.backbone or None, "threads": args.threads,
                               "data_root": args.data_root, "force": args.force}
    try:
        counts = run_specs(suite, specs, args.results, ctx, force=args.force, retry_failed=args.retry_failed,
                           max_failures=args.max_failures)
    except DataMissing as exc:
        raise SpecError(args.suite, "dataset", str(exc)) from None
    print(f"suite {suite.name}: {counts['ran']} ran, {counts['skipped']} already done, {counts['failed']} failed "
          f"→ {Path(args.results) / suite.name}")
    if args.report:
        from bench.report.site import build_site
        build_site(args.results, str(Path(args.suite).parent), args.report)
        print(f"site → {Path(args.report) / 'index.html'}")
    if args.max_failures is not None and counts["failed"] >= args.max_failures:
        return 1
    return 0


def cmd_report(args) -> int:
    from bench.report.site import build_site

    summary = build_site(args.results, args.suites, args.site)
    for path, reason in summary["problems"]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"site → {Path(args.site) / 'index.html'} ({summary['records']} records, {summary['pages']} pages)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"run": cmd_run, "report": cmd_report, "layers": cmd_layers, "list": cmd_list}[args.command](args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
