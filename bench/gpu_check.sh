#!/usr/bin/env bash
# The one prepared device check (issue 15): on a bare H100/H200 image (Python 3.12, torch cu130, CuPy, ncu; no network)
# build pyprof, then run every GPU check, each step under its own time limit, never stopping at the first failure.
#
#   bash bench/gpu_check.sh                       # writes into $OUT (the device tool's folder) or bench/results/...
#   bash bench/gpu_check.sh --out DIR --no-build  # pyprof already built (or GPU_CHECK_SKIP_BUILD=1)
#
# Steps and their limits (seconds; each also capped by what is left of GPU_CHECK_BUDGET_S, default 530 = 8m50s):
#   build     240  pip install --no-build-isolation -e . with PYPROF_CUDA=ON and PYPROF_CUDA_ARCHS for this GPU only
#                  (90a on Hopper). Estimate on 16 cores: 2-3 minutes (the pybind11 translation units and the
#                  peak-kernel .cu compile in parallel; nvcc on peak_kernels.cu for one arch is the longest single job).
#   pytest    120  pytest -m gpu tests (90 s per test at most, with pytest-timeout where installed)
#   bindings   60  bench.gpu_check bindings: GEMM FLOPs on the GEMM kernel or the next one; bmm; split-K; TF32; FP8
#                  _scaled_mm; a side stream; CUDA-graph replay
#   counters   90  bench.gpu_check counters: difference-of-two-launches exact checks on the FFMA/HFMA2/DFMA/mma/wgmma
#                  peak kernels (HFMA2 counting; tensor "ops" = FLOPs or FMAs); 8192^3 GEMMs in every precision
#   modes      60  bench.gpu_check modes: step mode vs kernel mode on the same step
#   ncu       120  bench.gpu_check ncu: agreement with ncu --clock-control none --cache-control none
#   peaks      60  bench.gpu_peaks --quick
#   overhead   90  bench.gpu_overhead (GPT-2 small): always-on pyprof vs plain vs torch.profiler
# Expected on an H200: about 7-8 minutes in all; the budget check keeps the whole run under 9.
#
# Output, at most 8 files in one folder: summary.md (per step: status, exit code, seconds, limit; environment; what
# the container refused), build.log, pytest_gpu.log, steps.log (the Python steps' output), checks.json (rows of
# bindings/counters/modes/ncu, each with a typed status), gpu_peaks.json, gpu_overhead.json.
# Where the container refuses hardware counters (ncu "LibraryNotLoaded" under gVisor, ERR_NVGPUCTRPERM) those rows
# read "unavailable" with the reason, and summary.md says so; tracing and timing steps still run.
# Without a GPU every step is reported as "no GPU", the files are written and the exit status is 0.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="${OUT:-$ROOT/bench/results/gpu-check-$(date -u +%Y%m%d-%H%M%S)}"
BUILD=1
[ "${GPU_CHECK_SKIP_BUILD:-0}" = "1" ] && BUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUTDIR="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (use --out DIR, --no-build)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUTDIR" || { echo "gpu_check.sh: cannot create $OUTDIR" >&2; exit 2; }
PY="${PYTHON:-python3}"
BUDGET="${GPU_CHECK_BUDGET_S:-530}"
START=$(date +%s)
SUMMARY="$OUTDIR/summary.md"
STEPS_LOG="$OUTDIR/steps.log"
: > "$STEPS_LOG"
ROWS=()
FAILED=0
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
cd "$ROOT" || exit 2

GPU_REASON=""
if [ "${GPU_CHECK_ASSUME_NO_GPU:-0}" = "1" ]; then
  GPU_REASON="no GPU (GPU_CHECK_ASSUME_NO_GPU=1)"
elif ! command -v nvidia-smi >/dev/null 2>&1; then
  GPU_REASON="no GPU: nvidia-smi not found"
elif ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  GPU_REASON="no GPU: nvidia-smi lists no device"
fi

# step NAME LIMIT_S LOGFILE COMMAND...: run under its own timeout (what is left of the budget caps it), record the row.
step() {
  local name="$1" limit="$2" log="$3"; shift 3
  local now left t0 rc secs status note
  now=$(date +%s); left=$(( BUDGET - (now - START) - 10 ))
  if [ -n "$GPU_REASON" ]; then
    ROWS+=("| $name | no GPU | - | 0 | $limit | $GPU_REASON |"); return 0
  fi
  if [ "$left" -lt 15 ]; then
    ROWS+=("| $name | skipped | - | 0 | $limit | out of time: ${BUDGET}s budget spent |"); return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)" >> "$log"
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  case $rc in
    0) status=passed; note="" ;;
    124|137) status=failed; note="timed out after ${limit}s" ;;
    *) status=failed; note="exit code $rc (see $(basename "$log"))" ;;
  esac
  [ "$status" = failed ] && FAILED=$((FAILED + 1))
  echo "=== $name: $status rc=$rc ${secs}s" >> "$log"
  ROWS+=("| $name | $status | $rc | $secs | $limit | $note |")
}

# --- environment
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $(uname -r) (gVisor reports 4.4.0; there ncu cannot read counters)"
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,compute_cap,clocks.max.sm --format=csv,noheader 2>&1 | head -2
  command -v nvcc >/dev/null 2>&1 && nvcc --version 2>&1 | tail -1
  command -v ncu >/dev/null 2>&1 && echo "ncu: $(ncu --version 2>&1 | tail -1)"
  [ -z "$GPU_REASON" ] && "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1
} > "$OUTDIR/env.tmp" 2>&1

# --- build
ARCHS="${PYPROF_CUDA_ARCHS:-}"
if [ -z "$ARCHS" ] && [ -z "$GPU_REASON" ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  case "$cc" in 90) ARCHS="90a" ;; "") ARCHS="80;90a" ;; *) ARCHS="$cc" ;; esac
fi
build() {
  PYPROF_CUDA=ON PYPROF_CUDA_ARCHS="$ARCHS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$PY" -m pip install --no-build-isolation --no-deps --no-index -e . \
  || { echo "pip install failed; trying setup.py build_ext --inplace"; \
       PYPROF_CUDA=ON PYPROF_CUDA_ARCHS="$ARCHS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$PY" setup.py build_ext --inplace; } \
  && "$PY" -c "import pyprof._C, pyprof._C_cuda; print('pyprof native parts load')"
}
export -f build
export PY ARCHS
if [ "$BUILD" = 1 ]; then
  step build 240 "$OUTDIR/build.log" bash -c build
else
  echo "build skipped (--no-build / GPU_CHECK_SKIP_BUILD=1)" > "$OUTDIR/build.log"
  ROWS+=("| build | skipped | - | 0 | 240 | --no-build |")
fi

# --- tests marked gpu
PYTEST_ARGS=(-m gpu -q -ra -p no:cacheprovider -o addopts= tests)
"$PY" -c "import pytest_timeout" >/dev/null 2>&1 && PYTEST_ARGS+=(--timeout=90)
: > "$OUTDIR/pytest_gpu.log"
step pytest 120 "$OUTDIR/pytest_gpu.log" "$PY" -m pytest "${PYTEST_ARGS[@]}"

# --- Python checks into checks.json
for s in bindings:60 counters:90 modes:60 ncu:120; do
  name="${s%%:*}"; lim="${s##*:}"
  if [ -n "$GPU_REASON" ]; then
    "$PY" -m bench.gpu_check "$name" --out "$OUTDIR" --skip-reason "$GPU_REASON" >> "$STEPS_LOG" 2>&1
  fi
  step "$name" "$lim" "$STEPS_LOG" "$PY" -m bench.gpu_check "$name" --out "$OUTDIR"
done
step peaks 60 "$STEPS_LOG" "$PY" -m bench.gpu_peaks --quick --out "$OUTDIR"
step overhead 90 "$STEPS_LOG" "$PY" -m bench.gpu_overhead --models gpt2 --steps 10 --blocks 3 --warmup 3 --out "$OUTDIR"

# --- summary
TOTAL=$(( $(date +%s) - START ))
{
  echo "# pyprof GPU check"
  echo
  echo "Whole run: ${TOTAL}s of a ${BUDGET}s budget. Steps that failed: $FAILED."
  [ -n "$GPU_REASON" ] && echo "Nothing ran on a GPU: $GPU_REASON."
  echo
  echo "| step | status | exit | seconds | limit | note |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  if [ -f "$OUTDIR/checks.json" ]; then
    echo "## Check rows (checks.json)"
    echo
    "$PY" - "$OUTDIR/checks.json" <<'PYEOF' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
print("counts:", ", ".join(f"{k} {v}" for k, v in d.get("summary", {}).items()))
refused = []
for step, sec in d.get("steps", {}).items():
    for r in sec.get("rows", []):
        if r.get("status") != "passed":
            print(f"- {step} / {r.get('check')}: {r.get('status')}: {r.get('reason', '')[:300]}")
        if r.get("status") == "unavailable":
            refused.append(r.get("reason", ""))
        if r.get("finding"):
            print(f"- {step} / {r.get('check')}: finding: {r['finding']}")
if refused:
    print()
    print("The container refused hardware counters for", len(refused), "check(s):", refused[0][:300])
PYEOF
    echo
  fi
  echo "## Environment"
  echo
  sed 's/^/    /' "$OUTDIR/env.tmp"
} > "$SUMMARY"
rm -f "$OUTDIR/env.tmp"
cat "$SUMMARY"
[ -n "$GPU_REASON" ] && exit 0
[ "$FAILED" -eq 0 ]
