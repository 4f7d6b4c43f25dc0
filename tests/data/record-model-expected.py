#!/usr/bin/python3
# record-model-expected.py — records llama.cpp's teacher-forced logits for the
# small models in tests/data into model-expected.json (used by
# tests/engine/test-model.c, which does not need llama.cpp).
# SPDX-License-Identifier: MIT
#
# The models were made with the refharness generator (gen/make_gguf.py of
# /work/shared/refharness, installed in ~/.cache/ruvllm-refharness):
#   make_gguf.py --preset tiny --n-vocab 512 --ftype f32 --seed 7 -o tiny-qwen2-f32.gguf
#   make_gguf.py --preset tiny-qwen3 --n-vocab 512 --ftype f32 --seed 7 -o tiny-qwen3-f32.gguf
#   make_gguf.py --preset tiny-llama3 --n-vocab 512 --ftype q8_0 --seed 7 \
#       --rope-scaling-factor 8 --rope-orig-ctx 32 -o tiny-llama3-q8_0.gguf
# (the last has rope_freqs.weight with factors that matter at short positions).
# For each: 8 prompt ids (random.Random(seed 5), range 0..400), llama.cpp's 16
# greedy tokens after them (lref gen), then lref score over all 24 tokens: the
# top-5 raw logits at every position.
#
#   /usr/bin/python3 tests/data/record-model-expected.py

import json
import os
import random
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.expanduser("~/.cache/ruvllm-refharness")
LREF = os.path.join(HARNESS, "llamacpp", "native", "build", "lref")
MODELS = ["tiny-qwen2-f32.gguf", "tiny-qwen3-f32.gguf", "tiny-llama3-q8_0.gguf"]


def lref(*args):
    out = subprocess.run([LREF] + list(args), check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    rng = random.Random(5)
    result = {
        "provenance": "lref (llama.cpp v0.4.0 prebuilt in node-llama-cpp 3.21.1, commit 5b4ebc5, "
                      "libggml-cpu-haswell, flash attention auto, KV f16, 2 threads) via "
                      "tests/data/record-model-expected.py",
        "models": [],
    }
    for name in MODELS:
        path = os.path.join(HERE, name)
        prompt = [rng.randrange(0, 400) for _ in range(8)]
        gen = lref("gen", path, "--tokens", ",".join(map(str, prompt)), "--n", "16",
                   "--top", "1", "--threads", "2")
        tokens = prompt + gen["tokens"]
        score = lref("score", path, "--tokens", ",".join(map(str, tokens)), "--top", "5",
                     "--threads", "2")
        positions = []
        for p in score["positions"]:
            positions.append([[t["id"], round(t["logit"], 5)] for t in p["top"]])
        result["models"].append({"file": name, "tokens": tokens, "top5": positions})
    with open(os.path.join(HERE, "model-expected.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
