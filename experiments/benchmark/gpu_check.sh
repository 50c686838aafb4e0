#!/usr/bin/env bash
# One GPU check of MeshConv's CUDA path (issue 14), run from the repository root on a fresh GPU machine:
#
#   bash experiments/benchmark/gpu_check.sh                # all stages: env, install, test, bench
#   bash experiments/benchmark/gpu_check.sh --only test    # one stage (env | install | test | bench)
#   bash experiments/benchmark/gpu_check.sh --dry-run      # CPU rehearsal: no install, pytest --collect-only,
#                                                          # the benchmark with --device cpu at level 3
#
# Everything goes under $OUT (default ./gpu_out): env.txt (nvidia-smi, torch / CUDA / triton versions, git
# commit), install.log, pytest.log, bench.log, gpu.json (the benchmark's tables), summary.txt (exit status
# of each stage). A failing stage is recorded and the next one still runs; the script's exit status is
# that of the first failing stage (0 if none).
#
# Stages:
#   install  pip install torch==2.13.0, then pip install -e '.[all,test,bench]' (a failure is logged; the
#            later stages run with whatever torch is there, the repository on PYTHONPATH)
#   test     pytest tests/nn/test_cuda.py tests/nn/test_triton.py tests/nn/test_orientations.py -q
#   bench    experiments/benchmark/meshconv.py --device cuda --levels 5,7 --large
#            --orientations poleward isotropic invariant --json $OUT/gpu.json $BENCH_ARGS
#            ($BENCH_ARGS defaults to "--mesh-levels 0": the mesh-generation table is CPU work)
#
# Environment: OUT, PYTHON (default python3), PIP_ARGS (pip arguments, default "--retries 1 --timeout 30";
# e.g. "--no-index --find-links wheels/"), BENCH_ARGS, STAGE_TIMEOUT (seconds per stage, default 540: the device tool
# allows 600 s per command, so on it run one stage per call, e.g. --only install, then --only test,
# then --only bench), COMPARE_BAG=1 (also time the bag-product path, MESHCNN_TRITON=0, levels 5,7,
# into bench_bag.log / gpu_bag.json).
set -u

OUT="${OUT:-./gpu_out}"
PYTHON="${PYTHON:-python3}"
PIP_ARGS="${PIP_ARGS:---retries 1 --timeout 30}"  # fail fast where there is no network (then the image's torch)
if [ -z "${BENCH_ARGS+set}" ]; then BENCH_ARGS="--mesh-levels 0"; fi
STAGE_TIMEOUT="${STAGE_TIMEOUT:-540}"
COMPARE_BAG="${COMPARE_BAG:-0}"
DRY_RUN=0
ONLY=""

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --only) shift; ONLY="${1:-}" ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case "$ONLY" in ""|env|install|test|bench) ;; *) echo "gpu_check.sh: --only env|install|test|bench" >&2; exit 2 ;; esac

if [ ! -f setup.cfg ] || [ ! -d meshcnn ]; then
    echo "gpu_check.sh: run from the repository root" >&2
    exit 2
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SUMMARY="$OUT/summary.txt"
FIRST_FAIL=0

log() { echo "[gpu_check $(date -u +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }

run_stage() {  # run_stage NAME LOGFILE CMD...: run CMD under the stage timeout, log its output and status
    local name="$1" logfile="$2"
    shift 2
    log "stage $name: $*"
    timeout "$STAGE_TIMEOUT" "$@" >"$logfile" 2>&1
    local rc=$?
    tail -n 5 "$logfile" | sed 's/^/    /' | tee -a "$SUMMARY"
    log "stage $name: exit status $rc (log: $logfile)"
    if [ "$rc" -ne 0 ] && [ "$FIRST_FAIL" -eq 0 ]; then FIRST_FAIL=$rc; fi
    return 0
}

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

if [ "$DRY_RUN" -eq 1 ]; then
    DEVICE=cpu
    BENCH_LEVELS=(--levels 3)
    BENCH_EXTRA=(--repeats 2 --warmup 1 --original-repeats 1 --mesh-levels 0 --no-memory)
    PYTEST_EXTRA=(--collect-only)
    JSON="$OUT/dry_run.json"
    log "dry run: no install, pytest --collect-only, benchmark on the CPU at level 3 into $JSON"
else
    DEVICE=cuda
    BENCH_LEVELS=(--levels 5,7 --large)
    # shellcheck disable=SC2206  # BENCH_ARGS is a list of words
    BENCH_EXTRA=($BENCH_ARGS)
    PYTEST_EXTRA=()
    JSON="$OUT/gpu.json"
fi

if want env; then
    {
        echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "git: $(git rev-parse HEAD 2>/dev/null || echo unknown) $(git status --porcelain 2>/dev/null | wc -l) changed files"
        echo "python: $($PYTHON --version 2>&1)"
        echo "--- nvidia-smi"
        nvidia-smi 2>&1 || echo "nvidia-smi not available"
        echo "--- torch"
        $PYTHON - <<'EOF' 2>&1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
try:
    import triton
    print("triton", triton.__version__)
except Exception as exc:  # noqa: BLE001
    print("triton not importable:", exc)
EOF
    } >"$OUT/env.txt" 2>&1
    log "stage env: $OUT/env.txt"
fi

if want install; then
    if [ "$DRY_RUN" -eq 1 ]; then
        log "stage install (dry run, not run): $PYTHON -m pip install $PIP_ARGS torch==2.13.0 && $PYTHON -m pip install $PIP_ARGS -e '.[all,test,bench]'"
    else
        # shellcheck disable=SC2086
        run_stage install "$OUT/install.log" bash -c \
            "$PYTHON -m pip install $PIP_ARGS torch==2.13.0 && $PYTHON -m pip install $PIP_ARGS -e '.[all,test,bench]'"
        $PYTHON -c "import torch, meshcnn; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
            >>"$OUT/install.log" 2>&1 || log "install: torch or meshcnn not importable; later stages will fail"
        $PYTHON -c "import torch; print(torch.__version__)" >"$OUT/torch_version.txt" 2>&1
    fi
fi

if want test; then
    run_stage test "$OUT/pytest.log" env OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" $PYTHON -m pytest \
        tests/nn/test_cuda.py tests/nn/test_triton.py tests/nn/test_orientations.py -q -rs "${PYTEST_EXTRA[@]}"
fi

if want bench; then
    run_stage bench "$OUT/bench.log" $PYTHON experiments/benchmark/meshconv.py --device "$DEVICE" "${BENCH_LEVELS[@]}" \
        --orientations poleward isotropic invariant --json "$JSON" "${BENCH_EXTRA[@]}"
    if [ "$COMPARE_BAG" = "1" ]; then
        run_stage bench_bag "$OUT/bench_bag.log" env MESHCNN_TRITON=0 $PYTHON experiments/benchmark/meshconv.py \
            --device "$DEVICE" --levels "$([ "$DRY_RUN" -eq 1 ] && echo 3 || echo 5,7)" --no-unet \
            --json "${JSON%.json}_bag.json" "${BENCH_EXTRA[@]}"
    fi
fi

log "done: first failing exit status $FIRST_FAIL; outputs in $OUT"
exit "$FIRST_FAIL"
