"""quant-k-hashes.py — expected sha256 values of tests/kernels/test-quant-k.c.

Quantizes the test's deterministic input (the same LCG as lcg_input() in the C
test) with the refharness numpy ports (gguflib, exact family) and with the
libggml-base.so shipped in node-llama-cpp 3.21.1 (llama.cpp release v0.4.0,
commit 5b4ebc5), and prints the sha256 of the blocks and of their
dequantization. Run from the refharness toolkit directory:

  cd ~/.cache/ruvllm-refharness && /usr/bin/python3 /work/main/tests/kernels/quant-k-hashes.py

Not run by the test suite (the project does not depend on the refharness).
"""
import sys, hashlib
import numpy as np
sys.path.insert(0, "gen")
import gguflib as g

def lcg_input(nblocks, seed=20240607):
    st = seed
    out = np.empty(nblocks * 256, dtype=np.float32)
    for b in range(nblocks):
        kind = b % 8
        for e in range(256):
            s = -131070
            for _ in range(4):
                st = (st * 1664525 + 1013904223) & 0xFFFFFFFF
                s += st >> 16
            v = [s * 2.0**-16, s * 2.0**-9, 0.0, abs(s) * 2.0**-16 + 0.25,
                 40.0 if e == 37 else s * 2.0**-16, s * 2.0**-40, 0.5,
                 s * 2.0**-14 if e % 5 == 0 else 0.0][kind]
            out[b * 256 + e] = v
    return out

def q8_k(x):
    F = np.float32
    out = bytearray()
    for blk in x.reshape(-1, 256):
        amax = F(0); mx = F(0)
        for v in blk:
            if abs(v) > amax: amax = abs(v); mx = v
        if amax == 0:
            out += bytes(292); continue
        iscale = F(-127) / mx
        q = np.minimum(127, np.rint(iscale * blk)).astype(np.int8)
        bs = q.reshape(16, 16).astype(np.int32).sum(axis=1).astype("<i2")
        out += np.array([F(1) / iscale], dtype="<f4").tobytes() + q.tobytes() + bs.tobytes()
    return bytes(out)

x = lcg_input(256)
print("input", hashlib.sha256(x.tobytes()).hexdigest())
for name, t in (("q4_K", g.Q4_K), ("q5_K", g.Q5_K), ("q6_K", g.Q6_K)):
    print(name, hashlib.sha256(g.quantize(x, t, exact=True).tobytes()).hexdigest())
print("q8_K", hashlib.sha256(q8_k(x)).hexdigest())

# The same through the libggml-base.so that llama.cpp ships (node-llama-cpp 3.21.1).
import ctypes, os
lib = ctypes.CDLL(os.path.join("llamacpp", "node_modules", "@node-llama-cpp", "linux-x64", "bins",
                               "linux-x64", "libggml-base.so"))
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                    ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
class Traits(ctypes.Structure):
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64), ("blck_size_interleave", ctypes.c_int64),
                ("type_size", ctypes.c_size_t), ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]
lib.ggml_get_type_traits.restype = ctypes.POINTER(Traits)
for name, t, ts in (("q4_K", 12, 144), ("q5_K", 13, 176), ("q6_K", 14, 210)):
    out = np.zeros(x.size // 256 * ts, dtype=np.uint8)
    lib.ggml_quantize_chunk(t, x.ctypes.data, out.ctypes.data, 0, 1, x.size, None)
    print("ggml", name, hashlib.sha256(out.tobytes()).hexdigest())
out = np.zeros(x.size // 256 * 292, dtype=np.uint8)   # zero: ggml leaves bsums of an all-zero block unwritten
lib.quantize_row_q8_K_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
lib.quantize_row_q8_K_ref(x.ctypes.data, out.ctypes.data, x.size)
print("ggml q8_K", hashlib.sha256(out.tobytes()).hexdigest())
to_float_t = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
for name, t, ts in (("q4_K", 12, 144), ("q5_K", 13, 176), ("q6_K", 14, 210), ("q8_K", 15, 292)):
    raw = np.zeros(x.size // 256 * ts, dtype=np.uint8)
    if t == 15:
        lib.quantize_row_q8_K_ref(x.ctypes.data, raw.ctypes.data, x.size)
    else:
        lib.ggml_quantize_chunk(t, x.ctypes.data, raw.ctypes.data, 0, 1, x.size, None)
    y = np.zeros(x.size, dtype=np.float32)
    if t == 15:   # Q8_K has no to_float in the traits table
        lib.dequantize_row_q8_K.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        lib.dequantize_row_q8_K(raw.ctypes.data, y.ctypes.data, y.size)
    else:
        to_float_t(lib.ggml_get_type_traits(t).contents.to_float)(raw.ctypes.data, y.ctypes.data, y.size)
    print("ggml dequant", name, hashlib.sha256(y.tobytes()).hexdigest())
