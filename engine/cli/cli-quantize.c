/* cli-quantize.c — `ruvllm-cli quantize IN.gguf OUT.gguf TYPE`.
 * SPDX-License-Identifier: MIT
 *
 *   ruvllm-cli quantize [--allow-requantize] [-t THREADS] IN.gguf OUT.gguf TYPE
 *
 * TYPE: q8_0, q4_0, q4_k_m, q5_k_m, q6_k, f16, bf16; the per-tensor choices
 * are llama-quantize's (see ruv-quantize.h), so llama.cpp loads the result.
 * As with llama-quantize, an input whose tensors are already quantized is
 * refused unless --allow-requantize is given.
 */
#include <stdio.h>

#include "ruv-quantize.h"
#include "ruvllm-cli.h"

int
ruv_cli_quantize (int    argc,
                  char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("IN.gguf OUT.gguf TYPE");
  g_autoptr(GError) error = NULL;
  RuvQuantizeOptions opts;
  RuvQuantizeStats st;
  RuvQuantizeType type;
  gboolean allow_requantize = FALSE;
  int threads = 0;
  GOptionEntry entries[] = {
    { "allow-requantize", 0, 0, G_OPTION_ARG_NONE, &allow_requantize,
      "Convert tensors that are already quantized (quality is lost twice)", NULL },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all CPUs)", "N" },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Requantize a GGUF model. TYPE: q8_0, q4_0, q4_k_m, q5_k_m, "
                                "q6_k, f16, bf16.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 4)
    {
      fprintf (stderr, "ruvllm-cli quantize: usage: quantize [--allow-requantize] [-t N] "
               "IN.gguf OUT.gguf TYPE\n");
      return RUV_CLI_EXIT_USAGE;
    }
  if (!ruv_quantize_type_from_name (argv[3], &type))
    {
      fprintf (stderr, "ruvllm-cli quantize: unknown type '%s' (q8_0, q4_0, q4_k_m, q5_k_m, "
               "q6_k, f16, bf16)\n", argv[3]);
      return RUV_CLI_EXIT_USAGE;
    }
  if (threads < 0)
    {
      fprintf (stderr, "ruvllm-cli quantize: -t cannot be negative\n");
      return RUV_CLI_EXIT_USAGE;
    }
  ruv_quantize_options_init (&opts);
  opts.allow_requantize = allow_requantize;
  opts.n_threads = threads;
  /* The engine refuses an output that is the input (also through a link). */
  if (!ruv_quantize_file_full (argv[1], argv[2], type, &opts, &st, &error))
    return ruv_cli_fail (error);
  printf ("%s: %u tensors, %u converted to %s (%u fallbacks), %.2f MiB -> %.2f MiB\n",
          argv[2], st.n_tensors, st.n_quantized, ruv_quantize_type_name (type), st.n_fallback,
          st.bytes_in / 1048576.0, st.bytes_out / 1048576.0);
  return RUV_CLI_EXIT_OK;
}
