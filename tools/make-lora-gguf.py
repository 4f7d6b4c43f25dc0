#!/usr/bin/python3
# make-lora-gguf.py — write a random GGUF LoRA adapter for a base model in the
# layout of llama.cpp's convert_lora_to_gguf.py (made outside ruvllm, to check
# that ruvllm loads adapters it did not write).
# SPDX-License-Identifier: MIT
#
# Layout: general.architecture = the base model's, general.type = "adapter",
# adapter.type = "lora", adapter.lora.alpha (f32); per adapted weight
# W = blk.N.<stem>.weight of ne {n_in, n_out}: "<W>.lora_a" ne {n_in, r} and
# "<W>.lora_b" ne {r, n_out}, applied by llama.cpp as W x + (alpha / r) B (A x).
# Tensors are F16 by default (convert_lora_to_gguf's default outtype), F32
# with --f32. Needs the refharness GGUF reader/writer (numpy): run with
# /usr/bin/python3, REFHARNESS=~/.cache/ruvllm-refharness by default.
#
#   tools/make-lora-gguf.py MODEL.gguf OUT.gguf [--targets attn_q,attn_v,ffn_up]
#                           [--layers 0,1] [--rank 4] [--alpha 8] [--scale 0.05] [--seed 1]
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.environ.get("REFHARNESS",
                                               os.path.expanduser("~/.cache/ruvllm-refharness")),
                                "gen"))
import gguflib  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--targets", default="attn_q,attn_v,ffn_up")
    ap.add_argument("--layers", default="")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--f32", action="store_true")
    a = ap.parse_args()

    base = gguflib.GGUFReader(a.model)
    arch = base.kv["general.architecture"]
    n_layer = int(base.kv["%s.block_count" % arch])
    layers = [int(x) for x in a.layers.split(",")] if a.layers else list(range(n_layer))
    rng = np.random.default_rng(a.seed)
    ttype = gguflib.F32 if a.f32 else gguflib.F16
    npty = np.float32 if a.f32 else np.float16

    w = gguflib.GGUFWriter()
    w.add_str("general.architecture", arch)
    w.add_str("general.type", "adapter")
    w.add_str("adapter.type", "lora")
    w.add_f32("adapter.lora.alpha", a.alpha)
    data = {}
    for il in layers:
        for stem in a.targets.split(","):
            name = "blk.%d.%s.weight" % (il, stem)
            if name not in base.tensors:
                sys.exit("base model has no %s" % name)
            ne = base.tensors[name][0]
            n_in, n_out = int(ne[0]), int(ne[1])
            # A rows of n_in (ne {n_in, r}), B rows of r (ne {r, n_out}); B non-zero so the
            # adapter changes the logits (a trained adapter, not a fresh one)
            A = (rng.standard_normal((a.rank, n_in)) / np.sqrt(n_in)).astype(npty)
            B = (rng.standard_normal((n_out, a.rank)) * a.scale).astype(npty)
            w.add_tensor(name + ".lora_a", [n_in, a.rank], ttype)
            w.add_tensor(name + ".lora_b", [a.rank, n_out], ttype)
            data[name + ".lora_a"] = A.view(np.uint8)
            data[name + ".lora_b"] = B.view(np.uint8)
    w.write(a.out, lambda n: data[n])
    print("%s: %d LoRA pairs for %s (%s), rank %d, alpha %g, %s" %
          (a.out, len(data) // 2, os.path.basename(a.model), arch, a.rank, a.alpha,
           "F32" if a.f32 else "F16"))


if __name__ == "__main__":
    main()
