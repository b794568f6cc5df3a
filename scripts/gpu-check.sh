#!/usr/bin/env bash
# gpu-check.sh: the one-shot GPU check (issue 4). On a machine with an NVIDIA GPU, the CUDA
# toolkit and CMake (Go may be missing: then .gpu-go/env.sh, packed by
# ../shared/gpu/pack-go.sh, provides it), in at most ~6 minutes:
#   1. nvidia-smi summary and toolchain versions
#   2. builds libautoq_cuda.a for the local GPU (CUDA_ARCHITECTURES native, else 90)
#   3. builds the cuda-tagged autoq and runs `autoq devices`
#   4. runs the cuda-tagged Go tests (cgo, gpurunner, kernels/layout, backend, bench and every
#      package with cuda-tagged tests)
#   5. `autoq bench kernels --json`, and `autoq bench gemm --quick --json` if that exists
# and writes its logs and a summary (text + JSON) to $OUT if set, else gpu-results/
# (at most 8 files). It keeps going after a failed step and prints a short table last.
# Exit status: 0 when every step passed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUTDIR=${OUT:-$ROOT/gpu-results}
mkdir -p "$OUTDIR"
BUDGET=${AUTOQ_GPU_CHECK_BUDGET:-330} # seconds for all steps together
T0=$(date +%s)
SUMMARY="$OUTDIR/summary.txt"
: >"$SUMMARY"
declare -a NAMES STATUS SECS

note() { echo "$*" | tee -a "$SUMMARY"; }
remaining() { echo $((BUDGET - ($(date +%s) - T0))); }

# step NAME LIMIT LOGFILE CMD...: runs CMD with a time limit (capped by the budget left),
# output appended to LOGFILE and echoed; records pass/FAIL/timeout/skipped.
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
BENCH_LOG="$OUTDIR/bench-kernels.log"
GEMM_LOG="$OUTDIR/bench-gemm.log"
: >"$BUILD_LOG"

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
# cgo/link.go names -lculibos (and the static cuBLAS libraries); should a toolkit lack one,
# an empty stand-in archive keeps the link going (only a library whose symbols are really
# used must exist).
STUBS=$(mktemp -d)
for l in culibos cublas_static cublasLt_static; do
  if [ -n "${CUDA_LIB:-}" ] && [ ! -f "$CUDA_LIB/lib$l.a" ]; then
    ar rc "$STUBS/lib$l.a" && echo "note: lib$l.a missing in $CUDA_LIB; linking an empty stand-in" >>"$BUILD_LOG"
    CGO_LDFLAGS="$CGO_LDFLAGS -L$STUBS"
  fi
done
export CGO_LDFLAGS
ls -l "${CUDA_LIB:-/nonexistent}"/lib{cudart,cublas,cublasLt,culibos}*static*.a "${CUDA_LIB:-/nonexistent}"/libculibos.a >>"$BUILD_LOG" 2>&1
export AUTOQ_NO_PROGRESS=1

COMMIT=unknown
if git rev-parse --short HEAD >/dev/null 2>&1; then
  COMMIT=$(git rev-parse --short HEAD)
  git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (+ local changes)"
fi
note "autoq GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT"
note "go: $(go version 2>&1 | head -1)"
note "nvcc: $( [ -n "$NVCC" ] && nvcc --version | tail -1 || echo 'not found')"
note "cmake: $(cmake --version 2>&1 | head -1)"
note "CUDA static libs: ${CUDA_LIB:-not found}"
if command -v nvidia-smi >/dev/null 2>&1; then
  note "$(nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap,clocks.max.memory,power.limit --format=csv 2>&1)"
  GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
else
  note "nvidia-smi: not found"
fi
GPU_NAME=${GPU_NAME:-unknown}
DRIVER=${DRIVER:-unknown}

# --- 1. the CUDA library for this GPU -------------------------------------------------------
ARCH=${AUTOQ_CUDA_ARCHS:-native}
cmake_ver=$(cmake --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+' | head -1)
[ "$ARCH" = native ] && case "$cmake_ver" in 3.1[0-9] | 3.2[0-3]) ARCH=90 ;; esac
step "cmake library (arch $ARCH)" 150 "$BUILD_LOG" bash -c \
  "rm -rf build/cuda && cmake -S . -B build/cuda -DAUTOQ_CUDA_ARCHS='$ARCH' && cmake --build build/cuda -j $(nproc)"
LIB_OK=$?

# --- 2. the cuda-tagged binary ----------------------------------------------------------------
GO_OK=1
if [ $LIB_OK -eq 0 ]; then
  step "go build -tags cuda" 150 "$BUILD_LOG" go build -tags cuda -o autoq ./cmd/autoq
  GO_OK=$?
fi
if [ $GO_OK -eq 0 ]; then
  step "autoq devices" 20 "$BUILD_LOG" ./autoq devices
  ./autoq devices --json >>"$BUILD_LOG" 2>&1
  note "$(./autoq devices 2>&1)"
fi

# --- 3. the cuda-tagged tests ----------------------------------------------------------------
: >"$TEST_LOG"
if [ $LIB_OK -eq 0 ]; then
  PKGS=$( (printf '%s\n' ./cgo/ ./gpurunner/ ./kernels/layout/ ./backend/ ./bench/; grep -rlE '^//go:build .*cuda' --include='*_test.go' . 2>/dev/null |
    grep -v '^./.gpu-go/' | xargs -r -n1 dirname | sed 's|$|/|') | sort -u | tr '\n' ' ')
  note "test packages: $PKGS"
  step "go test -tags cuda" 220 "$TEST_LOG" go test -tags cuda -count=1 -v -timeout 200s $PKGS
fi

# --- 4. benchmarks ----------------------------------------------------------------------------
: >"$BENCH_LOG"
if [ $GO_OK -eq 0 ]; then
  step "bench kernels" 120 "$BENCH_LOG" ./autoq bench kernels --json "$OUTDIR/bench-kernels.json"
  if ./autoq help 2>/dev/null | grep -q 'bench gemm'; then
    : >"$GEMM_LOG"
    step "bench gemm --quick" 75 "$GEMM_LOG" ./autoq bench gemm --quick --json "$OUTDIR/bench-gemm.json"
  fi
fi

# --- summary ----------------------------------------------------------------------------------
TOTAL=$(($(date +%s) - T0))
FAILS=0
{
  echo
  echo "GPU: $GPU_NAME, driver $DRIVER, total ${TOTAL}s"
  printf '%-32s %-18s %6s\n' step status seconds
  for i in "${!NAMES[@]}"; do
    printf '%-32s %-18s %6s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}"
    [ "${STATUS[$i]}" = pass ] || FAILS=$((FAILS + 1))
  done
} >>"$SUMMARY"

# JSON summary (no jq/python needed).
{
  printf '{\n  "date": "%s",\n  "gpu": "%s",\n  "driver": "%s",\n  "total_seconds": %d,\n  "steps": [\n' \
    "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$GPU_NAME" "$DRIVER" "$TOTAL"
  for i in "${!NAMES[@]}"; do
    sep=,; [ "$i" -eq $((${#NAMES[@]} - 1)) ] && sep=
    printf '    {"name": "%s", "status": "%s", "seconds": %s}%s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "$sep"
  done
  printf '  ],\n  "failed_tests": [\n'
  grep -E '^\s*--- FAIL' "$TEST_LOG" 2>/dev/null | sed -E 's/^\s*--- FAIL: ([^ ]+).*/\1/' | head -50 |
    awk 'BEGIN{n=0} {gsub(/"/,"\\\""); if (n++) printf ",\n"; printf "    \"%s\"", $0} END{if (n) printf "\n"}'
  printf '  ],\n  "bench_kernels_json": "bench-kernels.json"\n}\n'
} >"$OUTDIR/summary.json"

# The short version last (the caller sees the tail of the output).
echo
echo "################ GPU check summary ################"
grep -E '^(--- FAIL|FAIL|ok |panic:)|^\s+--- FAIL|Error:|Messages:|_test\.go:[0-9]+:' "$TEST_LOG" 2>/dev/null |
  grep -v 'GPU test skipped' | cut -c1-400 | head -80
echo
grep -A40 '^kernel ' "$BENCH_LOG" 2>/dev/null | head -30
[ -f "$GEMM_LOG" ] && tail -25 "$GEMM_LOG"
tail -n $((${#NAMES[@]} + 3)) "$SUMMARY"
echo "files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
[ "$FAILS" -eq 0 ]
