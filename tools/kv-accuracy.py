#!/usr/bin/python3
# kv-accuracy.py — teacher-forced accuracy of the quantized KV store against
# an FP16 cache (and FP16 against the f32 cache), with ruvllm-cli logits.
# SPDX-License-Identifier: MIT
#
# A development tool, not a test (needs numpy; run with /usr/bin/python3):
#
#   tools/kv-accuracy.py --cli build/engine/ruvllm-cli MODEL.gguf... \
#       [--n 1000] [--seed 1] [--tail 256] [--stores q8,q4,q4@0] [--margin 0.5]
#       [--text random|sampled] [--lref LREF] [--json]
#
# (q4@N: a Q4 store whose first N layers store Q8, --kv-q8-layers N; q4 alone
# takes the default, 1.)
#
# For each model: n random token ids (seeded; --text sampled: 16 random ids
# and then the model's own continuation, sampled with generate's default
# parameters and the seed, FP16 cache, i.e. text as a chat would produce it
# rather than random ids, whose predictions are close to ties), scored
# teacher-forced with
# --kv-store f32, f16 and each quantized store (--kv-tail tail, -t 2, full
# logits through --dump). Per store it prints top-1 agreement with FP16 over
# all positions, and over the "clean" positions (FP16 and f32 agree on top-1
# and FP16's top1 - top2 logit margin is at least --margin, so that a flip
# is not a near-tie of random weights), and the mean |delta log p(next)|
# (log-probability of the actual next token) against FP16.
#
# Per layer it also prints the relative error of the attention output,
# sqrt (sum |o - o16|^2 / sum |o16|^2) over all positions, measured inside the
# quantized run (RUVLLM_KV_ATTN_ERR: a shadow FP16 cache gets the same keys,
# values and queries), so each layer's figure is its own store error, not
# what earlier layers passed on. FP16 against f32 is the noise floor: on
# random-weight models a top-1 flip needs only a rounding-sized change.
#
# --lref (the refharness's llamacpp/native/build/lref) measures llama.cpp's
# own caches the same way on the same tokens: its q8_0 and q4_0 K/V caches
# against its F16 cache (flash attention on, its default), and its f32
# cache against F16 with flash attention off (on, it computes in F16
# whatever the cache type). Its quantized caches hold every token
# quantized; ours keep the last --tail tokens in FP16.

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np


def n_vocab_of (cli, model):
  out = subprocess.run ([cli, "logits", "-m", model, "--tokens", "1", "--json", "--top", "1",
                         "--kv-store", "f32"], capture_output=True, text=True, check=True)
  for line in out.stdout.splitlines ():
    if line.startswith ("{") and '"n_vocab"' in line:
      return json.loads (line)["n_vocab"]
  return None


def score (cli, model, tokens, store, tail, threads, tmp):
  """Logits (positions, vocab) and the per-layer attention-output relative
  errors against the shadow FP16 cache (empty for f32)."""
  dump = os.path.join (tmp, "logits-%s.f32" % store.replace ("@", "-"))
  # "q4@0": a Q4 store with --kv-q8-layers 0 (no Q8 first layer)
  store, _, q8l = store.partition ("@")
  cmd = [cli, "logits", "-m", model, "--tokens", ",".join (map (str, tokens)), "--json",
         "--top", "1", "--kv-store", store, "--kv-tail", str (tail), "-t", str (threads),
         "--dump", dump] + (["--kv-q8-layers", q8l] if q8l else [])
  env = dict (os.environ)
  if store != "f32":
    env["RUVLLM_KV_ATTN_ERR"] = "1"
  out = subprocess.run (cmd, capture_output=True, text=True, env=env)
  if out.returncode != 0:
    sys.exit ("%s failed: %s" % (" ".join (cmd[:3]), out.stderr))
  errs = [float (line.split ()[4]) for line in out.stderr.splitlines ()
          if line.startswith ("kv-attn-err layer ")]
  x = np.fromfile (dump, dtype=np.float32)
  return x.reshape (len (tokens), -1), errs


def lref_score (lref, model, tokens, ctype, fa, threads, tmp):
  """llama.cpp's logits (positions, vocab), teacher-forced, K and V caches
  of type ctype."""
  dump = os.path.join (tmp, "lref-%s-%s.f32" % (ctype, fa))
  cmd = [lref, "score", model, "--tokens", ",".join (map (str, tokens)), "--top", "1",
         "--dump", dump, "--ctk", ctype, "--ctv", ctype, "--fa", fa, "--threads", str (threads)]
  out = subprocess.run (cmd, capture_output=True, text=True)
  if out.returncode != 0:
    sys.exit ("%s failed: %s" % (" ".join (cmd[:3]), out.stderr[-2000:]))
  return np.fromfile (dump, dtype=np.float32).reshape (len (tokens), -1)


def compare (q, ref, tokens, clean):
  """top-1 agreement of q with ref (all positions, clean ones) and |delta
  log p(next)|."""
  agree = q.argmax (axis=1) == ref.argmax (axis=1)
  nxt = np.array (tokens[1:])
  rows = np.arange (len (tokens) - 1)
  dlp = np.abs (log_softmax (q)[rows, nxt] - log_softmax (ref)[rows, nxt])
  return { "top1": float (agree.mean ()), "top1_clean": float (agree[clean].mean ()),
           "mean_abs_dlogp_next": float (dlp.mean ()), "max_abs_dlogp_next": float (dlp.max ()) }


def sampled_text (cli, model, prompt, n, seed, threads):
  """prompt and then the model's own continuation up to n tokens (FP16 cache,
  generate's default sampling, the seed); restarted after an end of turn."""
  toks = list (prompt)
  while len (toks) < n:
    out = subprocess.run ([cli, "generate", "-m", model, "--tokens", ",".join (map (str, toks)),
                           "-n", str (n - len (toks)), "--seed", str (seed), "--kv-store", "f16",
                           "-t", str (threads), "-c", str (n + 16), "--json"],
                          capture_output=True, text=True, check=True)
    ids = [json.loads (l)["id"] for l in out.stdout.splitlines ()
           if l.startswith ("{") and '"id"' in l]
    if not ids:
      break
    toks += ids
  return toks[:n]


def log_softmax (x):
  m = x.max (axis=1, keepdims=True)
  return x - m - np.log (np.exp (x - m).sum (axis=1, keepdims=True))


def main ():
  ap = argparse.ArgumentParser ()
  ap.add_argument ("models", nargs="+")
  ap.add_argument ("--cli", required=True)
  ap.add_argument ("--n", type=int, default=1000)
  ap.add_argument ("--seed", type=int, default=1)
  ap.add_argument ("--tail", type=int, default=256)
  ap.add_argument ("--threads", type=int, default=2)
  ap.add_argument ("--stores", default="q8,q4")
  ap.add_argument ("--margin", type=float, default=0.5)
  ap.add_argument ("--vocab", type=int, default=0, help="token ids drawn below this (0: 4096)")
  ap.add_argument ("--text", choices=["random", "sampled"], default="random")
  ap.add_argument ("--lref", help="llama.cpp's lref: measure its q8_0/q4_0/f32 caches too")
  ap.add_argument ("--json", action="store_true")
  args = ap.parse_args ()

  for model in args.models:
    rng = random.Random (args.seed)
    hi = args.vocab if args.vocab > 0 else 4096
    tokens = [rng.randrange (10, hi) for _ in range (args.n)]
    if args.text == "sampled":
      tokens = sampled_text (args.cli, model, tokens[:16], args.n, args.seed, args.threads)
    with tempfile.TemporaryDirectory () as tmp:
      f32, _ = score (args.cli, model, tokens, "f32", args.tail, args.threads, tmp)
      f16, _ = score (args.cli, model, tokens, "f16", args.tail, args.threads, tmp)
      top16 = f16.argmax (axis=1)
      srt = np.sort (f16, axis=1)
      margin = srt[:, -1] - srt[:, -2]
      clean = (top16 == f32.argmax (axis=1)) & (margin >= args.margin)
      res = { "model": os.path.basename (model), "positions": len (tokens),
              "text": args.text, "distinct_tokens": len (set (tokens)),
              "f16_vs_f32_top1": float ((top16 == f32.argmax (axis=1)).mean ()),
              "clean_positions": int (clean.sum ()), "stores": {} }
      for st in args.stores.split (","):
        q, errs = score (args.cli, model, tokens, st, args.tail, args.threads, tmp)
        res["stores"][st] = compare (q, f16, tokens, clean)
        res["stores"][st]["attn_rel_err"] = errs
      if args.lref:
        # llama.cpp's clean positions: its own F16 and f32 caches agree and
        # its F16 margin is at least --margin
        l16 = lref_score (args.lref, model, tokens, "f16", "on", args.threads, tmp)
        l16off = lref_score (args.lref, model, tokens, "f16", "off", args.threads, tmp)
        l32 = lref_score (args.lref, model, tokens, "f32", "off", args.threads, tmp)
        ls = np.sort (l16, axis=1)
        lclean = ((l16off.argmax (axis=1) == l32.argmax (axis=1)) &
                  (ls[:, -1] - ls[:, -2] >= args.margin))
        res["llamacpp"] = { "f32_vs_f16": compare (l32, l16off, tokens, lclean) }
        for ct in ("q8_0", "q4_0"):
          res["llamacpp"][ct] = compare (lref_score (args.lref, model, tokens, ct, "on",
                                                     args.threads, tmp), l16, tokens, lclean)
    if args.json:
      print (json.dumps (res))
    else:
      print ("%s: %d positions (%s text, %d distinct tokens), FP16 vs f32 top-1 %.1f%%, "
             "%d clean positions"
             % (res["model"], res["positions"], res["text"], res["distinct_tokens"],
                100 * res["f16_vs_f32_top1"], res["clean_positions"]))
      for st, r in res["stores"].items ():
        print ("  %s vs FP16: top-1 %.1f%%, clean %.1f%%, mean |dlogp(next)| %.4f (max %.3f)"
               % (st, 100 * r["top1"], 100 * r["top1_clean"], r["mean_abs_dlogp_next"],
                  r["max_abs_dlogp_next"]))
        e = r["attn_rel_err"]
        if e:
          print ("    attention-output relative error per layer: mean %.2e, layer 0 %.2e, "
                 "max %.2e (layer %d)" % (np.mean (e), e[0], max (e), int (np.argmax (e))))
          print ("    " + " ".join ("%.1e" % x for x in e))
      for ct, r in res.get ("llamacpp", {}).items ():
        print ("  llama.cpp %s vs its F16: top-1 %.1f%%, clean %.1f%%, mean |dlogp(next)| %.4f "
               "(max %.3f)" % (ct.replace ("_vs_f16", ""), 100 * r["top1"], 100 * r["top1_clean"],
                               r["mean_abs_dlogp_next"], r["max_abs_dlogp_next"]))


if __name__ == "__main__":
  main ()
