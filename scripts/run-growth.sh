#!/usr/bin/env bash
# run-growth.sh: issue 14's ~100M end-to-end goal on the CPU and how `autoq run` grows with
# layers and tokens. For each LAYERS value it writes the llama-100m synthetic (dim 1024,
# vocab 32000, BF16) with that many layers, runs
#
#   autoq run --model M --data DATA --sensitivity proxy --target-bits 5.3 \
#       --eval-tokens EVAL --calib-tokens CALIB --sens-tokens SENS --max-ppl-increase off --out O
#
# and prints a markdown row: layers, tokens, wall seconds, each stage's seconds (from the
# run's --json report), sensitivity's share of the wall time, peak RSS (the kernel's
# maxrss, from /usr/bin/time) and the checkpoint's bytes.
#
#   scripts/run-growth.sh AUTOQ DATA [WORKDIR]
#   LAYERS="2 4 8" TOKENS="8192:2048:8192 16384:4096:16384" scripts/run-growth.sh ./autoq $D/tinystories_val.txt
#
# TOKENS is a list of CALIB:SENS:EVAL triples: all of them run at the first LAYERS value, the
# first one at every other (the token growth at one depth, the layer growth at one budget).
set -eu
AUTOQ=$1
DATA=$2
WORK=${3:-/tmp/autoq-growth}
LAYERS=${LAYERS:-2 4 8}
TOKENS=${TOKENS:-8192:2048:8192}
mkdir -p "$WORK"
echo "| layers | calib/sens/eval tokens | wall s | calibrate | sensitivity | quantize | export | verify | sensitivity share | peak RSS | checkpoint |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
first=1
for L in $LAYERS; do
  M="$WORK/llama-100m-$L"
  [ -d "$M" ] || "$AUTOQ" synth --shape llama-100m --layers "$L" --out "$M" >/dev/null
  for T in $TOKENS; do
    IFS=: read -r C S E <<<"$T"
    O="$WORK/out-$L-$C"
    rm -rf "$O" "$O.autoq-work"
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$WORK/rss" "$AUTOQ" run --model "$M" --data "$DATA" --sensitivity proxy \
      --target-bits 5.3 --calib-tokens "$C" --sens-tokens "$S" --eval-tokens "$E" \
      --max-ppl-increase off --out "$O" --json >"$WORK/report.json" 2>"$WORK/stderr"
    end=$(date +%s.%N)
    python3 - "$WORK/report.json" "$(cat "$WORK/rss")" "$(du -sb "$M" | cut -f1)" "$L" "$T" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rss_kb, ckpt, L, T, t0, t1 = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6]), float(sys.argv[7])
st = {s["name"]: s["seconds"] for s in r["stages"]}
wall = t1 - t0
cells = [L, T.replace(":", "/"), f"{wall:.0f}"] + [f'{st.get(n, 0):.0f}' for n in ("calibrate", "sensitivity", "quantize", "export", "verify")]
cells += [f'{100 * st.get("sensitivity", 0) / wall:.0f}%', f"{rss_kb / 1024:.0f} MiB", f"{ckpt / 2**20:.0f} MiB"]
print("| " + " | ".join(cells) + " |")
PY
    rm -rf "$O"
    [ $first = 1 ] || break
  done
  first=0
done
