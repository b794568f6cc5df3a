#!/usr/bin/env python3
"""numpy_rtn.py: the numpy baseline of `autoq quantize --bits 4 --granularity group
--group-size 128` (symmetric RTN, max search) for scripts/scale-bench.sh: the same weights
(every 2-D weight but embeddings and lm_head) of a BF16/F16/F32 safetensors checkpoint (a
file, or a directory with model.safetensors or model.safetensors.index.json), one tensor at
a time, vectorised the way numpy code is written: convert to float32, group amax, scale =
amax / 7.5, levels = clip(rint(w / scale), -8, 7), pack two nibbles per byte, and the error
sums of the report (signal, noise). Nothing is written. Prints the CPU seconds of the
process and GB of quantized input weights per CPU-second; with --check DIR (an autoq
quantize --out of the same checkpoint) it also compares the packed levels and scales with
autoq's, byte for byte.

    python3 scripts/numpy_rtn.py CHECKPOINT [--check QUANTIZED_DIR]
"""
import json
import mmap
import os
import struct
import sys
import time

import numpy as np

DTYPES = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}


def tensors(path):
    """Yields (name, dtype, shape, memoryview of the bytes) of every tensor."""
    if os.path.isdir(path):
        single = os.path.join(path, "model.safetensors")
        if os.path.exists(single):
            files = [single]
        else:
            with open(os.path.join(path, "model.safetensors.index.json")) as f:
                files = sorted({os.path.join(path, s) for s in json.load(f)["weight_map"].values()})
    else:
        files = [path]
    for fn in files:
        with open(fn, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        (n,) = struct.unpack("<Q", mm[:8])
        header = json.loads(mm[8 : 8 + n])
        header.pop("__metadata__", None)
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            a, b = info["data_offsets"]
            yield name, info["dtype"], info["shape"], memoryview(mm)[8 + n + a : 8 + n + b]


def as_f32(dtype, shape, buf):
    if dtype == "BF16":
        u = np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16
        return u.view(np.float32).reshape(shape)
    return np.frombuffer(buf, dtype=DTYPES[dtype]).astype(np.float32).reshape(shape)


def quantize(w):
    rows, cols = w.shape
    g = w.reshape(rows, cols // 128, 128)
    amax = np.abs(g).max(axis=2)
    scale = (amax / np.float32(7.5)).astype(np.float32)
    scale[scale == 0] = 1
    q = np.clip(np.rint(g / scale[:, :, None]), -8, 7)
    err = (q * scale[:, :, None] - g).ravel()
    flat = g.ravel()
    signal, noise = float(np.dot(flat, flat)), float(np.dot(err, err))
    qi = q.astype(np.int8).reshape(rows, cols)
    packed = ((qi[:, 0::2] & 0x0F) | (qi[:, 1::2] << 4)).astype(np.uint8)
    return packed, scale, signal, noise


def main():
    path = sys.argv[1]
    check = sys.argv[sys.argv.index("--check") + 1] if "--check" in sys.argv else None
    ref = {n: (d, s, b) for n, d, s, b in tensors(check)} if check else {}
    t0, w0 = time.process_time(), time.perf_counter()
    nbytes, count, signal, noise, mismatched = 0, 0, 0.0, 0.0, []
    for name, dtype, shape, buf in tensors(path):
        if len(shape) != 2 or dtype not in DTYPES or "embed" in name or name.startswith("lm_head"):
            continue
        packed, scale, s, n = quantize(as_f32(dtype, shape, buf))
        nbytes += len(buf)
        count += 1
        signal += s
        noise += n
        if check:
            _, _, qb = ref[name + ".qweight"]
            _, _, sb = ref[name + ".scales"]
            if bytes(qb) != packed.tobytes() or bytes(sb) != scale.astype("<f4").tobytes():
                mismatched.append(name)
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    print(f"numpy int4 g128 RTN: {count} tensors, {nbytes} bytes of weights, overall SQNR "
          f"{10 * np.log10(signal / noise):.2f} dB; cpu {cpu:.2f} s, wall {wall:.2f} s, "
          f"{nbytes / 1e9 / cpu:.3f} GB quantized weights per CPU-s")
    if check:
        print("levels and scales equal to autoq's:", "all" if not mismatched else f"no: {mismatched}")
        return 1 if mismatched else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
