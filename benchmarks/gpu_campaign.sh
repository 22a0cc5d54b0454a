#!/usr/bin/env bash
# The prepared GPU campaign (issue 10): everything a one-off GPU machine should measure, in one wall-clock budget.
#
# Target machine: NVIDIA H200 whose python3 has torch, torchvision, pandas, jinja2, pyyaml, scikit-learn,
# scikit-image, tqdm, pytest and pytest-benchmark but not fvcore or torchattacks, with nothing downloadable.
# Before leaving, run `bash benchmarks/gpu_campaign_prepare.sh` here: it fills the ignored folders .gpu-wheels/
# (the missing packages as wheels) and .gpu-data/ (cifar10-jpeg.tar.gz), which must travel with the working tree
# (e.g. the device tool's carry: [".gpu-wheels", ".gpu-data"]). Then, from the repository root on the GPU machine:
#
#     OUT=/some/empty/folder bash benchmarks/gpu_campaign.sh        # or: tox -e gpu-campaign
#
# Steps, each bounded by what is left of the budget (CAMPAIGN_BUDGET_S, default 480 s = 8 minutes, set-up
# included; CAMPAIGN_RESERVE_S, default 25 s, is kept for packing): install the wheels into a private folder
# (only if fvcore or torchattacks is missing), unpack CIFAR-10 into a temporary folder, record the machine
# (nvidia-smi, torch/CUDA versions, pip freeze), run benchmarks/harness_overhead.py, the layer-cost benchmark
# (benchmarks/test_layer_cost.py + layer_cost_summary.py) and benchmarks/deconv_vs_bn.py on the device, then
# the fast suite (CAMPAIGN_SUITE, protocol v2) on full CIFAR-10 packed with `bench run --jobs`, seeds in order (every family's seed 0,
# then seed 1, ...) until the budget runs out. A step that runs out of time is stopped (SIGTERM to its whole
# process group, SIGKILL 5 s later): records are written atomically when a run finishes, so every finished run
# is kept and an interrupted one leaves nothing. Finally everything is packed into ONE archive under $OUT
# ($OUT/gpu-campaign.tar.gz), next to a short summary ($OUT/gpu-campaign-summary.txt) — 2 files.
#
# Environment (all optional):
#   OUT                  where the archive goes (default ./gpu-campaign-out)
#   CAMPAIGN_PYTHON      interpreter (default python3)
#   CAMPAIGN_DEVICE      cuda (default) or cpu (the smoke test)
#   CAMPAIGN_BUDGET_S    total wall budget in seconds (default 480)
#   CAMPAIGN_JOBS        runs at once on the device (default 4)
#   CAMPAIGN_SEEDS       seeds to try, in order (default 0,1,2,3,4,5,6,7)
#   CAMPAIGN_EPOCHS, CAMPAIGN_TRAIN_SUBSET, CAMPAIGN_TEST_SUBSET, CAMPAIGN_MAX_BATCHES
#                        overrides for the fast suite (default: none, the suite's full protocol)
#   CAMPAIGN_ONLY        comma-separated layer rows to run (default: all)
#   CAMPAIGN_RUN_FLAGS   extra flags for `bench run` (e.g. --compile)
#   CAMPAIGN_SMOKE=1     tiny benchmark sizes (CPU smoke test)
#   CAMPAIGN_DATA_TAR    CIFAR-10 archive (default .gpu-data/cifar10-jpeg.tar.gz)
#   CAMPAIGN_DATA_ROOT   an already unpacked data root instead of the archive
#   CAMPAIGN_WHEELS      wheel folder (default .gpu-wheels)
#   CAMPAIGN_COST_FILTER pytest -k expression for the layer-cost benchmark (default: the device)
#   CAMPAIGN_SUITE       the fast suite to run (default suites/fast-cifar-v2.yaml, protocol v2)
#   CAMPAIGN_STEPS       which parts to run: benchmarks, fast-cifar (default both; the machine is always recorded)
set -u
# started from inside a pytest-xdist worker (the tests run in two), its own pytest run of the layer-cost benchmark
# would see PYTEST_XDIST_WORKER and pytest-benchmark would then switch itself off: this campaign is no xdist worker
unset PYTEST_XDIST_WORKER PYTEST_XDIST_WORKER_COUNT PYTEST_XDIST_TESTRUNUID
START=$(date +%s)
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${CAMPAIGN_PYTHON:-python3}
DEVICE=${CAMPAIGN_DEVICE:-cuda}
BUDGET=${CAMPAIGN_BUDGET_S:-480}
RESERVE=${CAMPAIGN_RESERVE_S:-25}
JOBS=${CAMPAIGN_JOBS:-4}
SEEDS=${CAMPAIGN_SEEDS:-0,1,2,3,4,5,6,7}
SMOKE=${CAMPAIGN_SMOKE:-0}
STEPS=",${CAMPAIGN_STEPS:-benchmarks,fast-cifar},"
# the shared fast protocol the campaign runs (protocol v2 since issue 22; v1 was suites/fast-cifar.yaml)
SUITE=${CAMPAIGN_SUITE:-suites/fast-cifar-v2.yaml}
OUT=${OUT:-$REPO/gpu-campaign-out}
WHEELS=${CAMPAIGN_WHEELS:-$REPO/.gpu-wheels}
DATA_TAR=${CAMPAIGN_DATA_TAR:-$REPO/.gpu-data/cifar10-jpeg.tar.gz}
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-campaign.XXXXXX")
STAGE=$WORK/campaign
mkdir -p "$STAGE/env" "$STAGE/benchmarks" "$STAGE/results" "$STAGE/logs"
LOG=$STAGE/logs/campaign.log
trap 'rm -rf "$WORK"' EXIT

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET - RESERVE - $(date +%s) + START )); }
say() { echo "[$(elapsed) s] $*" | tee -a "$LOG"; }

# step NAME MAX_S CMD...: run CMD with at most min(MAX_S, what is left) seconds; log its exit code and time
step() {
    local name=$1 cap=$2; shift 2
    local avail; avail=$(left)
    [ "$cap" -lt "$avail" ] && avail=$cap
    if [ "$avail" -lt 5 ]; then
        say "skip $name: budget spent"
        printf '%s\tskipped\t0\n' "$name" >> "$STAGE/steps.tsv"
        return 0
    fi
    local t0 rc; t0=$(date +%s)
    say "start $name (at most ${avail} s)"
    timeout --kill-after=5 "$avail" "$@" >> "$STAGE/logs/$name.log" 2>&1
    rc=$?
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && say "$name stopped by the budget guard (rc $rc)"
    say "end $name: rc $rc, $(( $(date +%s) - t0 )) s"
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$STAGE/steps.tsv"
    return 0
}

say "campaign: device $DEVICE, budget ${BUDGET} s, jobs $JOBS, seeds $SEEDS, smoke $SMOKE"

# -- set-up: packages the machine lacks (from wheels, into a private folder), the project, the data --------------
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('fvcore') and u.find_spec('torchattacks')))"
then
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        step install-wheels 120 "$PY" -m pip install --no-index --no-deps --target "$WORK/pydeps" "$WHEELS"/*.whl
        export PYTHONPATH="$REPO:$WORK/pydeps${PYTHONPATH#"$REPO"}"
    else
        say "fvcore/torchattacks missing and no wheels in $WHEELS (run benchmarks/gpu_campaign_prepare.sh)"
    fi
fi
export BENCH_CACHE=$WORK/cache
if [ -n "${CAMPAIGN_DATA_ROOT:-}" ]; then
    DATA_ROOT=$CAMPAIGN_DATA_ROOT
else
    DATA_ROOT=$WORK/data
    mkdir -p "$DATA_ROOT"
    step unpack-data 120 tar -xzf "$DATA_TAR" -C "$DATA_ROOT"
fi
export BENCH_DATA_ROOT=$DATA_ROOT

# -- the machine --------------------------------------------------------------------------------------------------
(nvidia-smi; nvidia-smi -q) > "$STAGE/env/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" >> "$STAGE/env/nvidia-smi.txt"
"$PY" - > "$STAGE/env/python.json" 2>> "$LOG" <<'PYEOF'
import json, os, platform, sys
import torch, torchvision
info = {"python": sys.version, "platform": platform.platform(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=torch.cuda.get_device_name(0), gpu_memory_bytes=p.total_memory,
                gpu_capability=f"{p.major}.{p.minor}", gpu_count=torch.cuda.device_count())
print(json.dumps(info, indent=1), flush=True)
import importlib.util  # exit code 1 if the project cannot run (then only the machine is recorded)
sys.exit(0 if all(importlib.util.find_spec(m) for m in ("fvcore", "torchattacks", "bench.cli")) else 1)
PYEOF
if [ $? -ne 0 ]; then
    say "the project or its dependencies do not import (see logs/campaign.log): only the machine is recorded"
    NOIMPORT=1
fi
[ "$SMOKE" = 1 ] || "$PY" -m pip freeze > "$STAGE/env/pip-freeze.txt" 2>/dev/null || true
git -C "$REPO" rev-parse HEAD > "$STAGE/env/git-commit.txt" 2>/dev/null || true
git -C "$REPO" status --porcelain --untracked-files=no > "$STAGE/env/git-status.txt" 2>/dev/null || true

if [ -z "${NOIMPORT:-}" ] && [[ $STEPS == *,benchmarks,* ]]; then
    # -- benchmarks on the device ---------------------------------------------------------------------------------
    if [ "$SMOKE" = 1 ]; then
        HO_ARGS=(--train 64 --test 32 --repeats 1)
        DB_ARGS=(--widths 0.0625 --batch 4 --rounds 1 --block 2)
        export BENCH_COST_BATCH=2 BENCH_COST_ROUNDS=1 BENCH_COST_WARMUP=0
    else
        HO_ARGS=(--train 10000 --test 2000 --repeats 3)
        DB_ARGS=(--rounds 3 --block 3)
    fi
    step harness-overhead 90 "$PY" benchmarks/harness_overhead.py --device "$DEVICE" --data-root "$DATA_ROOT" \
        "${HO_ARGS[@]}" --out "$STAGE/benchmarks/harness_overhead.json"
    step layer-cost 120 "$PY" -m pytest benchmarks/test_layer_cost.py -q -p no:cacheprovider --benchmark-enable \
        -k "${CAMPAIGN_COST_FILTER:-$DEVICE}" --benchmark-json="$STAGE/benchmarks/layer_cost_raw.json"
    if [ -s "$STAGE/benchmarks/layer_cost_raw.json" ]; then
        step layer-cost-summary 30 "$PY" benchmarks/layer_cost_summary.py "$STAGE/benchmarks/layer_cost_raw.json" \
            --out "$STAGE/benchmarks/layer_cost.json" --note "GPU campaign (benchmarks/gpu_campaign.sh)"
    fi
    step deconv-vs-bn 90 "$PY" benchmarks/deconv_vs_bn.py --device "$DEVICE" "${DB_ARGS[@]}" \
        --out "$STAGE/benchmarks/deconv_vs_bn.json"
fi

if [ -z "${NOIMPORT:-}" ] && [[ $STEPS == *,fast-cifar,* ]]; then
    # -- the fast protocol, every family, packed, seeds in order until the budget runs out ---------------------------
    RUN_ARGS=(run "$SUITE" --device "$DEVICE" --jobs "$JOBS" --seeds "$SEEDS"
              --results "$STAGE/results" --no-progress)
    [ -n "${CAMPAIGN_EPOCHS:-}" ] && RUN_ARGS+=(--epochs "$CAMPAIGN_EPOCHS")
    [ -n "${CAMPAIGN_TRAIN_SUBSET:-}" ] && RUN_ARGS+=(--train-subset "$CAMPAIGN_TRAIN_SUBSET")
    [ -n "${CAMPAIGN_TEST_SUBSET:-}" ] && RUN_ARGS+=(--test-subset "$CAMPAIGN_TEST_SUBSET")
    [ -n "${CAMPAIGN_MAX_BATCHES:-}" ] && RUN_ARGS+=(--max-batches "$CAMPAIGN_MAX_BATCHES")
    # extra `bench run` flags, e.g. CAMPAIGN_RUN_FLAGS="--compile" or "--tune"
    [ -n "${CAMPAIGN_RUN_FLAGS:-}" ] && read -ra EXTRA <<< "$CAMPAIGN_RUN_FLAGS" && RUN_ARGS+=("${EXTRA[@]}")
    if [ -n "${CAMPAIGN_ONLY:-}" ]; then
        IFS=, read -ra ONLY <<< "$CAMPAIGN_ONLY"
        for o in "${ONLY[@]}"; do RUN_ARGS+=(--only "$o"); done
    fi
    step fast-cifar 100000 "$PY" -m bench.cli "${RUN_ARGS[@]}"
fi

# -- pack: one archive + one summary under $OUT ------------------------------------------------------------------
n_records=$(find "$STAGE/results" -name '*.json' -not -path '*/.*' | wc -l)
{
    echo "GPU campaign, $(date -u +%Y-%m-%dT%H:%M:%SZ), device $DEVICE, budget ${BUDGET} s, used $(elapsed) s"
    echo "records: $n_records (results/, suite $SUITE)"
    echo "steps (name, exit code, seconds):"
    cat "$STAGE/steps.tsv" 2>/dev/null
    grep -h "^suite \|stopped by" "$LOG" "$STAGE/logs/fast-cifar.log" 2>/dev/null
} > "$STAGE/summary.txt"
cp "$STAGE/summary.txt" "$OUT/gpu-campaign-summary.txt"
tar -czf "$OUT/gpu-campaign.tar.gz.tmp" -C "$WORK" campaign && mv "$OUT/gpu-campaign.tar.gz.tmp" "$OUT/gpu-campaign.tar.gz"
say "packed $n_records records and $(ls "$STAGE/benchmarks" | wc -l) benchmark files into $OUT/gpu-campaign.tar.gz"
cat "$OUT/gpu-campaign-summary.txt"
