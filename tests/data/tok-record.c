/* tok-record.c — records llama.cpp's tokenizations of a corpus as test expectations.
 * SPDX-License-Identifier: MIT
 *
 * Not part of the build: a provenance tool, linked against the prebuilt libllama of the
 * refharness (node-llama-cpp 3.21.1, llama.cpp v0.4.0, commit 5b4ebc5). See README.md.
 *
 *   tok-record VOCAB.gguf < corpus.hex > expected.txt
 *
 * Input: one case per line, the text's bytes in hex ("" line = empty string).
 * Output, tab-separated, one line each:
 *   V n_vocab bos eos eot add_bos add_eos      vocabulary facts
 *   T add_special parse_special HEX IDS         llama_tokenize (IDS comma-separated, "-" if none)
 *   D remove_special unparse_special IDS HEX    llama_detokenize of the T 1 1 ids
 *   P ID HEX                                    llama_token_to_piece(special = true) of sampled ids
 *   E ID                                        every end-of-generation id (llama_vocab_is_eog)
 */
#include "llama.h"
#include "ggml-backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet (enum ggml_log_level level, const char *text, void *ud)
{
  (void) ud;
  if (level == GGML_LOG_LEVEL_ERROR)
    fputs (text, stderr);
}

static void put_hex (const char *s, int n)
{
  for (int i = 0; i < n; i++)
    printf ("%02x", (unsigned char) s[i]);
}

static void put_ids (const llama_token *ids, int n)
{
  if (n == 0)
    printf ("-");
  for (int i = 0; i < n; i++)
    printf ("%s%d", i ? "," : "", ids[i]);
}

int main (int argc, char **argv)
{
  static char line[1 << 16], text[1 << 15], out[1 << 17];
  static llama_token ids[1 << 15];
  const char *bins = getenv ("LREF_BINS_DIR");
  struct llama_model_params mp;
  struct llama_model *model;
  const struct llama_vocab *vocab;
  int n_vocab;

  if (argc < 2)
    return 2;
  llama_log_set (quiet, NULL);
  ggml_backend_load_all_from_path (bins ? bins : "");
  llama_backend_init ();
  mp = llama_model_default_params ();
  mp.vocab_only = true;
  model = llama_model_load_from_file (argv[1], mp);
  if (!model)
    return 1;
  vocab = llama_model_get_vocab (model);
  n_vocab = llama_vocab_n_tokens (vocab);
  printf ("V\t%d\t%d\t%d\t%d\t%d\t%d\n", n_vocab, llama_vocab_bos (vocab), llama_vocab_eos (vocab),
          llama_vocab_eot (vocab), llama_vocab_get_add_bos (vocab), llama_vocab_get_add_eos (vocab));
  while (fgets (line, sizeof line, stdin))
    {
      int len = 0, n;
      for (char *p = line; p[0] && p[1] && p[0] != '\n'; p += 2)
        {
          unsigned v;
          sscanf (p, "%2x", &v);
          text[len++] = (char) v;
        }
      for (int as = 0; as < 2; as++)
        for (int ps = 0; ps < 2; ps++)
          {
            n = llama_tokenize (vocab, text, len, ids, 1 << 15, as, ps);
            printf ("T\t%d\t%d\t", as, ps);
            put_hex (text, len);
            printf ("\t");
            put_ids (ids, n);
            printf ("\n");
          }
      for (int rs = 0; rs < 2; rs++)
        {
          int m = llama_detokenize (vocab, ids, n, out, sizeof out, rs, !rs);
          printf ("D\t%d\t%d\t", rs, !rs);
          put_ids (ids, n);
          printf ("\t");
          put_hex (out, m);
          printf ("\n");
        }
    }
  for (int id = 0; id < n_vocab; id++)
    {
      if (id % 61 == 0 || id < 300 || id >= n_vocab - 300)
        {
          char piece[512];
          int m = llama_token_to_piece (vocab, id, piece, sizeof piece, 0, true);
          printf ("P\t%d\t", id);
          put_hex (piece, m);
          printf ("\n");
        }
      if (llama_vocab_is_eog (vocab, id))
        printf ("E\t%d\n", id);
    }
  llama_model_free (model);
  return 0;
}
