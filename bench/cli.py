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
from bench.execution.executors import executor_names


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
    """The parser, built without importing torch (so ``bench --help`` stays light): every command imports what
    it needs when it runs (``report``, ``layers`` and ``list`` only the registries' catalog, :mod:`bench.zoo.catalog`)."""
    p = _Parser(prog="bench", description="Benchmark harness for alternatives to the convolution layer.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser(
        "run",
        help="run a suite: one record per run under results/<suite>/",
        description="Run every (seed, backbone, layer) of a suite (tasks: see 'bench list').",
    )
    r.add_argument("suite", help="suite file (YAML), e.g. suites/quick.yaml")
    r.add_argument("--results", default="results", help="records folder (default: results)")
    r.add_argument(
        "--layers",
        action="append",
        default=[],
        metavar="FILE",
        help="Python file registering extra layer families (repeatable)",
    )
    r.add_argument("--epochs", type=int, help="override protocol.epochs")
    r.add_argument("--train-subset", type=int, help="override protocol.train_subset (images)")
    r.add_argument("--test-subset", type=int, help="override protocol.test_subset (images)")
    r.add_argument("--max-batches", type=int, help="override protocol.max_batches (per epoch)")
    r.add_argument("--batch-size", type=int, help="override protocol.batch_size")
    r.add_argument("--seeds", type=_int_list, help="override seeds, e.g. 0,1,2")
    r.add_argument(
        "--tier",
        metavar="NAME",
        help="run at a tier the suite declares (its overrides and task options), e.g. cpu-3ep in suites/cifar.yaml",
    )
    r.add_argument("--only", action="append", default=[], metavar="LABEL", help="run only these layer rows")
    r.add_argument("--backbone", action="append", default=[], metavar="NAME", help="run only these backbones")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available)")
    r.add_argument("--data-root", default=None, help="data root (default: dataset.root or $BENCH_DATA_ROOT)")
    r.add_argument(
        "--allow-download",
        action="store_true",
        default=os.environ.get("BENCH_ALLOW_DOWNLOAD") == "1",
        help="let torchvision download missing data (or set BENCH_ALLOW_DOWNLOAD=1)",
    )
    r.add_argument("--force", action="store_true", help="rerun runs that already have a record")
    r.add_argument("--retry-failed", action="store_true", help="rerun runs whose record says failed")
    r.add_argument("--max-failures", type=int, default=None, help="stop the suite after this many failed runs")
    r.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    r.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run N runs at once in separate processes (CPU: threads divided; GPU: device shared)",
    )
    r.add_argument("--compile", action="store_true", help="torch.compile the model for training and evaluation")
    r.add_argument(
        "--no-fold",
        action="store_true",
        help="train every layer as written, not through its folded speed path (the same function, other rounding: "
        "reproduces records made before the fold, which say no timing.speed_paths.fold)",
    )
    r.add_argument(
        "--tune",
        action="store_true",
        help="choose memory layout (channels_last or not) and CPU threads by timing a few steps per run",
    )
    r.add_argument(
        "--refresh-data",
        action="store_true",
        help="decode the data set again instead of using the cache (or set BENCH_REFRESH_DATA=1)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done; run nothing")
    r.add_argument("--report", metavar="SITE", default=None, help="build the site into SITE afterwards")
    r.add_argument(
        "--compare-with",
        metavar="DIR",
        default=None,
        help="afterwards, set each record beside the record of the same run in DIR (e.g. the committed "
        "results/) and say whether they agree (bitwise on the same device class, else within "
        "the seed-noise band)",
    )
    many = r.add_argument_group("many runners (see docs/many-runners.md)")
    many.add_argument(
        "--shard",
        metavar="I/N",
        default=None,
        help="run only share I of N (0 ≤ I < N) of the suite's runs; N shards make one serial run",
    )
    many.add_argument(
        "--executor",
        choices=executor_names(),
        default=None,
        help="local: this process, one run after another (the default); jobs: --jobs N supervised worker "
        "processes (the default with --jobs > 1); ray: one Ray task per run "
        "(pip install 'convbench[ray]')",
    )
    many.add_argument("--address", default=None, help="Ray: join this cluster (default: start a local one)")
    many.add_argument(
        "--gpus-per-run",
        type=float,
        default=None,
        metavar="G",
        help="Ray: GPUs each run declares, fractions allowed (0.25 packs four runs on a GPU; "
        "default: 1 if this machine has CUDA, else 0)",
    )
    many.add_argument("--cpus-per-run", type=float, default=1.0, metavar="C", help="Ray: CPUs each run declares")
    many.add_argument(
        "--ray-cpus",
        type=int,
        default=None,
        metavar="N",
        help="Ray: CPUs of the local cluster started without --address (default: all)",
    )
    many.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait for runs another process is training: report them as running elsewhere",
    )
    many.add_argument(
        "--oversubscribe",
        action="store_true",
        help="with --jobs: allow more runs at once than this machine has CPU cores (default: capped)",
    )

    rep = sub.add_parser("report", help="render the static leaderboard from records")
    rep.add_argument("--results", default="results")
    rep.add_argument("--suites", default="suites", help="folder of suite files (for references and claims)")
    rep.add_argument("--site", default="site", help="output folder")
    rep.add_argument(
        "--layers",
        action="append",
        default=[],
        metavar="FILE",
        help="Python file registering extra layer families (repeatable), as given to bench run: "
        "suites using a plug-in family are then rendered, not skipped",
    )

    lay = sub.add_parser("layers", help="list every registered layer family")
    lay.add_argument("--layers", action="append", default=[], metavar="FILE")
    lay.add_argument("--json", action="store_true")

    sub.add_parser("list", help="list registered backbones, tasks and data sets")

    rk = sub.add_parser(
        "rekey",
        help="give records written before run identity version 2 their current ids "
        "(files and artifact folders renamed; metrics unchanged)",
    )
    rk.add_argument("results", nargs="?", default="results", help="records folder (default: results)")
    rk.add_argument("--dry-run", action="store_true", help="list the renames; change nothing")
    return p


def cmd_rekey(args) -> int:
    from bench.records.records import rekey

    if not Path(args.results).is_dir():
        raise SpecError("command line", "results", f"no results folder {args.results!r}")
    done = rekey(args.results, dry_run=args.dry_run)
    for path, reason in done["problems"]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for old, new in done["renamed"]:
        print(f"{'would rename' if args.dry_run else 'renamed'} {old} → {Path(new).name}")
    print(f"{len(done['renamed'])} re-keyed, {done['current']} already current, {len(done['problems'])} skipped")
    return 0


def cmd_layers(args) -> int:
    from bench.zoo.catalog import add_layer_files, catalog

    add_layer_files(args.layers)
    rows = [
        {
            "name": e.name,
            "document": e.document,
            "section": e.section,
            "fixed": e.fixed,
            "learned": e.learned,
            "defaults": e.defaults,
            "summary": e.summary,
            "origin": e.origin,
        }
        for e in catalog().layers
    ]
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
    from bench.zoo.catalog import catalog

    cat = catalog()
    for reg in (cat.tasks, cat.backbones, cat.datasets):
        print(f"{reg.kind}s:")
        for e in reg:
            opts = ", ".join(f"{k}={v!r}" for k, v in e.defaults.items())
            print(f"  {e.name:<18} {e.summary}" + (f" [{opts}]" if opts else ""))
    return 0


MAX_THREADS = 4096
DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_run_flags(args) -> None:
    """Flags whose values no suite decides, checked before anything is loaded: one SpecError each."""
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise SpecError("command line", "--threads", f"must be between 1 and {MAX_THREADS}, got {args.threads}")
    if args.max_failures is not None and args.max_failures < 1:
        raise SpecError(
            "command line",
            "--max-failures",
            f"must be at least 1 (the suite stops once that many "
            f"runs failed; leave it out for no limit), got {args.max_failures}",
        )
    if args.jobs < 1:
        raise SpecError("command line", "--jobs", f"must be positive, got {args.jobs}")
    parse_device(args.device, available=False)


def parse_device(text: str | None, available: bool = True):
    """``--device`` as a torch.device (default: cuda if available), or a SpecError naming the flag. With
    ``available`` False only the name is checked (a dry run may plan a GPU run on a machine without one)."""
    import torch

    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise SpecError("command line", "--device", f"unknown device {text!r} (cpu, cuda, cuda:N or mps)")
    if not available:
        return device
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError("command line", "--device", "CUDA requested but not available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SpecError(
            "command line", "--device", f"no CUDA device {device.index} ({torch.cuda.device_count()} available)"
        )
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SpecError("command line", "--device", "MPS requested but not available")
    return device


def cmd_run(args) -> int:
    import torch

    from bench.zoo.layers import LAYERS
    from bench.records.records import existing_record
    from bench.spec.suite import load_suite
    from bench.tasks import RunContext

    check_run_flags(args)
    for f in args.layers:
        LAYERS.load_file(f)
    suite = load_suite(args.suite, use_memo=False)  # the file decides which runs run, never a cache
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
    overrides = {
        "epochs": args.epochs,
        "train_subset": args.train_subset,
        "test_subset": args.test_subset,
        "max_batches": args.max_batches,
        "batch_size": args.batch_size,
    }
    for key, value in overrides.items():
        if value is not None and value <= 0:
            raise SpecError("command line", f"--{key.replace('_', '-')}", f"must be positive, got {value}")
    from bench.spec.suite import MAX_EPOCHS

    if args.epochs is not None and args.epochs > MAX_EPOCHS:
        raise SpecError("command line", "--epochs", f"must be at most {MAX_EPOCHS}, got {args.epochs}")
    if args.seeds is not None and (not args.seeds or min(args.seeds) < 0):
        raise SpecError("command line", "--seeds", f"must be non-negative integers, got {args.seeds}")
    specs = suite.expand(overrides, seeds=args.seeds, data_root=args.data_root, tier=args.tier)
    if args.shard is not None:
        from bench.execution.executors import parse_shard, shard

        specs = shard(specs, *parse_shard(args.shard))
    if args.force:
        _say_replaced(args.results, specs)
    if args.dry_run:
        for s in specs:
            done = existing_record(args.results, s)
            state = "done" if done and done.get("status") == "ok" else ("failed" if done else "todo")
            print(f"{state:<6} {s.id} {s.backbone['name']}/{s.label}/seed {s.seed}")
        return 0
    device = parse_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    executor = args.executor or ("jobs" if args.jobs > 1 else "local")
    if executor in ("local", "jobs") and not args.force:  # ray's workers may sit on other machines
        from bench.measure.measure import device_name

        _say_measured_elsewhere(args.results, specs, device_name(device), args.retry_failed)
    # command-line choices that do not change what a run computes (so not in its id), kept in every record
    invocation = {
        "seeds": args.seeds,
        "device": args.device,
        "only": args.only or None,
        "backbone": args.backbone or None,
        "threads": args.threads,
        "data_root": args.data_root,
        "force": args.force,
    }
    if args.tier:
        invocation["tier"] = args.tier
    if args.refresh_data:
        os.environ["BENCH_REFRESH_DATA"] = "1"
    if args.jobs > 1:
        invocation["jobs"] = args.jobs
    if args.compile:
        invocation["compile"] = True
    if args.tune:
        invocation["tune"] = True
    if args.no_fold:
        invocation["no_fold"] = True
    # where and how runs were trained (host, pid, shard, executor): in every record's provenance, not its id
    provenance = {k: v for k, v in {"shard": args.shard, "executor": executor}.items() if v}
    ctx = RunContext(
        device=device,
        allow_download=args.allow_download,
        progress=not args.no_progress,
        invocation=invocation,
        provenance=provenance,
        compile=bool(args.compile),
        tune=bool(args.tune),
        fold=not args.no_fold,
        wait_elsewhere=not args.no_wait,
    )
    from bench.execution.locks import clean_stale_tmp

    clean_stale_tmp(args.results, suite.name)
    try:
        from bench.execution.executors import Launch, executors

        if executor == "local" and args.jobs > 1:
            raise SpecError("command line", "--jobs", "runs N worker processes: the 'jobs' executor, not 'local'")
        launch = Launch(
            suite,
            specs,
            args.results,
            ctx,
            force=args.force,
            retry_failed=args.retry_failed,
            max_failures=args.max_failures,
            no_wait=args.no_wait,
            threads=args.threads,
            jobs=args.jobs,
            oversubscribe=args.oversubscribe,
            layer_files=list(args.layers),
            device=args.device,
            allow_download=args.allow_download,
            address=args.address,
            cpus_per_run=args.cpus_per_run,
            gpus_per_run=args.gpus_per_run,
            ray_cpus=args.ray_cpus,
        )
        counts = executors()[executor].run(launch)
    except DataMissing as exc:
        raise SpecError(args.suite, "dataset", str(exc)) from None
    elsewhere = f", {counts['elsewhere']} running elsewhere" if counts.get("elsewhere") else ""
    print(
        f"suite {suite.name}: {counts['ran']} ran, {counts['skipped']} already done, {counts['failed']} failed"
        f"{elsewhere} → {Path(args.results) / suite.name}"
    )
    if args.compare_with:
        _print_agreement(args.results, args.compare_with, suite.name, {s.id for s in specs})
    if args.report:
        build_site_locked(args.results, str(Path(args.suite).parent), args.report)
        print(f"site → {Path(args.report) / 'index.html'}")
    if args.max_failures is not None and counts["failed"] >= args.max_failures:
        return 1
    return 0


def _print_agreement(results: str, committed: str, suite: str, ids: set) -> None:
    """The fresh records of this invocation's runs against the committed ones of the same run ids."""
    from bench.measure.agreement import compare, format_table
    from bench.records.records import load_records

    if Path(results).resolve() == Path(committed).resolve():
        raise SpecError("command line", "--compare-with", "must name another folder than --results")
    fresh, _ = load_records(Path(results) / suite)
    old, _ = load_records(Path(committed) / suite) if (Path(committed) / suite).is_dir() else ([], [])
    print(format_table(compare([r for r in fresh if r.get("id") in ids], old)))


def _existing_with_device(results, specs):
    """``(record, device it was measured on)`` of every spec that has a trusted record under ``results``."""
    from bench.records.records import existing_record

    for s in specs:
        rec = existing_record(results, s)
        if rec is not None:
            env = rec.get("env") if isinstance(rec.get("env"), dict) else {}
            yield rec, str(env.get("device") or "unknown device")


def _say_measured_elsewhere(results, specs, device: str, retry_failed: bool = False) -> int:
    """Runs this invocation skips because a record exists, measured on another device than ``device``: say so
    (how many, from which devices) before anything runs, with the two ways to measure them here. A run id does
    not hold the device, so one results folder keeps one record per run; without this a GPU runner over a
    folder of CPU records would train nothing for those runs, without a word (each device keeps a leaderboard of
    its own, so nothing mixes: the note is about what was not measured here). Returns how many such runs."""
    from collections import Counter

    whose = Counter(
        measured
        for rec, measured in _existing_with_device(results, specs)
        if measured != device and not (retry_failed and rec.get("status") != "ok")  # those are rerun
    )
    if whose:
        where = "; ".join(f"{n} on {d}" for d, n in sorted(whose.items()))
        print(
            f"note: {sum(whose.values())} run(s) are skipped: their records in {results} were measured on another "
            f"device ({where}), not on {device}; to measure them here, give --results DIR (a folder of its own) "
            "or --force (replaces those records)",
            file=sys.stderr,
        )
    return sum(whose.values())


def _say_replaced(results, specs) -> None:
    """--force over existing records: say whose records (device, date) the rerun replaces, before it does."""
    from collections import Counter

    whose = Counter(
        (device, str(rec.get("finished") or rec.get("started") or "")[:10] or "undated")
        for rec, device in _existing_with_device(results, specs)
    )
    if whose:
        print(f"--force replaces {sum(whose.values())} existing record(s) in {results}:")
        for (device, when), n in sorted(whose.items()):
            print(f"  {n} from {device}, {when}")


def cmd_report(args) -> int:
    if not Path(args.results).is_dir():
        raise SpecError("command line", "--results", f"no results folder {args.results!r}")
    from bench.zoo.catalog import add_layer_files

    add_layer_files(args.layers)  # plug-in families: in the catalog the suites are validated against
    summary = build_site_locked(args.results, args.suites, args.site)
    for path, reason in summary["problems"]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for line in summary.get("stale", []):  # one line each; left out of every aggregate, flagged on the site
        print(f"stale {line}")
    print(f"site → {Path(args.site) / 'index.html'} ({summary['records']} records, {summary['pages']} pages)")
    global _SKIP_TEARDOWN
    _SKIP_TEARDOWN = True  # nothing left but freeing the records, object by object: see exit_fast
    return 0


_SKIP_TEARDOWN = False


def exit_fast(rc: int) -> None:
    """End the process with ``rc``. After a report, without the interpreter's teardown: the exit handlers
    (``atexit``: a private cache folder removed, …) run and the standard streams are flushed, then the process
    ends without freeing its objects one by one (a quarter of a second at 10,000 records: every file is
    already written and closed). Otherwise a normal ``sys.exit``."""
    if not _SKIP_TEARDOWN:
        sys.exit(rc)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(rc)


def console() -> None:
    """The ``bench`` command."""
    exit_fast(main())


def os_error_line(exc: OSError) -> str:
    """An operating-system error as one line naming the path and the cause."""
    cause = exc.strerror or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    where = exc.filename if exc.filename is not None else exc.filename2
    return f"{where}: {cause}" if where is not None else f"{type(exc).__name__}: {cause}"


def build_site_locked(results, suites, site) -> dict:
    """:func:`bench.report.site.build_site` under an exclusive lock of the site, so concurrent reports onto one
    site run one after the other (none sees another's half-built folder)."""
    from bench.report.owned import site_lock
    from bench.report.site import build_site

    with site_lock(site):
        return build_site(results, suites, site)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # PYTHONIOENCODING=ascii, a C locale: "×" printed as "\xd7"
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cmd = {"run": cmd_run, "report": cmd_report, "layers": cmd_layers, "list": cmd_list, "rekey": cmd_rekey}[
            args.command
        ]
        rc = cmd(args)  # report, layers, list: registry metadata from bench.zoo.catalog, no torch import
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
        return rc
    except BrokenPipeError:  # `bench layers | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush into the closed pipe at exit
        return 141  # 128 + SIGPIPE, as a tool killed by the signal would end
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # full disk, read-only folder, a file where a folder belongs…: one line, exit 2
        print(f"bench: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # finished records are kept; the run in flight leaves no record (atomic writes)
        print("bench: interrupted; finished records are kept, the run in flight was not recorded", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    console()
