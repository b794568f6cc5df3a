#!/usr/bin/env python3
"""Peer timings for `autoq bench gemm`: the same (shape, M) points timed with PyTorch.

Kernels (each guarded: a missing op or an unsupported shape prints a note, never a crash):
  torch-f16     torch.matmul(A f16 [M,K], W f16 [N,K].t())          (cuBLAS through PyTorch)
  torch-int8    torch._int_mm(A int8 [M,K], W int8 [N,K].t())       (M > 16 only)
  torch-int4    torch._weight_int4pack_mm(A bf16, W packed, 128, scales_and_zeros), if present

Timing repeats autoq's method (`autoq bench gemm`): untimed warm-up, then the stream is held
by a spin kernel (torch.cuda._sleep) long enough for the host to queue every timed call, so the
calls run back to back and CUDA events around each call measure the kernel, not Python's
launch overhead (issue 18: run 1 timed one call at a time, which inflated the peers' times at
small M); weights rotated through copies totalling more than 2x the L2 cache; median and p90
per point. --method graph instead captures 10 calls in a CUDA graph and times its replays
(per-call time = replay / 10; median and p90 over the replays): no launch gaps at all.

  python3 scripts/peer_gemm.py --quick --json peer.json
  python3 scripts/peer_gemm.py --preset llama2-70b --m 1,16,128,1024 --iters 50
"""
import argparse
import json
import math
import sys
import time

PRESETS = {
    "llama2-7b": [("qkv", 4096, 12288), ("o", 4096, 4096), ("gate_up", 4096, 22016), ("down", 11008, 4096)],
    "llama3-8b": [("qkv", 4096, 6144), ("o", 4096, 4096), ("gate_up", 4096, 28672), ("down", 14336, 4096)],
    "llama2-70b": [("qkv", 8192, 10240), ("o", 8192, 8192), ("gate_up", 8192, 57344), ("down", 28672, 8192)],
}
DEFAULT_MS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
QUICK_MS = [1, 16, 128, 1024]


def percentile(v, p):
    s = sorted(v)
    r = max(1, int(math.ceil(p / 100.0 * len(s))))
    return s[r - 1]


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="llama2-7b", choices=sorted(PRESETS))
    ap.add_argument("--shape", action="append", default=[], help="K,N (repeatable; replaces the preset)")
    ap.add_argument("--m", default="", help="comma-separated M values")
    ap.add_argument("--iters", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=-1)
    ap.add_argument("--quick", action="store_true", help="llama2-7b (or --preset), M 1,16,128,1024, 50 iterations")
    ap.add_argument("--method", default="queued", choices=["queued", "graph"], help="queued launches behind a spin kernel, or CUDA graph replays")
    ap.add_argument("--timeout", type=float, default=0, help="seconds; stop starting new points after this")
    ap.add_argument("--json", default="", help="write results to FILE")
    args = ap.parse_args()

    try:
        import torch
    except Exception as e:  # noqa: BLE001
        print(f"peer_gemm: PyTorch is not available: {e}", file=sys.stderr)
        return 1
    if not torch.cuda.is_available():
        print("peer_gemm: no CUDA device visible to PyTorch", file=sys.stderr)
        return 1

    shapes = []
    for s in args.shape:
        k, n = (int(x) for x in s.replace("x", ",").split(","))
        shapes.append((f"{k}x{n}", k, n))
    if not shapes:
        shapes = PRESETS[args.preset]
    ms = [int(x) for x in args.m.split(",")] if args.m else (QUICK_MS if args.quick else DEFAULT_MS)
    iters = args.iters or 50
    warmup = args.warmup if args.warmup >= 0 else (5 if args.quick else 10)
    timeout = args.timeout or (50.0 if args.quick else 600.0)

    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    l2 = getattr(props, "L2_cache_size", 50 << 20) or (50 << 20)
    print(f"PyTorch {torch.__version__} on {props.name} (sm_{props.major}{props.minor}, {props.multi_processor_count} SMs, L2 {l2 >> 20} MiB); "
          f"timing: {args.method}, {iters} iterations per point after {warmup} warm-up")
    notes = []
    has_int4 = hasattr(torch.ops.aten, "_weight_int4pack_mm") and hasattr(torch.ops.aten, "_convert_weight_to_int4pack")
    if not has_int4:
        notes.append("torch-int4: torch._weight_int4pack_mm not present in this PyTorch")

    def copies(nbytes):
        return max(1, min(64, (2 * l2) // max(1, nbytes) + 1))

    # Clock cycles the spin kernel holds the stream while the host queues the timed calls:
    # ~60 us of host time per call (two event records and one op), at most ~1 s, counted at
    # 2 GHz (an H100's SM clock is at most 1.98 GHz, so the hold is never too short).
    cycles_per_s = 2.0e9

    def time_queued(fn, nw):
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        for i in range(warmup):
            fn(i % nw)
        torch.cuda.synchronize()
        torch.cuda._sleep(int(min(1.0, iters * 60e-6) * cycles_per_s))
        for i in range(iters):
            starts[i].record()
            fn((warmup + i) % nw)
            ends[i].record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) for s, e in zip(starts, ends)]

    def time_graph(fn, nw):
        per = 10
        for i in range(warmup):
            fn(i % nw)
        torch.cuda.synchronize()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on the capture stream, as torch requires
            for i in range(3):
                fn(i % nw)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for i in range(per):
                fn(i % nw)
        reps = max(5, (iters + per - 1) // per)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        g.replay()
        torch.cuda.synchronize()
        for r in range(reps):
            starts[r].record()
            g.replay()
            ends[r].record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) / per for s, e in zip(starts, ends)]

    time_it = time_graph if args.method == "graph" else time_queued

    results = []
    t0 = time.time()
    maxm = max(ms)
    truncated = ""
    for name, K, N in shapes:
        if time.time() - t0 > timeout:
            truncated = f"timeout {timeout}s before shape {name}"
            break
        g = torch.Generator(device=dev).manual_seed(1)
        a16 = (torch.rand(maxm, K, device=dev, generator=g) * 2 - 1).half()
        w16 = [((torch.rand(N, K, device=dev, generator=g) * 2 - 1) * 0.05).half() for _ in range(copies(2 * N * K))]
        a8 = torch.randint(-127, 128, (maxm, K), device=dev, dtype=torch.int8, generator=g)
        w8 = [torch.randint(-127, 128, (N, K), device=dev, dtype=torch.int8, generator=g) for _ in range(copies(N * K))]
        w4, sz, a_bf = [], None, None
        if has_int4:
            try:
                a_bf = a16.to(torch.bfloat16)
                for _ in range(copies(N * K // 2)):
                    q = torch.randint(0, 16, (N, K), device=dev, dtype=torch.int32, generator=g)
                    try:  # PyTorch >= 2.5: uint8 [N, K/2], two nibbles per byte
                        packed = torch.ops.aten._convert_weight_to_int4pack((q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8), 8)
                    except Exception:  # noqa: BLE001  older: int32 [N, K]
                        packed = torch.ops.aten._convert_weight_to_int4pack(q, 8)
                    w4.append(packed)
                sz = torch.rand(K // 128, N, 2, device=dev, generator=g).to(torch.bfloat16) * 0.01
            except Exception as e:  # noqa: BLE001
                notes.append(f"torch-int4 at {name}: {type(e).__name__}: {e}")
                w4 = []
        for M in ms:
            if time.time() - t0 > timeout:
                truncated = f"timeout {timeout}s at shape {name} M={M}"
                break
            kernels = [("torch-f16", lambda i: torch.matmul(a16[:M], w16[i].t()), len(w16), 2 * (M * K + N * K + M * N))]
            if M > 16:
                kernels.append(("torch-int8", lambda i: torch._int_mm(a8[:M], w8[i].t()), len(w8), M * K + N * K + 4 * M * N))
            if w4:
                kernels.append(("torch-int4", lambda i: torch.ops.aten._weight_int4pack_mm(a_bf[:M], w4[i], 128, sz), len(w4),
                                2 * M * K + N * K // 2 + 4 * N * K // 128 + 2 * M * N))
            base = None
            for kname, fn, nw, nbytes in kernels:
                try:
                    v = time_it(fn, nw)
                except Exception as e:  # noqa: BLE001
                    notes.append(f"{kname} at {name} M={M}: {type(e).__name__}: {str(e)[:200]}")
                    continue
                med, p90 = median(v), percentile(v, 90)
                if kname == "torch-f16":
                    base = med
                sec = med / 1e3
                results.append(dict(shape=name, k=K, n=N, m=M, kernel=kname, median_us=med * 1e3, p90_us=p90 * 1e3,
                                    tflops=2.0 * M * N * K / sec / 1e12, gb_per_s=nbytes / sec / 1e9,
                                    speedup_vs_torch_f16=(base / med) if base else None, iters=len(v), method=args.method))
        if truncated:
            break
        del a16, w16, a8, w8, w4
        torch.cuda.empty_cache()

    hdr = f"{'shape':>8} {'K':>6} {'N':>6} {'M':>5} {'kernel':>11} {'median_us':>10} {'p90_us':>10} {'TFLOP/s':>8} {'GB/s':>8} {'vs f16':>7}"
    print(hdr)
    for r in results:
        sp = f"{r['speedup_vs_torch_f16']:.2f}x" if r["speedup_vs_torch_f16"] else "-"
        print(f"{r['shape']:>8} {r['k']:>6} {r['n']:>6} {r['m']:>5} {r['kernel']:>11} {r['median_us']:>10.2f} {r['p90_us']:>10.2f} "
              f"{r['tflops']:>8.2f} {r['gb_per_s']:>8.1f} {sp:>7}")
    for n in notes:
        print("note:", n)
    if truncated:
        print("SWEEP TRUNCATED:", truncated)
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(dict(torch=torch.__version__, device=props.name, method=args.method, iters=iters, results=results, notes=notes,
                           truncated=truncated), f, indent=2)
        import os
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
