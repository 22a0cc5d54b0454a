#!/usr/bin/env bash
# One worker of a long CPU campaign (development machines): pulls "label seed est_s [suite [tier|-] [flags...]]"
# lines from a queue file (benchmarks/campaign_queue.py writes them from what the records still lack), runs each as
# `bench run SUITE --only LABEL --seeds SEED [--tier TIER] [flags...]` on one thread, and copies the
# record into the main checkout's results. A run is started only if its estimate ends before DEADLINE (epoch seconds), so no
# run straddles the end of a session (a run still going at the stop is lost). Start two, one per core:
#
#   git worktree add /work/runs -b runs-vN main      # runs from a clean worktree of main
#   nohup tools/campaign_worker.sh A $(date -d 05:10 +%s) /work/campaign/queue.txt > wA.log 2>&1 &
#   nohup tools/campaign_worker.sh B $(date -d 05:10 +%s) /work/campaign/queue.txt > wB.log 2>&1 &
#
# Environment: RUNS (worktree, default /work/runs), MAIN (checkout receiving records, default /work/main),
# VENV (default $MAIN/.tox/shared), BENCH_DATA_ROOT (default /work/data). The queue is shared under flock;
# items whose estimate no longer fits are kept for the next session. Records land with `cp -n` (never
# overwriting); run `bench rekey results` and commit them from MAIN.
# Edit this file by writing a new one and renaming it over (never in place) while a worker runs: bash reads a
# running script from its file as it goes.
set -u
W=$1; DEADLINE=$2; Q=$3
RUNS=${RUNS:-/work/runs}; MAIN=${MAIN:-/work/main}; VENV=${VENV:-$MAIN/.tox/shared}
LOGS=$(dirname "$Q")
cd "$RUNS" && source "$VENV/bin/activate"
export PYTHONPATH=$RUNS BENCH_DATA_ROOT=${BENCH_DATA_ROOT:-/work/data} OMP_NUM_THREADS=1
pull() {  # print the first queue line whose estimate fits before the deadline, and remove it from the queue
    flock "$Q.lock" python3 - "$Q" "$DEADLINE" <<'PY'
import sys, time
path, deadline = sys.argv[1], int(sys.argv[2])
lines = [l for l in open(path).read().splitlines() if l.strip()]
now = time.time()
for i, line in enumerate(lines):
    if now + int(line.split()[2]) <= deadline:
        open(path, "w").write("".join(l + "\n" for j, l in enumerate(lines) if j != i))
        print(line)
        break
PY
}
while true; do
    line=$(pull)
    [ -z "$line" ] && { echo "[$W] $(date +%T) nothing fits before the deadline; stop"; break; }
    set -- $line
    label=$1; seed=$2; est=$3; suite=${4:-fast-cifar-v2}; tier=${5:-}
    [ "$tier" = "-" ] && tier=
    shift $(( $# < 5 ? $# : 5 ))  # what is left: extra flags for bench run (--backbone NAME, --epochs N)
    tag=$(echo "$*" | tr -c 'A-Za-z0-9_.=-' '_' | sed 's/_*$//')
    echo "[$W] $(date +%T) start $suite ${tier:+tier $tier }$label seed $seed $* (est $est s)"
    bench run "suites/$suite.yaml" --only "$label" --seeds "$seed" ${tier:+--tier "$tier"} "$@" --threads 1 \
        --device cpu --no-progress > "$LOGS/log-$suite${tier:+-$tier}-$label-s$seed${tag:+-$tag}.txt" 2>&1
    rc=$?  # taken at once: a $(…) in the next line would reset $?
    echo "[$W] $(date +%T) end $suite $label seed $seed rc=$rc"
    mkdir -p "$MAIN/results/$suite"
    for f in "results/$suite/"*"--$label--s$seed--"*.json; do
        [ -f "$f" ] || continue
        # only a finished run's record goes to MAIN: a failed one stays here (it would count as done there)
        if python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])).get("status") != "ok")' "$f" 2>/dev/null; then
            cp -n "$f" "$MAIN/results/$suite/" && echo "[$W] copied $f"
        else
            echo "[$W] not copied (status not ok): $f"
        fi
    done
done
