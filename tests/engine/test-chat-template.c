/* test-chat-template.c — chat formats against llama.cpp's llama_chat_apply_template.
 * SPDX-License-Identifier: MIT
 *
 * tests/data/chat-templates.expected.txt holds llama.cpp's outputs for four
 * conversations (system prompt, multi-turn history, whitespace to trim) in
 * every format, by name and through real template texts (detection);
 * provenance in tests/data/README.md.
 */
#include <stdlib.h>
#include <string.h>

#include "ruv-chat-template.h"

static char *
unhex (const char *s)
{
  GString *b = g_string_new (NULL);

  for (; s[0] && s[1]; s += 2)
    g_string_append_c (b, (char) (g_ascii_xdigit_value (s[0]) * 16 + g_ascii_xdigit_value (s[1])));
  return g_string_free (b, FALSE);
}

typedef struct
{
  GPtrArray *roles;
  GPtrArray *contents;
} Conv;

static void
test_llama_cpp (void)
{
  g_autofree char *path = g_build_filename (TEST_DATA_DIR, "chat-templates.expected.txt", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  Conv convs[8] = { { 0 } };
  guint i, n_name = 0, n_tmpl = 0, c;
  g_autoptr(GHashTable) kinds = g_hash_table_new (NULL, NULL);

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i]; i++)
    {
      g_auto(GStrv) f = g_strsplit (lines[i], "\t", -1);

      if (g_strv_length (f) == 4 && strcmp (f[0], "C") == 0)
        {
          c = (guint) atoi (f[1]);
          g_assert_cmpuint (c, <, G_N_ELEMENTS (convs));
          if (convs[c].roles == NULL)
            {
              convs[c].roles = g_ptr_array_new_with_free_func (g_free);
              convs[c].contents = g_ptr_array_new_with_free_func (g_free);
            }
          g_ptr_array_add (convs[c].roles, g_strdup (f[2]));
          g_ptr_array_add (convs[c].contents, unhex (f[3]));
        }
      else if (g_strv_length (f) == 5 && strcmp (f[0], "A") == 0)
        {
          RuvChatTemplate kind;
          g_autofree RuvChatMessage *msgs = NULL;
          g_autofree char *want = unhex (f[4]);
          g_autofree char *got = NULL;
          guint k;

          if (g_str_has_prefix (f[1], "name:"))
            {
              kind = ruv_chat_template_from_name (f[1] + 5);
              g_assert_cmpstr (ruv_chat_template_get_name (kind), ==, f[1] + 5);
              n_name++;
            }
          else
            {
              g_autofree char *tmpl = unhex (f[1] + 5);

              kind = ruv_chat_template_detect (tmpl);
              g_assert_cmpint (kind, !=, RUV_CHAT_TEMPLATE_UNKNOWN);
              g_hash_table_add (kinds, GINT_TO_POINTER (kind));
              n_tmpl++;
            }
          c = (guint) atoi (f[2]);
          g_assert_nonnull (convs[c].roles);
          msgs = g_new0 (RuvChatMessage, convs[c].roles->len);
          for (k = 0; k < convs[c].roles->len; k++)
            {
              msgs[k].role = convs[c].roles->pdata[k];
              msgs[k].content = convs[c].contents->pdata[k];
            }
          got = ruv_chat_template_apply (kind, msgs, convs[c].roles->len, atoi (f[3]));
          if (strcmp (got, want) != 0)
            g_test_message ("%s conv %s add %s", f[1], f[2], f[3]);
          g_assert_cmpstr (got, ==, want);
        }
    }
  for (c = 0; c < G_N_ELEMENTS (convs); c++)
    if (convs[c].roles)
      {
        g_ptr_array_unref (convs[c].roles);
        g_ptr_array_unref (convs[c].contents);
      }
  g_assert_cmpuint (n_name, >=, 25 * 8);
  g_assert_cmpuint (n_tmpl, >=, 12 * 8);
  /* The real templates are recognised as twelve distinct formats. */
  g_assert_cmpuint (g_hash_table_size (kinds), ==, 12);
}

static void
test_detect (void)
{
  g_assert_cmpint (ruv_chat_template_detect (NULL), ==, RUV_CHAT_TEMPLATE_CHATML);
  g_assert_cmpint (ruv_chat_template_detect (""), ==, RUV_CHAT_TEMPLATE_CHATML);
  g_assert_cmpint (ruv_chat_template_detect ("llama3"), ==, RUV_CHAT_TEMPLATE_LLAMA3);
  g_assert_cmpint (ruv_chat_template_detect ("{{ messages }}"), ==, RUV_CHAT_TEMPLATE_UNKNOWN);
  g_assert_cmpint (ruv_chat_template_detect ("{{ '[INST] ' + m + ' [/INST]' }}{{ '<<SYS>>' }}"),
                   ==, RUV_CHAT_TEMPLATE_LLAMA2_SYS);
  g_assert_cmpint (ruv_chat_template_detect ("{% for %}[INST]{{ bos_token + '[INST] ' }}<<SYS>>"),
                   ==, RUV_CHAT_TEMPLATE_LLAMA2_SYS_BOS);
  g_assert_cmpint (ruv_chat_template_detect ("<|user|>{{ x }}</s><|assistant|>"), ==,
                   RUV_CHAT_TEMPLATE_FALCON3);
  g_assert_cmpint (ruv_chat_template_detect ("[gMASK]<sop><|user|>"), ==,
                   RUV_CHAT_TEMPLATE_UNKNOWN);
}

static void
test_unknown_is_chatml (void)
{
  static const RuvChatMessage msgs[] = { { "system", "S" }, { "user", "U" } };
  g_autofree char *a = ruv_chat_template_apply (RUV_CHAT_TEMPLATE_UNKNOWN, msgs, 2, TRUE);
  g_autofree char *b = ruv_chat_template_apply (RUV_CHAT_TEMPLATE_CHATML, msgs, 2, TRUE);
  g_autofree char *empty = ruv_chat_template_apply (RUV_CHAT_TEMPLATE_LLAMA3, NULL, 0, FALSE);

  g_assert_cmpstr (a, ==, b);
  g_assert_cmpstr (a, ==, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
                   "<|im_start|>assistant\n");
  g_assert_cmpstr (empty, ==, "");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/chat-template/llama-cpp", test_llama_cpp);
  g_test_add_func ("/engine/chat-template/detect", test_detect);
  g_test_add_func ("/engine/chat-template/unknown-is-chatml", test_unknown_is_chatml);
  return g_test_run ();
}
