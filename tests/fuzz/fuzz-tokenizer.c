/* fuzz-tokenizer.c — libFuzzer target: encode and decode arbitrary bytes.
 * SPDX-License-Identifier: MIT
 *
 * The first input byte picks a vocabulary (byte-level BPE with each supported
 * pre-tokenizer, or SentencePiece); the rest is the text. Each input is
 * encoded with and without special-token parsing, decoded both ways and
 * streamed; the checks are that nothing crashes, every id is in range and the
 * stream only ever emits valid UTF-8.
 */
#include <glib.h>
#include <stdint.h>

#include "ruv-gguf.h"
#include "ruv-tokenizer.h"

#include "tok-vocab.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define N_VOCABS 7

static RuvTokenizer *vocabs[N_VOCABS];

static RuvTokenizer *
make (GBytes *bytes)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGguf) gguf = NULL;
  RuvTokenizer *tok;
  gsize size;
  const guint8 *d = g_bytes_get_data (bytes, &size);

  gguf = ruv_gguf_parse (d, size, "fuzz.gguf", &error);
  if (gguf == NULL)
    g_error ("%s", error->message);
  tok = ruv_tokenizer_new_from_gguf (gguf, &error);
  if (tok == NULL)
    g_error ("%s", error->message);
  g_bytes_unref (bytes);
  return tok;
}

static void
init (void)
{
  static const char *const pres[] = { "qwen2", "llama-bpe", "smollm", "gpt-2", "qwen35", NULL };
  int i;

  if (vocabs[0] != NULL)
    return;
  for (i = 0; i < 5; i++)
    vocabs[i] = make (tv_bpe_vocab (pres[i]));
  vocabs[5] = make (tv_bpe_vocab (NULL));   /* "default" */
  vocabs[6] = make (tv_spm_vocab ());
}

static void
check_ids (RuvTokenizer *tok,
           GArray       *ids)
{
  guint i;

  for (i = 0; i < ids->len; i++)
    {
      gint32 id = g_array_index (ids, gint32, i);

      if (id < 0 || id >= ruv_tokenizer_get_n_vocab (tok))
        g_error ("token id %d out of range", id);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  RuvTokenizer *tok;
  int parse;

  if (size == 0)
    return 0;
  init ();
  tok = vocabs[data[0] % N_VOCABS];
  for (parse = 0; parse < 2; parse++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) ids = ruv_tokenizer_encode (tok, (const char *) data + 1, size - 1,
                                                   TRUE, parse, &error);
      g_autoptr(RuvTokenStream) stream = NULL;
      g_autofree char *a = NULL;
      g_autofree char *b = NULL;
      g_autofree char *rest = NULL;
      guint i;

      if (ids == NULL)
        g_error ("encode failed: %s", error->message);
      check_ids (tok, ids);
      a = ruv_tokenizer_decode (tok, (gint32 *) ids->data, ids->len, FALSE, NULL);
      b = ruv_tokenizer_decode (tok, (gint32 *) ids->data, ids->len, TRUE, NULL);
      stream = ruv_token_stream_new (tok, parse);
      for (i = 0; i < ids->len; i++)
        {
          g_autofree char *chunk = ruv_token_stream_push (stream, g_array_index (ids, gint32, i));

          if (!g_utf8_validate (chunk, -1, NULL))
            g_error ("stream emitted invalid UTF-8");
        }
      rest = ruv_token_stream_flush (stream);
      if (!g_utf8_validate (rest, -1, NULL))
        g_error ("stream flush emitted invalid UTF-8");
    }
  return 0;
}
