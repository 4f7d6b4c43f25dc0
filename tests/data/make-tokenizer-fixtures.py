#!/usr/bin/python3
# make-tokenizer-fixtures.py — writes the vocab-only GGUF fixtures of test-tokenizer.
# SPDX-License-Identifier: MIT
#
# Usage (Debian's python3, which has numpy):
#   /usr/bin/python3 tests/data/make-tokenizer-fixtures.py ~/.cache/ruvllm-refharness tests/data
#
# Each fixture is a GGUF v3 file with the metadata of a refharness model
# (general.*, the architecture's hyper-parameters, tokenizer.*) and no tensors:
# llama.cpp loads it with vocab_only, RuvLLM's tokenizer reads it like a model.
# The vocabularies come from refharness gen/make_gguf.py build_vocab() (the real
# Qwen2.5 / Llama-3 BPE and Mistral SentencePiece vocabularies), written gzip'd.
import gzip
import os
import sys

refharness = os.path.expanduser(sys.argv[1])
out_dir = sys.argv[2]
sys.path.insert(0, os.path.join(refharness, "gen"))
import gguflib as G  # noqa: E402
import make_gguf as M  # noqa: E402

# name, preset, vocab kind, n_vocab, pre override (None: keep, "": remove)
FIXTURES = [
    ("vocab-qwen2", "tiny", "bpe", 151936, None),
    ("vocab-llama3", "tiny-llama3", "bpe-llama3", 128256, None),
    ("vocab-spm", "tiny-spm", "spm", 32000, None),
    ("vocab-smollm", "tiny", "bpe", 8192, "smollm"),
    ("vocab-gpt2", "tiny", "bpe", 8192, "gpt-2"),
    ("vocab-default", "tiny", "bpe", 8192, ""),
]


def write(name, preset, kind, n_vocab, pre):
    args = M.parse_args(["--preset", preset, "--vocab", kind, "--n-vocab", str(n_vocab), "-o", "/dev/null"])
    cfg = M.build_config(args)
    arch = cfg["arch"]
    voc = M.build_vocab(kind, n_vocab)
    w = G.GGUFWriter()
    w.add_str("general.architecture", arch)
    w.add_str("general.type", "model")
    w.add_str("general.name", "ruvllm-test-" + name)
    w.add_u32("general.alignment", G.DEFAULT_ALIGNMENT)
    w.add_u32(arch + ".vocab_size", n_vocab)
    w.add_u32(arch + ".context_length", cfg["ctx"])
    w.add_u32(arch + ".embedding_length", cfg["dim"])
    w.add_u32(arch + ".block_count", cfg["n_layer"])
    w.add_u32(arch + ".feed_forward_length", cfg["ffn"])
    w.add_u32(arch + ".attention.head_count", cfg["n_head"])
    w.add_u32(arch + ".attention.head_count_kv", cfg["n_kv"])
    w.add_f32(arch + ".attention.layer_norm_rms_epsilon", cfg["eps"])
    w.add_f32(arch + ".rope.freq_base", cfg["rope_base"])
    w.add_u32(arch + ".rope.dimension_count", cfg["head_dim"])
    w.add_str("tokenizer.ggml.model", voc["model"])
    p = voc["pre"] if pre is None else pre
    if p:
        w.add_str("tokenizer.ggml.pre", p)
    w.add_arr("tokenizer.ggml.tokens", G.T_STRING, voc["tokens"])
    if voc["scores"] is not None:
        w.add_arr("tokenizer.ggml.scores", G.T_FLOAT32, voc["scores"])
    w.add_arr("tokenizer.ggml.token_type", G.T_INT32, voc["types"])
    if voc["merges"] is not None:
        w.add_arr("tokenizer.ggml.merges", G.T_STRING, voc["merges"])
    w.add_u32("tokenizer.ggml.bos_token_id", voc["bos"])
    w.add_u32("tokenizer.ggml.eos_token_id", voc["eos"])
    if voc["unk"] is not None:
        w.add_u32("tokenizer.ggml.unknown_token_id", voc["unk"])
    if voc["pad"] is not None:
        w.add_u32("tokenizer.ggml.padding_token_id", voc["pad"])
    w.add_bool("tokenizer.ggml.add_bos_token", voc["add_bos"])
    w.add_bool("tokenizer.ggml.add_eos_token", voc["add_eos"])
    w.add_str("tokenizer.chat_template", voc["template"])
    raw = os.path.join(out_dir, name + ".gguf")
    w.write(raw, lambda n: None)
    with open(raw, "rb") as f:
        data = f.read()
    # mtime=0: the same vocabulary gives the same bytes
    with open(raw + ".gz", "wb") as f:
        f.write(gzip.compress(data, 9, mtime=0))
    print("%s: %d bytes, %d gzip'd" % (name, len(data), os.path.getsize(raw + ".gz")))
    return raw


if __name__ == "__main__":
    only = sys.argv[3:]
    for fx in FIXTURES:
        if not only or fx[0] in only:
            write(*fx)
