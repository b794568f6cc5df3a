#!/usr/bin/env bash
# gpu-check.sh: the one-shot GPU check (issues 4 and 18). On a machine with an NVIDIA GPU, the
# CUDA toolkit and CMake (Go may be missing: then .gpu-go/env.sh, packed by
# ../shared/gpu/pack-go.sh, provides it; PyTorch is optional), within BUDGET seconds (default
# 345, under the 6 minutes issue 18 allows). Run scripts/gpu-prep.sh on the development machine
# first and carry .gpu-commit: the device copy has no .git, and the summary records the commit
# from that file (the tree hash re-checked here).
#
# Steps, in priority order (a step that would start with under 15 s of budget left is
# skipped), with each one's limit and the time expected on an H100 (runs 1-6: build 9-13 s,
# tests 27-62 s, benchmarks 5 s at 10 iterations):
#   1. sm_90a object (cuda/sm90a, wgmma + TMA) alone      limit  90 s, expect ~20 s
#      (a failure is reported and the library is reconfigured with -DAUTOQ_SM90A=OFF)
#   2. the CUDA library for the local GPU                  limit 150 s, expect ~40 s
#   3. go build -tags cuda, autoq devices                  limit  90 s, expect ~10 s
#   4. go test -tags cuda (every package with GPU tests)   limit 170 s, expect ~100 s
#   5. autoq bench gemm, llama2-7b, M 1,16,128,1024        limit  45 s, expect ~6 s
#   6. autoq bench gemm, llama2-70b, the same M            limit  60 s, expect ~12 s
#   7. autoq bench model --device cuda (M 16..4096)        limit  45 s, expect ~10 s
#   8. autoq bench kernels, 50 runs per row                limit  45 s, expect ~12 s
#   9. PyTorch peers (queued launches), 7b and 70b         limit  70 s, expect ~45 s
#   total expected ~255 s; every timed point takes >= 50 iterations (median and p90).
# Files written to $OUT if set, else gpu-results/ (the device tool returns at most 8 files):
#   summary.txt  summary.json  build.log  test.log  bench.log  peers.log  results.tar.gz
# (results.tar.gz: every benchmark's JSON). The goal table of issue 18 (scripts/gpu_goals.py)
# and the W8A8 exact-match counts close summary.txt. Exit status 0 when every step passed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUTDIR=${OUT:-$ROOT/gpu-results}
mkdir -p "$OUTDIR"
JSONDIR=$(mktemp -d)
BUDGET=${AUTOQ_GPU_CHECK_BUDGET:-345}
T0=$(date +%s)
SUMMARY="$OUTDIR/summary.txt"
: >"$SUMMARY"
declare -a NAMES STATUS SECS

note() { echo "$*" | tee -a "$SUMMARY"; }
remaining() { echo $((BUDGET - ($(date +%s) - T0))); }

# step NAME LIMIT LOGFILE CMD...: runs CMD with a time limit (capped by the budget left),
# output appended to LOGFILE and echoed; records pass/FAIL/TIMEOUT/skipped.
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local left
  left=$(remaining)
  if [ "$left" -lt 15 ]; then
    NAMES+=("$name"); STATUS+=("skipped (budget)"); SECS+=(0)
    echo "=== $name: skipped, ${left}s of the budget left" | tee -a "$log"
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s)" | tee -a "$log"
  local s rc
  s=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  local d=$(($(date +%s) - s))
  NAMES+=("$name"); SECS+=("$d")
  if [ "$rc" -eq 0 ]; then STATUS+=("pass")
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then STATUS+=("TIMEOUT")
  else STATUS+=("FAIL (rc $rc)"); fi
  echo "=== $name: ${STATUS[-1]} in ${d}s" | tee -a "$log"
  return "$rc"
}

BUILD_LOG="$OUTDIR/build.log"
TEST_LOG="$OUTDIR/test.log"
BENCH_LOG="$OUTDIR/bench.log"
PEER_LOG="$OUTDIR/peers.log"
: >"$BUILD_LOG"; : >"$TEST_LOG"; : >"$BENCH_LOG"; : >"$PEER_LOG"

# --- environment ---------------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1 && [ -f .gpu-go/env.sh ]; then
  # shellcheck disable=SC1091
  source .gpu-go/env.sh >>"$BUILD_LOG" 2>&1
fi
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    [ -x "$d/nvcc" ] && { export PATH="$d:$PATH"; break; }
  done
fi
NVCC=$(command -v nvcc || true)
CUDA_LIB=${CUDA_LIB:-}
if [ -z "$CUDA_LIB" ]; then
  for d in ${NVCC:+$(dirname "$NVCC")/../lib64} ${NVCC:+$(dirname "$NVCC")/../targets/x86_64-linux/lib} \
    /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
    [ -f "$d/libcudart_static.a" ] && { CUDA_LIB=$(cd "$d" && pwd); break; }
  done
fi
export CGO_ENABLED=1 CGO_LDFLAGS="-L${CUDA_LIB:-/usr/local/cuda/lib64}"
export AUTOQ_NO_PROGRESS=1
# The real-model tests read their data from .gpu-data (scripts/gpu-prep.sh copies it there).
[ -z "${AUTOQ_SHARED_DATA:-}" ] && [ -d .gpu-data ] && export AUTOQ_SHARED_DATA="$ROOT/.gpu-data"

# --- which code this is ----------------------------------------------------------------------
COMMIT=unknown
if git rev-parse --short HEAD >/dev/null 2>&1; then
  COMMIT=$(git rev-parse HEAD)
  git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (+ local changes)"
elif [ -f .gpu-commit ]; then
  c=$(sed -n 's/^commit //p' .gpu-commit)
  want=$(sed -n 's/^tree-sha256 //p' .gpu-commit)
  have=$(sed -n '/^files:$/,$p' .gpu-commit | tail -n +2 | while IFS= read -r f; do [ -f "$f" ] && sha256sum "$f"; done | sha256sum | cut -d' ' -f1)
  v="tree verified"
  [ "$have" = "$want" ] || v="TREE DIFFERS from that commit's files (sha256 $have, recorded $want)"
  COMMIT="$c (local changes at prep: $(sed -n 's/^dirty //p' .gpu-commit); $v; $(sed -n 's/^subject //p' .gpu-commit))"
else
  COMMIT="unknown (no .git and no .gpu-commit: run scripts/gpu-prep.sh and carry .gpu-commit)"
fi
note "autoq GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT"
note "go: $(go version 2>&1 | head -1)"
note "nvcc: $( [ -n "$NVCC" ] && nvcc --version | tail -1 || echo 'not found')"
note "cmake: $(cmake --version 2>&1 | head -1)"
note "python/torch: $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'no PyTorch')"
GPU_NAME=unknown; DRIVER=unknown
if command -v nvidia-smi >/dev/null 2>&1; then
  note "$(nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap,clocks.max.sm,clocks.max.memory,power.limit --format=csv 2>&1)"
  GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
fi

# --- 1-2. the CUDA library, the sm_90a object first ------------------------------------------
ARCH=${AUTOQ_CUDA_ARCHS:-native}
cmake_ver=$(cmake --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+' | head -1)
[ "$ARCH" = native ] && case "$cmake_ver" in 3.1[0-9] | 3.2[0-3]) ARCH=90 ;; esac
SM90A="off (nvcc < 12)"
rm -rf build/cuda
cmake -S . -B build/cuda -DAUTOQ_CUDA_ARCHS="$ARCH" >>"$BUILD_LOG" 2>&1
if grep -q 'AUTOQ_SM90A): ON' "$BUILD_LOG"; then
  if step "sm_90a object (wgmma + TMA)" 90 "$BUILD_LOG" cmake --build build/cuda --target autoq_cuda_sm90a -j "$(nproc)"; then
    SM90A="built"
  else
    SM90A="FAILED to compile (see build.log); library built without it"
    cmake -S . -B build/cuda -DAUTOQ_CUDA_ARCHS="$ARCH" -DAUTOQ_SM90A=OFF >>"$BUILD_LOG" 2>&1
  fi
fi
note "sm_90a W8A8 kernel: $SM90A"
step "cmake library (arch $ARCH)" 150 "$BUILD_LOG" cmake --build build/cuda -j "$(nproc)"
LIB_OK=$?

# --- 3. the cuda-tagged binary ------------------------------------------------------------------
GO_OK=1
if [ $LIB_OK -eq 0 ]; then
  step "go build -tags cuda" 90 "$BUILD_LOG" go build -tags cuda -o autoq ./cmd/autoq
  GO_OK=$?
fi
if [ $GO_OK -eq 0 ]; then
  note "$(./autoq devices 2>&1)"
fi

# --- 4. the cuda-tagged tests -------------------------------------------------------------------
if [ $LIB_OK -eq 0 ]; then
  PKGS=$( (printf '%s\n' ./cgo/ ./gpurunner/ ./kernels/layout/ ./backend/ ./bench/; grep -rlE '^//go:build .*cuda' --include='*_test.go' . 2>/dev/null |
    grep -v '^./.gpu-go/' | xargs -r -n1 dirname | sed 's|$|/|') | sort -u | tr '\n' ' ')
  note "test packages: $PKGS"
  step "go test -tags cuda" 170 "$TEST_LOG" go test -tags cuda -count=1 -v -timeout 165s $PKGS
fi

# --- 5-8. autoq's benchmarks (>= 50 timed iterations per point) ---------------------------------
if [ $GO_OK -eq 0 ]; then
  step "bench gemm llama2-7b" 45 "$BENCH_LOG" ./autoq bench gemm --preset llama2-7b --m 1,16,128,1024 --iters 50 --warmup 5 \
    --timeout 40s --json "$JSONDIR/bench-gemm-7b.json"
  step "bench gemm llama2-70b" 60 "$BENCH_LOG" ./autoq bench gemm --preset llama2-70b --m 1,16,128,1024 --iters 50 --warmup 5 \
    --timeout 55s --json "$JSONDIR/bench-gemm-70b.json"
  # Whole-model prefill, synthetic 2-layer Llama-7B shapes: M = batch x seq = 16 .. 4096.
  step "bench model --device cuda" 45 "$BENCH_LOG" bash -c \
    "./autoq bench model --device cuda --scheme w8a8,w4g128 --batch 1,8 --seq 16,128,512 --runs 7 --warmup 2 --json \
       >'$JSONDIR/bench-model.json' && python3 scripts/gpu_goals.py --model-table '$JSONDIR/bench-model.json'"
  step "bench kernels" 45 "$BENCH_LOG" ./autoq bench kernels --runs 50 --json "$JSONDIR/bench-kernels.json"
fi

# --- 9. PyTorch peers, queued behind a spin kernel (scripts/peer_gemm.py) ------------------------
if python3 -c 'import torch; assert torch.cuda.is_available()' >/dev/null 2>&1; then
  step "peers llama2-7b" 40 "$PEER_LOG" python3 scripts/peer_gemm.py --preset llama2-7b --m 1,16,128,1024 --iters 50 --warmup 5 \
    --timeout 32 --json "$JSONDIR/peer-7b.json"
  step "peers llama2-70b" 50 "$PEER_LOG" python3 scripts/peer_gemm.py --preset llama2-70b --m 1,16,128,1024 --iters 50 --warmup 5 \
    --timeout 40 --json "$JSONDIR/peer-70b.json"
else
  echo "no PyTorch with CUDA: peers skipped" | tee -a "$PEER_LOG"
fi

# --- summary ------------------------------------------------------------------------------------
TOTAL=$(($(date +%s) - T0))
FAILS=0
{
  echo
  echo "GPU: $GPU_NAME, driver $DRIVER, total ${TOTAL}s (budget ${BUDGET}s)"
  printf '%-32s %-18s %6s\n' step status seconds
  for i in "${!NAMES[@]}"; do
    printf '%-32s %-18s %6s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}"
    [ "${STATUS[$i]}" = pass ] || FAILS=$((FAILS + 1))
  done
  echo
  echo "W8A8 exact-match counts (F16 outputs bit-equal to f16(quant.GemmW8A8)):"
  grep -hoE 'W8A8 exact-match total \([^)]*\): [0-9]+/[0-9]+' "$TEST_LOG" | sort | uniq || echo "  (none logged)"
  grep -hoE 'wgmma-tma: the sm_90a kernel is not built[^"]*' "$TEST_LOG" | head -1
  echo
  python3 scripts/gpu_goals.py "$JSONDIR" 2>&1 || echo "(goal table: python3 missing or failed)"
} >>"$SUMMARY"

{
  printf '{\n  "date": "%s",\n  "commit": "%s",\n  "gpu": "%s",\n  "driver": "%s",\n  "sm90a": "%s",\n  "total_seconds": %d,\n  "steps": [\n' \
    "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "${COMMIT//\"/\'}" "$GPU_NAME" "$DRIVER" "$SM90A" "$TOTAL"
  for i in "${!NAMES[@]}"; do
    sep=,; [ "$i" -eq $((${#NAMES[@]} - 1)) ] && sep=
    printf '    {"name": "%s", "status": "%s", "seconds": %s}%s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "$sep"
  done
  printf '  ],\n  "failed_tests": [\n'
  grep -E '^\s*--- FAIL' "$TEST_LOG" 2>/dev/null | sed -E 's/^\s*--- FAIL: ([^ ]+).*/\1/' | head -50 |
    awk 'BEGIN{n=0} {gsub(/"/,"\\\""); if (n++) printf ",\n"; printf "    \"%s\"", $0} END{if (n) printf "\n"}'
  printf '  ],\n  "json": "results.tar.gz"\n}\n'
} >"$OUTDIR/summary.json"
(cd "$JSONDIR" && tar czf "$OUTDIR/results.tar.gz" ./*.json 2>/dev/null)
rm -rf "$JSONDIR"

# The short version last (the caller sees the tail of the output).
echo
echo "################ GPU check summary ################"
grep -E '^(--- FAIL|FAIL|ok |panic:)|^\s+--- FAIL|Error:|Messages:' "$TEST_LOG" 2>/dev/null |
  grep -v 'GPU test skipped' | cut -c1-300 | head -40
echo
sed -n '/^GPU: /,$p' "$SUMMARY"
echo "files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
[ "$FAILS" -eq 0 ]
