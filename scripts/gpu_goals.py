#!/usr/bin/env python3
"""gpu_goals.py: the goal table of issue 18 from one GPU check's JSON files.

Reads (any may be missing: its rows then say so) bench-gemm-7b.json, bench-gemm-70b.json
(`autoq bench gemm --json`), bench-kernels.json, bench-model.json, peer-7b.json and
peer-70b.json (scripts/peer_gemm.py) from DIR and prints one row per goal: the measured value,
the goal and met / NOT met. Ratios are against cuBLAS FP16 in the same run (the report's
speedup column); torch._int_mm is compared at the same (shape, M).

  python3 scripts/gpu_goals.py gpu-results/
  python3 scripts/gpu_goals.py --model-table bench-model.json
"""
import json
import math
import os
import sys


def load(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except Exception:  # noqa: BLE001
        return None


def geomean(v):
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def speedups(rep, kernel, pred):
    if not rep:
        return []
    return [p["speedup_vs_baseline"] for p in rep.get("points", []) if p["kernel"] == kernel and pred(p["m"])]


def model_table(path):
    """Prints `autoq bench model --json` as one line per (batch, seq)."""
    with open(path) as f:
        d = json.load(f)
    print(f"{d.get('model')} on {d.get('device')}, median of {d.get('runs')} runs; paths: {d.get('kernel_paths')}")
    for p in d.get("points", []):
        parts = [f"{v['scheme']} {v['median_ms']:.3f} ms {v['speedup_vs_fp32']:.2f}x" for v in p["variants"]]
        print(f"batch {p['batch']} seq {p['seq']} (M = {p['batch'] * p['seq']}): " + "  ".join(parts))
    return 0


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--model-table":
        return model_table(sys.argv[2])
    d = sys.argv[1] if len(sys.argv) > 1 else "gpu-results"
    g7, g70 = load(d, "bench-gemm-7b.json"), load(d, "bench-gemm-70b.json")
    kern, model = load(d, "bench-kernels.json"), load(d, "bench-model.json")
    p7, p70 = load(d, "peer-7b.json"), load(d, "peer-70b.json")
    rows = []

    def row(what, value, goal, met):
        rows.append((what, value, goal, "met" if met else ("NOT met" if met is not None else "not measured")))

    def gm_row(what, rep, kernel, pred, goal):
        v = speedups(rep, kernel, pred)
        if not v:
            row(what, "-", f">= {goal}x", None)
            return
        g = geomean(v)
        row(what, f"{g:.2f}x geomean ({min(v):.2f}-{max(v):.2f}x, {len(v)} points)", f">= {goal}x", g >= goal)

    gm_row("W4A16 g128, M <= 16, llama2-7b", g7, "w4a16-g128", lambda m: m <= 16, 2.6)
    gm_row("W4A16 g128, M <= 16, llama2-70b", g70, "w4a16-g128", lambda m: m <= 16, 3.0)
    for name, rep in (("llama2-7b", g7), ("llama2-70b", g70)):
        v = speedups(rep, "w4a16-g128", lambda m: m == 128)
        row(f"W4A16 g128, M = 128, {name} (every shape)", f"{min(v):.2f}-{max(v):.2f}x" if v else "-", ">= 1.0x",
            (min(v) >= 1.0) if v else None)
    gm_row("W8A8, M <= 16, llama2-7b", g7, "w8a8", lambda m: m <= 16, 1.8)
    gm_row("W8A8, M <= 16, llama2-70b", g70, "w8a8", lambda m: m <= 16, 1.8)
    for name, rep, peer in (("llama2-7b", g7, p7), ("llama2-70b", g70, p70)):
        if not rep or not peer:
            row(f"W8A8 vs torch._int_mm, M >= 1024, {name}", "-", ">= 1.0x", None)
            continue
        ours = {(p["shape"], p["m"]): p["median_us"] for p in rep["points"] if p["kernel"] == "w8a8" and p["m"] >= 1024}
        # Also the sm_90a kernel by name, where it ran: the better of the two is what a route would take.
        wg = {(p["shape"], p["m"]): p["median_us"] for p in rep["points"] if p["kernel"] == "w8a8 [wgmma-tma]" and p["m"] >= 1024}
        theirs = {(p["shape"], p["m"]): p["median_us"] for p in peer.get("results", []) if p["kernel"] == "torch-int8"}
        r = [theirs[k] / ours[k] for k in ours if k in theirs]
        rw = [theirs[k] / wg[k] for k in wg if k in theirs]
        val = f"routed {min(r):.2f}-{max(r):.2f}x" if r else "routed -"
        if rw:
            val += f"; wgmma-tma {min(rw):.2f}-{max(rw):.2f}x"
        row(f"W8A8 vs torch._int_mm, M >= 1024, {name}", val, ">= 1.0x (routed kernel)", (min(r) >= 1.0) if r else None)
    if model:
        for scheme in sorted({v["scheme"] for p in model.get("points", []) for v in p["variants"]} - {"fp16"}):
            v = [(p["batch"] * p["seq"], x["speedup_vs_fp32"]) for p in model["points"] for x in p["variants"] if x["scheme"] == scheme]
            lo = min(s for _, s in v)
            row(f"whole-model prefill {scheme} (M = {','.join(str(m) for m, _ in v)})",
                " ".join(f"{s:.2f}x" for _, s in v), ">= 1.0x at every M", lo >= 1.0)
    else:
        row("whole-model prefill", "-", ">= 1.0x at every M", None)
    if kern:
        for r in kern.get("results", []):
            n = r["name"]
            if (n.startswith("quantize") and "11008x4096" in n) or n.startswith("histogram"):
                goal = 45.0 if n.startswith("histogram") else 70.0
                row(n, f"{r['pct_of_peak']:.0f}% of peak ({r['gb_s']:.0f} GB/s, {r['median_ms']:.3f} ms)", f">= {goal:.0f}%",
                    r["pct_of_peak"] >= goal)
    else:
        row("quantize / histogram bandwidth", "-", ">= 70% / 45%", None)
    w = max(len(r[0]) for r in rows)
    print(f"{'goal (issue 18)':<{w}}  {'measured':<48}  {'target':<22}  status")
    for what, value, goal, st in rows:
        print(f"{what:<{w}}  {value:<48}  {goal:<22}  {st}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
