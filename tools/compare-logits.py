#!/usr/bin/python3
# compare-logits.py — teacher-forced logits of ruvllm-cli vs llama.cpp (lref).
# SPDX-License-Identifier: MIT
#
# A development tool, not a test: it needs the refharness (llama.cpp's lref,
# installed by /work/shared/refharness/setup) and numpy; run it with
# /usr/bin/python3. For each model: a random prompt, llama.cpp's greedy
# continuation of it (lref gen), then both engines score prompt+continuation
# teacher-forced (lref score --dump / ruvllm-cli logits --dump) and every
# position's full logit vector is compared.
#
#   tools/compare-logits.py MODEL.gguf... [--prompt-len 8] [--n 24] [--seeds 1,2]
#
# Per model it prints: positions, top-1 agreement (all / not near-ties, where a
# near-tie is a llama.cpp top1-top2 margin below --near-tie), mean and max
# |difference| over llama.cpp's top-5 logits, and mean |difference| over the
# whole vocabulary. --json prints one JSON object per model instead.
#
# It also measures llama.cpp against itself: its decode path (the logits
# `lref gen` saw while generating) against its batched path (`lref score`) on
# the same positions. On random-weight models a rounding difference anywhere
# is amplified through the layers, so llama.cpp's two paths disagree too; the
# largest top-5 difference between them is the file's noise floor, and
# "top1-floor" counts agreement at positions whose llama.cpp margin exceeds it
# (the positions where either engine's rounding cannot decide the argmax).

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def find_cli():
    for d in ("build-model", "build", "_build"):
        p = os.path.join(HERE, "..", d, "engine", "ruvllm-cli")
        if os.path.exists(p):
            return os.path.abspath(p)
    return "ruvllm-cli"


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out


def n_vocab_of(lref, model):
    out = json.loads(run_json([lref, "score", model, "--tokens", "0,1", "--top", "1"]))
    return out["nVocab"]


def compare(args, model, seed):
    lref = os.path.join(args.refharness, "llamacpp", "native", "build", "lref")
    n_vocab = n_vocab_of(lref, model)
    rng = random.Random(seed)
    # Ordinary tokens: stay clear of the special/control ids at the end.
    hi = max(2, min(n_vocab - 300, 30000))
    prompt = [rng.randrange(0, hi) for _ in range(args.prompt_len)]
    t = ",".join(map(str, prompt))
    with tempfile.TemporaryDirectory() as tmp:
        gen_dump = os.path.join(tmp, "gen.f32")
        gen = json.loads(run_json([lref, "gen", model, "--tokens", t, "--n", str(args.n),
                                   "--top", "1", "--threads", str(args.threads),
                                   "--dump", gen_dump]))
        tokens = prompt + gen["tokens"]
        t = ",".join(map(str, tokens))
        ref_gen = np.fromfile(gen_dump, dtype="<f4").reshape(-1, n_vocab)
        ref_dump = os.path.join(tmp, "ref.f32")
        our_dump = os.path.join(tmp, "ours.f32")
        run_json([lref, "score", model, "--tokens", t, "--top", "1",
                  "--threads", str(args.threads), "--dump", ref_dump])
        env = dict(os.environ)
        if args.kernels:
            env["RUV_KERNELS"] = args.kernels
        subprocess.run([args.cli, "logits", "-m", model, "--tokens", t, "--top", "1",
                        "-t", str(args.threads), "--json", "--dump", our_dump],
                       check=True, capture_output=True, env=env)
        ref = np.fromfile(ref_dump, dtype="<f4").reshape(-1, n_vocab)
        ours = np.fromfile(our_dump, dtype="<f4").reshape(-1, n_vocab)
    assert ref.shape == ours.shape, (ref.shape, ours.shape)
    n = ref.shape[0]
    srt = np.sort(ref, axis=1)
    margin = srt[:, -1] - srt[:, -2]
    ref_top1 = ref.argmax(axis=1)
    our_top1 = ours.argmax(axis=1)
    agree = ref_top1 == our_top1
    tie = margin < args.near_tie
    top5 = np.argsort(-ref, axis=1)[:, :5]
    d5 = np.abs(np.take_along_axis(ref, top5, 1) - np.take_along_axis(ours, top5, 1))
    dall = np.abs(ref - ours)
    # Where the argmax differs: how far below our top-1 llama.cpp's token is.
    gap = [float(ours[i, our_top1[i]] - ours[i, ref_top1[i]]) for i in range(n) if not agree[i]]
    # llama.cpp against itself: decode logits vs batched logits, same positions.
    p0 = len(prompt) - 1
    m = min(ref_gen.shape[0], n - p0)
    rs = ref[p0:p0 + m]
    rg = ref_gen[:m]
    top5s = np.argsort(-rs, axis=1)[:, :5]
    self5 = np.abs(np.take_along_axis(rs, top5s, 1) - np.take_along_axis(rg, top5s, 1))
    floor = float(self5.max())
    self_agree = int((rs.argmax(axis=1) == rg.argmax(axis=1)).sum())
    decided = margin >= floor
    return dict(model=os.path.basename(model), seed=seed, positions=int(n),
                self_positions=int(m), self_top1_agree=self_agree,
                self_top5_mean_abs=float(self5.mean()), noise_floor=floor,
                decided=int(decided.sum()), top1_agree_decided=int((agree & decided).sum()),
                top1_agree=int(agree.sum()), near_ties=int(tie.sum()),
                top1_agree_not_tie=int((agree | tie).sum()),
                top5_mean_abs=float(d5.mean()), top5_max_abs=float(d5.max()),
                all_mean_abs=float(dall.mean()), all_max_abs=float(dall.max()),
                max_gap_where_differs=max(gap) if gap else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--refharness", default=os.path.expanduser("~/.cache/ruvllm-refharness"))
    ap.add_argument("--cli", default=find_cli())
    ap.add_argument("--prompt-len", type=int, default=8)
    ap.add_argument("--n", type=int, default=24, help="llama.cpp greedy tokens to score")
    ap.add_argument("--seeds", default="1", help="prompt seeds, comma separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--near-tie", type=float, default=0.02)
    ap.add_argument("--kernels", default=None, help="RUV_KERNELS for ruvllm-cli (e.g. ref)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    if not args.json:
        print("%-24s %4s %9s %9s %9s %9s %9s %9s %9s %10s" % (
            "model", "pos", "top1", "top1-nt", "top5 mean", "top5 max", "self top1",
            "self mean", "floor", "top1-floor"))
    for model in args.models:
        for seed in [int(s) for s in args.seeds.split(",")]:
            r = compare(args, model, seed)
            if args.json:
                print(json.dumps(r))
            else:
                print("%-24s %4d %4d/%-4d %4d/%-4d %9.4f %9.4f %4d/%-4d %9.4f %9.3f %4d/%-4d" % (
                    r["model"][:24], r["positions"], r["top1_agree"], r["positions"],
                    r["top1_agree_not_tie"], r["positions"], r["top5_mean_abs"],
                    r["top5_max_abs"], r["self_top1_agree"], r["self_positions"],
                    r["self_top5_mean_abs"], r["noise_floor"], r["top1_agree_decided"],
                    r["decided"]))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
