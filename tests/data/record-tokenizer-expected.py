#!/usr/bin/python3
# record-tokenizer-expected.py — runs llama.cpp (tok-record.c) over the hard-string corpus
# for every vocab fixture and writes tests/data/<vocab>.expected.txt.
# SPDX-License-Identifier: MIT
#
#   /usr/bin/python3 tests/data/record-tokenizer-expected.py TOK_RECORD_BINARY FIXTURE_DIR OUT_DIR
#
# FIXTURE_DIR holds the uncompressed vocab-*.gguf from make-tokenizer-fixtures.py.
import os
import subprocess
import sys

CORPUS = [
    b"",
    b"Hello, world! The capital of France is Paris.",
    b" ", b"  ", b"   ", b"   leading", b"trailing   ", b"a  b   c    d", b"word          word",
    b" " * 20, b"\t", b"\ttab\tsep\t\t", b"\n", b"\n\n\n", b"line1\nline2\r\nline3\r",
    b" \n \n", b"  \n\n  x", b"x \t\n y", b"\r\n\r\n", b"a\n\n\n\nb", b" \t \t",
    b"1234567", b"3.14159", b"12 345 6789", b"a1b22c333d4444", b"$100 + 20% = <ok>",
    "٣٤٥ ①② Ⅻ ½".encode(), b"0", b"00000000000000000000",
    b"I'm don't you'll we've they're she'd it's", b"DON'T I'M YOU'LL WE'VE", b"'s 'S 'Re 'x '",
    b"rock'n'roll", b"''''",
    "😀".encode(), "👍🏽".encode(), "👨‍👩‍👧‍👦 family".encode(), "🏳️‍🌈".encode(), "❤️ love ❤".encode(),
    "你好，世界！".encode(), "日本語のテキストです。".encode(), "한국어 텍스트".encode(),
    "café naïve résumé".encode(), "e\u0301 a\u0300\u0301".encode(), "Ångström Straße ǅ".encode(),
    "Привет мир".encode(), "مرحبا بالعالم".encode(), "שלום".encode(), "नमस्ते दुनिया".encode(),
    "ภาษาไทย".encode(),
    b"def f(x):\n    return x**2  # square\n", b"if (a && b) { x += 1; }",
    b"<div class=\"a\">&amp;</div>", b"fn main() {\n\tprintln!(\"hi\");\n}",
    b"https://example.com/path?q=1&r=2#frag", b"...!!!???", b"---", b"a---b", b"`backtick`",
    b"__init__", b"x=1;y=2", b"  indented\n    more\n\tand tabs",
    b"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", b"<|endoftext|>",
    b"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    b"<s>[INST] hi [/INST]", b"</s>", b"<unk>", b"<s>", b"<|im_start|><|im_start|>", b"x<|im_end|>y",
    b"<|im_start", b" <|im_end|> ", b"<think>\nok\n</think>",
    b"\xff", b"a\xffb", b"\xc3", b"\xe4\xbd", b"\xed\xa0\x80", b"\xc0\x80", b"\xf0\x9f\x98",
    b"\x80\x80", b"\xf8\x88\x80\x80\x80", b"ok\xc3(", b"\xe2\x82",
    b"a\x00b", b"\x01\x7f", "\u00a0nbsp \u3000 \u2028 \u0085 \u200b".encode(),
    "▁".encode(), " ▁ x▁y".encode(),
    b" Hello", b"  Hello", b"Hello  ", b"HELLO", b"hElLo", b"a" * 300,
    "Ünïcödé ÀÉÎÕÜ".encode(), "𝔘𝔫𝔦𝔠𝔬𝔡𝔢".encode(), "ﬁ ﬂ".encode(),
]


def main():
    rec, fixture_dir, out_dir = sys.argv[1:4]
    corpus_hex = "".join(c.hex() + "\n" for c in CORPUS)
    for name in sorted(os.listdir(fixture_dir)):
        if not (name.startswith("vocab-") and name.endswith(".gguf")):
            continue
        path = os.path.join(fixture_dir, name)
        res = subprocess.run([rec, path], input=corpus_hex.encode(), capture_output=True, check=True)
        out = os.path.join(out_dir, name[:-5] + ".expected.txt")
        with open(out, "wb") as f:
            f.write(b"# llama.cpp's tokenization of tests/data/%s.gguf.gz, recorded by\n" % name[:-5].encode())
            f.write(b"# tests/data/record-tokenizer-expected.py with tok-record.c against the refharness's\n")
            f.write(b"# prebuilt libllama (node-llama-cpp 3.21.1 = llama.cpp v0.4.0, commit 5b4ebc5).\n")
            f.write(b"# Format: see tok-record.c. Do not edit by hand.\n")
            f.write(res.stdout)
        print(out, len(res.stdout))


if __name__ == "__main__":
    main()
