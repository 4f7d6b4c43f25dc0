#!/usr/bin/python3
"""bench-vs-llamacpp.py — ruvllm-cli bench next to llama.cpp's llama-bench loops
(the refharness's lref), same files, alternating, printing a Markdown table.

Time to first token (ttft, ms, -p tokens): ours is `ruvllm-cli bench`'s
ttft_ms, measured (load excluded, empty cache: the prefill with the last
position's logits, then the first token picked with the default sampling
parameters). lref cannot report one, so llama.cpp's is derived: the time of
its pp run, p / pp tokens/s, whose last step also yields the last position's
logits; it leaves out sampling, so it flatters llama.cpp slightly.

A developer tool (needs ../shared/refharness set up); tests never use it.
Usage: tools/bench-vs-llamacpp.py --cli build/engine/ruvllm-cli [-t 2] [-p 512]
           [-n 128] [-r 3] [--rounds 2] [--kv-store f16] MODEL...
"""
import argparse, json, os, subprocess, statistics

ap = argparse.ArgumentParser()
ap.add_argument("--cli", required=True)
ap.add_argument("--lref", default=os.path.expanduser(
    "~/.cache/ruvllm-refharness/llamacpp/native/build/lref"))
ap.add_argument("-t", type=int, default=2)
ap.add_argument("-p", type=int, default=512)
ap.add_argument("-n", type=int, default=128)
ap.add_argument("-r", type=int, default=3)
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--kv-store", default="f16")
ap.add_argument("models", nargs="+")
a = ap.parse_args()

def last_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def load():
    return open("/proc/loadavg").read().split()[0]

print("| model | ours pp%d | llama.cpp pp%d | ours tg%d | llama.cpp tg%d | ours ttft ms | llama.cpp ttft ms (derived) | ours RSS MiB | llama.cpp RSS MiB | load |"
      % (a.p, a.p, a.n, a.n))
print("|---|---|---|---|---|---|---|---|---|---|")
for m in a.models:
    ours, ref, loads = [], [], []
    for _ in range(a.rounds):
        loads.append(load())
        o = last_json([a.cli, "bench", "-m", m, "-p", str(a.p), "-n", str(a.n), "-t", str(a.t),
                       "-r", str(a.r), "--kv-store", a.kv_store, "--json"])
        ours.append((o["pp"]["median"], o["tg"]["median"], o["peak_rss_bytes"] / 2**20,
                     o["ttft_ms"]["median"]))
        r = last_json([a.lref, "bench", m, "--pp", str(a.p), "--tg", str(a.n),
                       "--threads", str(a.t), "--reps", str(a.r)])
        res = r["results"]
        pp = res["pp%d" % a.p]["median"]
        ref.append((pp, res["tg%d" % a.n]["median"], r["peakRssKiB"] / 1024,
                    1000.0 * a.p / pp))
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    print("| %s | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f | %s |" % (
        os.path.basename(m), med(ours, 0), med(ref, 0), med(ours, 1), med(ref, 1),
        med(ours, 3), med(ref, 3), med(ours, 2), med(ref, 2), "/".join(loads)))
