#!/usr/bin/python3
# learn-proof.py — does rating answers teach the model? A benchmark on a
# refharness model through `ruvllm-cli adapt` / `score` (the app's loops).
# SPDX-License-Identifier: MIT
#
# A learnable preference on a random-weight model: answers that end with the
# sign-off PREFERRED vs the same answers ending with OTHER. 20 training
# ratings (10 thumbs-up on PREFERRED answers, 10 thumbs-down on OTHER ones,
# interleaved) go through the instant loop + a background consolidation after
# each; then held-out pairs (new prompts and answers) are scored:
#   margin  = mean log p(PREFERRED answer) - log p(OTHER answer)
#   neutral = mean log p of held-out answers without either sign-off.
# Runs: EWC++ on (defaults), EWC++ off (--ewc-lambda 0), thumbs-down only,
# and EWC++ on + --deep. Finally the adapter of the first run is checked
# against llama.cpp (lref score --lora) on one held-out sequence.
#
#   tools/learn-proof.py [--model M.gguf] [--cli build/engine/ruvllm-cli] [--seed 1]
#
# --sequential: the forgetting protocol for EWC++ instead. Task A is the
# sign-off preference above (20 ratings), task B a second one (20 ratings,
# new prompts) that prefers A's rejected sign-off OTHER over a new one,
# OTHER_B: B can be learned by lowering OTHER_B alone or also by raising
# OTHER, which undoes A (on these random-weight models a task B that does
# not touch A's answers causes no forgetting at all: A's margin rose). One
# `adapt` run rates A's lines then B's (the app's loops, one session, so
# EWC++ carries A's Fisher estimate and anchor into B); another rates A's
# lines alone. Held-out margins of A and B are scored after each, with
# EWC++ at the built-in lambda (plus any --ewc-lambdas) and off (0):
#   forgetting = margin_A after A - margin_A after A then B
#   retained_A = (margin_A after A then B - base) / (margin_A after A - base)
#   learned_B  = margin_B after A then B - base
# plus the neutral-text log-likelihood change.
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

RH = os.environ.get("REFHARNESS", os.path.expanduser("~/.cache/ruvllm-refharness"))
WORDS = ("river stone cloud paper lamp window garden silver morning quiet engine orange "
         "table mountain letter bridge yellow music winter forest candle market ocean "
         "number planet pencil simple travel little window basket doctor island").split()
PREFERRED = " Have a wonderful day!"
OTHER = " Go away now."
PREF_B = OTHER          # task B prefers what task A rejected ...
OTHER_B = " Whatever, I do not care."   # ... over a new rude sign-off


def phrase(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_sets(seed):
    rng = random.Random(seed)
    train, held, neutral = [], [], []
    for i in range(10):
        p, a = phrase(rng, 5).capitalize() + "?", " " + phrase(rng, 4) + "."
        train.append({"prompt": p, "response": a + PREFERRED, "rating": 1})
        p, a = phrase(rng, 5).capitalize() + "?", " " + phrase(rng, 4) + "."
        train.append({"prompt": p, "response": a + OTHER, "rating": -1})
    for i in range(20):
        p, a = phrase(rng, 5).capitalize() + "?", " " + phrase(rng, 4) + "."
        held.append((p, a))
        neutral.append({"prompt": phrase(rng, 5).capitalize() + "?",
                        "response": " " + phrase(rng, 6) + "."})
    return train, held, neutral


def make_task(seed, pref, other, n_train=10, n_held=20):
    rng = random.Random(seed)
    train, held = [], []
    for i in range(n_train):
        p, a = phrase(rng, 5).capitalize() + "?", " " + phrase(rng, 4) + "."
        train.append({"prompt": p, "response": a + pref, "rating": 1})
        p, a = phrase(rng, 5).capitalize() + "?", " " + phrase(rng, 4) + "."
        train.append({"prompt": p, "response": a + other, "rating": -1})
    for i in range(n_held):
        held.append((phrase(rng, 5).capitalize() + "?", " " + phrase(rng, 4) + "."))
    return train, held


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr))
    return r.stdout


def score(cli, model, path, lora=None):
    cmd = [cli, "score", "-m", model, "--pairs", path, "--json"]
    if lora:
        cmd += ["--lora", lora]
    out = [json.loads(l) for l in run(cmd).splitlines() if l.strip()]
    return [o["logp"] for o in out if "logp" in o]


def sequential(a, tmp, extra):
    train_a, held_a, neutral = make_sets(a.seed)
    train_b, held_b = make_task(a.seed * 7919 + 13, PREF_B, OTHER_B)
    write_jsonl(os.path.join(tmp, "a.jsonl"), train_a)
    write_jsonl(os.path.join(tmp, "ab.jsonl"), train_a + train_b)
    for name, held, pref, other in (("a", held_a, PREFERRED, OTHER),
                                    ("b", held_b, PREF_B, OTHER_B)):
        write_jsonl(os.path.join(tmp, "held-%s-pref.jsonl" % name),
                    [{"prompt": p, "response": r + pref} for p, r in held])
        write_jsonl(os.path.join(tmp, "held-%s-other.jsonl" % name),
                    [{"prompt": p, "response": r + other} for p, r in held])
    write_jsonl(os.path.join(tmp, "neutral.jsonl"), neutral)

    def margin(name, lora):
        lp = score(a.cli, a.model, os.path.join(tmp, "held-%s-pref.jsonl" % name), lora)
        lo = score(a.cli, a.model, os.path.join(tmp, "held-%s-other.jsonl" % name), lora)
        return float(np.mean(np.array(lp) - np.array(lo)))

    def neutral_ll(lora):
        return float(np.mean(score(a.cli, a.model, os.path.join(tmp, "neutral.jsonl"), lora)))

    res = {"model": os.path.basename(a.model), "seed": a.seed, "protocol": "sequential",
           "base": {"margin_a": margin("a", None), "margin_b": margin("b", None),
                    "neutral": neutral_ll(None)}}
    lambdas = [None] + [float(x) for x in a.ewc_lambdas.split(",")] if a.ewc_lambdas else [None]
    lambdas = [0.0] + [l for l in lambdas if l != 0.0]
    b = res["base"]
    for lam in lambdas:
        key = "ewc_off" if lam == 0.0 else ("ewc_default" if lam is None else "ewc_%g" % lam)
        r = {"ewc_lambda": "default" if lam is None else lam}
        for run_name, f in (("after_a", "a.jsonl"), ("after_ab", "ab.jsonl")):
            out = os.path.join(tmp, "%s-%s.gguf" % (key, run_name))
            cmd = [a.cli, "adapt", "-m", a.model, "--ratings", os.path.join(tmp, f),
                   "--lora-out", out, "--json"] + extra
            if lam is not None:
                cmd += ["--ewc-lambda", repr(lam)]
            run(cmd)
            r[run_name] = {"margin_a": margin("a", out), "margin_b": margin("b", out),
                           "neutral": neutral_ll(out)}
            if run_name == "after_ab":
                r["adapt_command"] = " ".join(cmd)
        ga = r["after_a"]["margin_a"] - b["margin_a"]
        gab = r["after_ab"]["margin_a"] - b["margin_a"]
        r["gain_a_after_a"] = ga
        r["gain_a_after_ab"] = gab
        r["retained_a"] = gab / ga if ga != 0 else float("nan")
        r["learned_b"] = r["after_ab"]["margin_b"] - b["margin_b"]
        r["forgetting_a"] = r["after_a"]["margin_a"] - r["after_ab"]["margin_a"]
        r["neutral_change_pct"] = (100.0 * (r["after_ab"]["neutral"] - b["neutral"]) /
                                   abs(b["neutral"]))
        res[key] = r
    res["workdir"] = tmp
    print(json.dumps(res, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(RH, "models", "smol135-q8_0.gguf"))
    ap.add_argument("--cli", default="build/engine/ruvllm-cli")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--extra", default="", help="more adapt options, space separated")
    ap.add_argument("--sequential", action="store_true",
                    help="the forgetting protocol (task A then task B) for EWC++")
    ap.add_argument("--ewc-lambdas", default="",
                    help="--sequential: comma-separated lambdas besides the default and 0")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="learn-proof-")
    if a.sequential:
        sequential(a, tmp, a.extra.split() if a.extra else [])
        return
    train, held, neutral = make_sets(a.seed)
    write_jsonl(os.path.join(tmp, "train.jsonl"), train)
    write_jsonl(os.path.join(tmp, "train-down.jsonl"), [r for r in train if r["rating"] < 0])
    hp = [{"prompt": p, "response": r + PREFERRED} for p, r in held]
    ho = [{"prompt": p, "response": r + OTHER} for p, r in held]
    write_jsonl(os.path.join(tmp, "held-pref.jsonl"), hp)
    write_jsonl(os.path.join(tmp, "held-other.jsonl"), ho)
    write_jsonl(os.path.join(tmp, "neutral.jsonl"), neutral)
    extra = a.extra.split() if a.extra else []

    def evaluate(lora):
        lp = score(a.cli, a.model, os.path.join(tmp, "held-pref.jsonl"), lora)
        lo = score(a.cli, a.model, os.path.join(tmp, "held-other.jsonl"), lora)
        ln = score(a.cli, a.model, os.path.join(tmp, "neutral.jsonl"), lora)
        return {"margin": float(np.mean(np.array(lp) - np.array(lo))),
                "logp_pref": float(np.mean(lp)), "logp_other": float(np.mean(lo)),
                "neutral": float(np.mean(ln))}

    res = {"model": os.path.basename(a.model), "seed": a.seed, "base": evaluate(None)}
    runs = {"ewc_on": ["train.jsonl"], "ewc_off": ["train.jsonl", "--ewc-lambda", "0"],
            "down_only": ["train-down.jsonl"], "ewc_on_deep": ["train.jsonl", "--deep"]}
    for name, args in runs.items():
        out = os.path.join(tmp, name + ".gguf")
        cmd = [a.cli, "adapt", "-m", a.model, "--ratings", os.path.join(tmp, args[0]),
               "--lora-out", out, "--json"] + args[1:] + extra
        lines = [json.loads(l) for l in run(cmd).splitlines() if l.strip()]
        lat = sorted(l["latency_us"] for l in lines if "latency_us" in l)
        res[name] = evaluate(out)
        res[name]["instant_latency_us_p50"] = lat[len(lat) // 2]
        res[name]["adapt_command"] = " ".join(cmd)
        if "deep_loss" in lines[-1]:
            res[name]["deep_loss"] = lines[-1]["deep_loss"]
    b = res["base"]
    for name in runs:
        r = res[name]
        r["margin_gain"] = r["margin"] - b["margin"]
        r["neutral_change_pct"] = 100.0 * (r["neutral"] - b["neutral"]) / abs(b["neutral"])

    # llama.cpp agreement on the first run's adapter: one held-out sequence
    lref = os.path.join(RH, "llamacpp", "native", "build", "lref")
    if os.path.exists(lref):
        tok = json.loads(run([a.cli, "tokenize", "-m", a.model, "--text",
                              held[0][0] + held[0][1] + PREFERRED, "--json"]))
        ids = ",".join(str(t) for t in (tok["ids"] if isinstance(tok, dict) else tok))
        ours = os.path.join(tmp, "ours.f32")
        ref = os.path.join(tmp, "ref.f32")
        base = os.path.join(tmp, "base.f32")
        lora = os.path.join(tmp, "ewc_on.gguf")
        run([a.cli, "logits", "-m", a.model, "--tokens", ids, "--lora", lora, "--dump", ours,
             "--top", "1"])
        run([a.cli, "logits", "-m", a.model, "--tokens", ids, "--dump", base, "--top", "1"])
        run([lref, "score", a.model, "--tokens", ids, "--lora", lora, "--dump", ref, "--top", "1"])
        o, r, z = (np.fromfile(p, dtype=np.float32) for p in (ours, ref, base))
        res["llamacpp"] = {"positions": len(ids.split(",")),
                           "max_abs_diff_with_lora": float(np.abs(o - r).max()),
                           "max_abs_lora_effect": float(np.abs(o - z).max()),
                           "argmax_agree": float(np.mean(
                               o.reshape(-1, len(o) // len(ids.split(","))).argmax(1) ==
                               r.reshape(-1, len(r) // len(ids.split(","))).argmax(1)))}
    res["workdir"] = tmp
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
