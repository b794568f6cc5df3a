#!/usr/bin/env bash
# gpu-run14.sh: issue 14's GPU measurement, to run on a lent GPU after scripts/gpu-check.sh
# built ./autoq (-tags cuda). For each LAYERS value it writes the llama2-7b synthetic (BF16)
# with that many decoder layers and runs the streaming pipeline on the GPU:
#
#   autoq run --model M --data DATA --device cuda --sensitivity proxy --seq-len 2048 \
#       --calib-tokens CALIB --sens-tokens 8192 --eval-tokens 16384 --target-bits 5 \
#       --max-ppl-increase off --out O --json
#
# (CALIB default 131072 = 64 x 2048, issue 14's calibration; the text may hold fewer: the
# calibrate line says how many were used). It prints a markdown row per run: layers, wall
# seconds, each stage's seconds, peak device memory (nvidia-smi, 250 ms samples, minus the
# idle reading), peak host RSS. What runs where: the forward passes and the GPTQ Hessians on
# the GPU, GPTQ itself and the export on the CPU (act-order GPTQ has no GPU kernel yet).
#
#   LAYERS="2 4" OUT=gpu-results scripts/gpu-run14.sh
# DATA: $AUTOQ_SHARED_DATA/tinystories_val.txt (scripts/gpu-prep.sh copies it into .gpu-data).
set -u
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-gpu-results}
mkdir -p "$OUTDIR"
LAYERS=${LAYERS:-2 4}
CALIB=${CALIB:-131072}
DATA=${DATA:-${AUTOQ_SHARED_DATA:-.gpu-data}/tinystories_val.txt}
WORK=${WORK:-/tmp/autoq-run14}
mkdir -p "$WORK"
[ -x ./autoq ] || go build -tags cuda -o autoq ./cmd/autoq || exit 1
echo "| layers | wall s | calibrate | sensitivity | plan | quantize | export | verify | peak device MiB | peak host RSS MiB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for L in $LAYERS; do
  M="$WORK/llama2-7b-$L"
  [ -d "$M" ] || ./autoq synth --shape llama2-7b --layers "$L" --out "$M" >/dev/null || exit 1
  rm -rf "$WORK/out-$L" "$WORK/out-$L.autoq-work"
  idle=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 >"$OUTDIR/run14-mem-$L.txt" &
  smi=$!
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$WORK/rss" ./autoq run --model "$M" --data "$DATA" --device cuda --sensitivity proxy \
    --seq-len 2048 --calib-tokens "$CALIB" --sens-tokens 8192 --eval-tokens 16384 --target-bits 5 \
    --max-ppl-increase off --out "$WORK/out-$L" --json >"$OUTDIR/run14-$L.json" 2>"$OUTDIR/run14-$L.log"
  rc=$?
  end=$(date +%s.%N)
  kill "$smi" 2>/dev/null
  if [ $rc -ne 0 ]; then
    echo "| $L | FAILED (rc $rc): see run14-$L.log | | | | | | | | |"
    tail -5 "$OUTDIR/run14-$L.log"
    continue
  fi
  python3 - "$OUTDIR/run14-$L.json" "$OUTDIR/run14-mem-$L.txt" "$idle" "$(cat "$WORK/rss")" "$L" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
mem = [int(x) for x in open(sys.argv[2]).read().split() if x.strip().isdigit()]
idle, rss, L, t0, t1 = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6]), float(sys.argv[7])
st = {s["name"]: s["seconds"] for s in r["stages"]}
cells = [L, f"{t1 - t0:.0f}"] + [f'{st.get(n, 0):.1f}' for n in ("calibrate", "sensitivity", "plan", "quantize", "export", "verify")]
cells += [str(max(mem, default=idle) - idle), f"{rss / 1024:.0f}"]
print("| " + " | ".join(cells) + " |")
PY
  grep -E "^ *(calibrate|quantize|verify)|note:" "$OUTDIR/run14-$L.log" | head -6
done
