/* cli-adapt.c — `ruvllm-cli adapt` (learn from a file of ratings through
 * SONA's loops, write a GGUF LoRA adapter) and `ruvllm-cli score`
 * (log p(response | prompt) per line, with or without an adapter).
 * SPDX-License-Identifier: MIT
 *
 * Input: JSON Lines, one object per line: {"prompt": TEXT, "response": TEXT}
 * plus, for adapt, "rating": 1 | -1 | a quality in [0, 1]. Blank lines are
 * skipped. Text is tokenized as plain text: the prompt with the special
 * tokens the model's metadata asks for (BOS), the response without, and the
 * response tokens follow the prompt's (no chat template: what is scored is
 * exactly the text given).
 *
 * adapt runs what the app runs: per line, the activations of prompt +
 * response are captured and the instant loop takes its step; then the
 * background consolidation runs on the pending ratings (the app's worker
 * does this every background_interval_ms; here after every line, so the
 * result does not depend on timing); --deep adds a deep run over all the
 * ratings at the end.
 *
 * --store records it all in the user's store (<XDG data dir>/ruvllm/
 * ruvllm.db, as the app and `chat` do): the learner starts from the model's
 * newest snapshot (models are keyed by file name), each line becomes a rated
 * exchange (a user message and an assistant message, a root of one session
 * per run) whose adaptation outcome is recorded, and every consolidation and
 * deep run that changes the weights is a snapshot. --lora-out is optional
 * then. A rating of 1 / -1 / a quality above or below 0.5 is stored as up /
 * down; 0.5 as cleared (it is neutral).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "cli-kv.h"
#include "ruv-error.h"
#include "ruv-forward.h"
#include "ruv-learner.h"
#include "ruv-lora-gguf.h"
#include "ruv-model.h"
#include "ruv-sona.h"
#include "ruv-store.h"
#include "ruv-tokenizer.h"
#include "ruvllm-cli.h"

typedef struct
{
  GArray *tokens;    /* gint32: prompt then response */
  gint64  n_prompt;
  double  rating;    /* NAN when absent */
  char   *prompt;
  char   *response;
} PairLine;

static void
pair_line_clear (gpointer p)
{
  PairLine *l = p;

  g_clear_pointer (&l->tokens, g_array_unref);
  g_clear_pointer (&l->prompt, g_free);
  g_clear_pointer (&l->response, g_free);
}

/* Reads the JSONL file into PairLines (line numbers are 1-based in messages). */
static GArray *
read_pairs (const char   *path,
            RuvTokenizer *tok,
            gboolean      need_rating,
            GError      **error)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GArray) out = g_array_new (FALSE, TRUE, sizeof (PairLine));
  gsize len, i;

  g_array_set_clear_func (out, pair_line_clear);
  if (!g_file_get_contents (path, &contents, &len, error))
    return NULL;
  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GArray) resp = NULL;
      g_autoptr(GError) local = NULL;
      const char *text = g_strstrip (lines[i]);
      JsonObject *obj;
      JsonNode *root, *rn;
      PairLine pl = { NULL, 0, NAN, NULL, NULL };

      if (*text == '\0')
        continue;
      if (!json_parser_load_from_data (parser, text, -1, &local) ||
          (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "%s:%" G_GSIZE_FORMAT
                       ": not a JSON object%s%s", path, i + 1, local != NULL ? ": " : "",
                       local != NULL ? local->message : "");
          return NULL;
        }
      obj = json_node_get_object (root);
      if (!json_object_has_member (obj, "prompt") || !json_object_has_member (obj, "response") ||
          json_node_get_value_type (json_object_get_member (obj, "prompt")) != G_TYPE_STRING ||
          json_node_get_value_type (json_object_get_member (obj, "response")) != G_TYPE_STRING)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "%s:%" G_GSIZE_FORMAT
                       ": needs string members \"prompt\" and \"response\"", path, i + 1);
          return NULL;
        }
      rn = json_object_get_member (obj, "rating");
      if (rn != NULL && JSON_NODE_HOLDS_VALUE (rn) &&
          (json_node_get_value_type (rn) == G_TYPE_INT64 ||
           json_node_get_value_type (rn) == G_TYPE_DOUBLE))
        pl.rating = json_node_get_double (rn);
      if (need_rating && !(pl.rating == 1.0 || pl.rating == -1.0 ||
                           (pl.rating >= 0.0 && pl.rating <= 1.0)))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "%s:%" G_GSIZE_FORMAT
                       ": \"rating\" must be 1, -1 or a number in [0, 1]", path, i + 1);
          return NULL;
        }
      pl.tokens = ruv_tokenizer_encode (tok, json_object_get_string_member (obj, "prompt"), -1,
                                        TRUE, FALSE, error);
      if (pl.tokens == NULL)
        return NULL;
      resp = ruv_tokenizer_encode (tok, json_object_get_string_member (obj, "response"), -1,
                                   FALSE, FALSE, error);
      if (resp == NULL)
        {
          g_array_unref (pl.tokens);
          return NULL;
        }
      pl.n_prompt = pl.tokens->len;
      if (pl.n_prompt < 1 || resp->len < 1)
        {
          g_array_unref (pl.tokens);
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "%s:%" G_GSIZE_FORMAT
                       ": the prompt and the response must each give at least one token",
                       path, i + 1);
          return NULL;
        }
      g_array_append_vals (pl.tokens, resp->data, resp->len);
      pl.prompt = g_strdup (json_object_get_string_member (obj, "prompt"));
      pl.response = g_strdup (json_object_get_string_member (obj, "response"));
      g_array_append_val (out, pl);
    }
  if (out->len == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "%s holds no lines", path);
      return NULL;
    }
  return g_steal_pointer (&out);
}

static RuvContext *
new_context (RuvModel         *model,
             GArray           *pairs,
             gint              threads,
             RuvCliKvOptions  *kv,
             GError          **error)
{
  RuvContextParams params;
  gint64 longest = 1;
  guint i;

  for (i = 0; i < pairs->len; i++)
    longest = MAX (longest, (gint64) g_array_index (pairs, PairLine, i).tokens->len);
  ruv_context_params_init (&params);
  params.n_ctx = MIN (longest, ruv_model_get_context_length (model));
  params.n_threads = threads;
  if (!ruv_cli_kv_options_apply (kv, &params, error))
    return NULL;
  if (longest > params.n_ctx)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "a line has %" G_GINT64_FORMAT
                   " tokens, more than the context (%" G_GINT64_FORMAT ")", longest,
                   params.n_ctx);
      return NULL;
    }
  return ruv_context_new (model, &params, error);
}

static RuvTokenizer *
model_tokenizer (RuvModel  *model,
                 GError   **error)
{
  return ruv_tokenizer_new_from_gguf (ruv_model_get_gguf (model), error);
}

/* ---- score ------------------------------------------------------------------ */

int
ruv_cli_score (int    argc,
               char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- log p(response | prompt)");
  g_autoptr(GError) error = NULL;
  g_autofree char *model_path = NULL;
  g_autofree char *lora_path = NULL;
  g_autofree char *pairs_path = NULL;
  g_autoptr(RuvModel) model = NULL;
  g_autoptr(RuvTokenizer) tok = NULL;
  g_autoptr(RuvMicroLora) lora = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  g_autoptr(GArray) pairs = NULL;
  RuvCliKvOptions kv;
  gboolean json = FALSE;
  int threads = 0;
  double total = 0.0;
  guint i;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME, &lora_path, "GGUF LoRA adapter to apply", "A.gguf" },
    { "pairs", 0, 0, G_OPTION_ARG_FILENAME, &pairs_path,
      "JSON Lines of {\"prompt\",\"response\"}", "FILE.jsonl" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all CPUs)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object per line", NULL },
    { NULL }
  };

  g_option_context_set_summary (context, "Prints log p(response | prompt) (natural log, summed "
                                "over the response tokens) for every line.");
  g_option_context_add_main_entries (context, entries, NULL);
  ruv_cli_kv_options_init (&kv);
  ruv_cli_kv_options_add (context, &kv);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    {
      ruv_cli_kv_options_clear (&kv);
      return RUV_CLI_EXIT_USAGE;
    }
  if (model_path == NULL || pairs_path == NULL || argc != 1)
    {
      ruv_cli_kv_options_clear (&kv);
      fprintf (stderr, "ruvllm-cli score: -m MODEL and --pairs FILE are required\n");
      return RUV_CLI_EXIT_USAGE;
    }
  model = ruv_model_new_from_file (model_path, &error);
  if (model != NULL)
    tok = model_tokenizer (model, &error);
  if (tok != NULL)
    pairs = read_pairs (pairs_path, tok, FALSE, &error);
  if (pairs != NULL && lora_path != NULL)
    lora = ruv_lora_gguf_import (model, lora_path, NULL, &error);
  if (pairs != NULL && (lora_path == NULL || lora != NULL))
    ctx = new_context (model, pairs, threads, &kv, &error);
  ruv_cli_kv_options_clear (&kv);
  if (ctx == NULL)
    return ruv_cli_fail (error);
  if (lora != NULL)
    ruv_context_set_lora (ctx, lora);

  for (i = 0; i < pairs->len; i++)
    {
      const PairLine *pl = &g_array_index (pairs, PairLine, i);
      double logp;

      if (!ruv_sona_score_response (ctx, (const gint32 *) pl->tokens->data, pl->n_prompt,
                                    pl->tokens->len, &logp, &error))
        return ruv_cli_fail (error);
      total += logp;
      if (json)
        printf ("{\"line\":%u,\"logp\":%.6f,\"n_prompt\":%" G_GINT64_FORMAT
                ",\"n_response\":%" G_GINT64_FORMAT "}\n", i + 1, logp, pl->n_prompt,
                (gint64) pl->tokens->len - pl->n_prompt);
      else
        printf ("%u\t%.6f\n", i + 1, logp);
    }
  if (json)
    printf ("{\"lines\":%u,\"sum_logp\":%.6f,\"lora\":%s}\n", pairs->len, total,
            lora != NULL ? "true" : "false");
  ruv_context_set_lora (ctx, NULL);
  return RUV_CLI_EXIT_OK;
}

/* ---- adapt ------------------------------------------------------------------ */

static void
print_progress (gint      epoch,
                gint      n_epochs,
                double    loss,
                gpointer  user_data)
{
  (void) user_data;
  fprintf (stderr, "deep: epoch %d/%d loss %.5f\n", epoch, n_epochs, loss);
}

/* Stores one rated exchange: a root user message and its assistant answer,
 * rated as the app rates it. Returns the answer's id (0 on error). */
static gint64
store_exchange (RuvStore        *store,
                gint64           session_id,
                const char      *model_key,
                const PairLine  *pl,
                GError         **error)
{
  RuvMessageStats st = { 0 };
  RuvRating rating;
  gint64 user_id, answer_id;

  user_id = ruv_store_add_message (store, session_id, 0, "user", pl->prompt, NULL, NULL, TRUE,
                                   error);
  if (user_id <= 0)
    return 0;
  answer_id = ruv_store_add_message (store, session_id, user_id, "assistant", "", model_key,
                                     NULL, FALSE, error);
  if (answer_id <= 0)
    return 0;
  st.n_prompt = (gint) MIN (pl->n_prompt, G_MAXINT);
  st.n_gen = (gint) MIN ((gint64) pl->tokens->len - pl->n_prompt, G_MAXINT);
  st.ttft_ms = -1.0;
  st.tokens_per_s = -1.0;
  st.finish_reason = "rated";
  if (!ruv_store_complete_message (store, answer_id, pl->response, &st, error))
    return 0;
  rating = pl->rating > 0.5 ? RUV_RATING_UP : pl->rating < 0.5 ? RUV_RATING_DOWN
                                                                : RUV_RATING_CLEARED;
  if (!ruv_store_rate_message (store, answer_id, rating, error))
    return 0;
  return answer_id;
}

int
ruv_cli_adapt (int    argc,
               char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- learn from ratings");
  g_autoptr(GError) error = NULL;
  g_autofree char *model_path = NULL;
  g_autofree char *ratings_path = NULL;
  g_autofree char *lora_in = NULL;
  g_autofree char *lora_out = NULL;
  g_autofree char *strategy = NULL;
  g_autoptr(RuvModel) model = NULL;
  g_autoptr(RuvTokenizer) tok = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  g_autoptr(GArray) pairs = NULL;
  g_autoptr(RuvLearner) learner = NULL;
  g_autoptr(GArray) curve = NULL;
  g_autofree char *model_key = NULL;
  g_autoptr(RuvStore) store = NULL;
  gint64 session_id = 0;
  RuvSonaLlmConfig cfg;
  RuvCliKvOptions kv;
  gboolean deep = FALSE, json = FALSE, use_store = FALSE;
  int threads = 0, bg_cand = -1, epochs = 0, n_layers = 0, seed = -1;
  double ewc_lambda = -1.0, instant_lr = -1.0, bg_lr = -1.0, deep_lr = -1.0;
  double ewc_decay = -1.0, max_step = -1.0, ewc_base = -1.0;
  int ewc_task = 0;
  guint i;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL" },
    { "ratings", 0, 0, G_OPTION_ARG_FILENAME, &ratings_path,
      "JSON Lines of {\"prompt\",\"response\",\"rating\"}", "FILE.jsonl" },
    { "lora-in", 0, 0, G_OPTION_ARG_FILENAME, &lora_in, "Start from this adapter", "A.gguf" },
    { "lora-out", 0, 0, G_OPTION_ARG_FILENAME, &lora_out, "Write the adapter here", "B.gguf" },
    { "strategy", 0, 0, G_OPTION_ARG_STRING, &strategy,
      "ewc-merge (default), average, quality-weighted, best-only, ensemble", "S" },
    { "deep", 0, 0, G_OPTION_ARG_NONE, &deep, "Finish with a deep run over all ratings", NULL },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &epochs, "Deep run epochs (default 3)", "N" },
    { "ewc-lambda", 0, 0, G_OPTION_ARG_DOUBLE, &ewc_lambda,
      "EWC++ strength of the instant and background loops (0: off)", "F" },
    { "ewc-decay", 0, 0, G_OPTION_ARG_DOUBLE, &ewc_decay,
      "EWC++ decay of earlier tasks' Fisher per task boundary (0 .. 1)", "F" },
    { "ewc-base-weight", 0, 0, G_OPTION_ARG_DOUBLE, &ewc_base,
      "EWC++ task 0: pull toward the starting adapter (the base model) until the first task "
      "boundary, times --ewc-lambda (default 1; 0: none)", "F" },
    { "ewc-task-ratings", 0, 0, G_OPTION_ARG_INT, &ewc_task,
      "EWC++ task boundary every N consolidated ratings (default 10)", "N" },
    { "instant-lr", 0, 0, G_OPTION_ARG_DOUBLE, &instant_lr, "Instant loop step", "F" },
    { "background-lr", 0, 0, G_OPTION_ARG_DOUBLE, &bg_lr, "Background loop step", "F" },
    { "deep-lr", 0, 0, G_OPTION_ARG_DOUBLE, &deep_lr, "Deep loop step", "F" },
    { "max-step", 0, 0, G_OPTION_ARG_DOUBLE, &max_step,
      "Trust region of every step: first-order change of the rated answers' mean log p per "
      "token, in nats (0: unbounded)", "F" },
    { "background-candidates", 0, 0, G_OPTION_ARG_INT, &bg_cand,
      "Softmax candidates of the background and deep loops (0: full vocabulary)", "K" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &n_layers, "Adapted layers (the last N; default 2)",
      "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT, &seed, "Adapter initialisation seed (default 42)", "S" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all CPUs)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object per rating and a summary",
      NULL },
    { "store", 0, 0, G_OPTION_ARG_NONE, &use_store,
      "Start from and record into the user's store (ratings, outcomes, snapshots), as the app "
      "does", NULL },
    { NULL }
  };

  g_option_context_set_summary (context, "Runs ratings through the instant loop, background "
                                "consolidation and (--deep) a deep run; writes the adapter as "
                                "GGUF LoRA (loadable by llama.cpp).");
  g_option_context_add_main_entries (context, entries, NULL);
  ruv_cli_kv_options_init (&kv);
  ruv_cli_kv_options_add (context, &kv);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    {
      ruv_cli_kv_options_clear (&kv);
      return RUV_CLI_EXIT_USAGE;
    }
  if (model_path == NULL || ratings_path == NULL || (lora_out == NULL && !use_store) ||
      argc != 1)
    {
      ruv_cli_kv_options_clear (&kv);
      fprintf (stderr, "ruvllm-cli adapt: -m MODEL, --ratings FILE and --lora-out FILE (or "
               "--store) are required\n");
      return RUV_CLI_EXIT_USAGE;
    }
  model = ruv_model_new_from_file (model_path, &error);
  if (model == NULL)
    {
      ruv_cli_kv_options_clear (&kv);
      return ruv_cli_fail (error);
    }
  ruv_sona_llm_config_init (&cfg, model);
  if (strategy != NULL && !ruv_consolidation_strategy_from_string (strategy,
                                                                   &cfg.consolidation_strategy))
    {
      ruv_cli_kv_options_clear (&kv);
      fprintf (stderr, "ruvllm-cli adapt: unknown strategy '%s'\n", strategy);
      return RUV_CLI_EXIT_USAGE;
    }
  if (epochs > 0)
    cfg.training.epochs = epochs;
  if (ewc_lambda >= 0.0)
    {
      cfg.sona.ewc_lambda = (float) ewc_lambda;
      cfg.training.ewc_lambda = (float) ewc_lambda;
    }
  if (ewc_decay >= 0.0)
    cfg.sona.ewc_decay = (float) ewc_decay;
  if (ewc_task > 0)
    cfg.sona.ewc_task_ratings = ewc_task;
  if (ewc_base >= 0.0)
    cfg.sona.ewc_base_weight = (float) ewc_base;
  if (instant_lr > 0.0)
    cfg.instant_lr = (float) instant_lr;
  if (bg_lr > 0.0)
    cfg.sona.background_lr = (float) bg_lr;
  if (deep_lr > 0.0)
    cfg.training.learning_rate = (float) deep_lr;
  if (max_step >= 0.0)
    cfg.sona.max_step_nats = (float) max_step;
  if (bg_cand >= 0)
    cfg.sona.background_candidates = bg_cand;
  if (n_layers > 0)
    cfg.micro_lora.n_layers = n_layers;
  if (seed >= 0)
    cfg.micro_lora.seed = (guint64) seed;

  tok = model_tokenizer (model, &error);
  if (tok != NULL)
    pairs = read_pairs (ratings_path, tok, TRUE, &error);
  model_key = g_path_get_basename (model_path);
  if (pairs != NULL && use_store)
    {
      store = ruv_store_new (&error);
      if (store != NULL && ruv_store_get_read_only (store))
        {
          g_set_error (&error, RUV_ERROR, RUV_ERROR_STORAGE, "the store %s is read-only: %s",
                       ruv_store_get_path (store), ruv_store_get_read_only_reason (store));
          g_clear_object (&store);
        }
      if (store != NULL)
        {
          g_autofree char *base = g_path_get_basename (ratings_path);
          g_autofree char *title = g_strdup_printf ("Ratings from %s", base);

          session_id = ruv_store_create_session (store, title, model_key, NULL, NULL, &error);
          if (session_id <= 0)
            g_clear_object (&store);
        }
    }
  if (pairs != NULL && (!use_store || store != NULL))
    learner = ruv_learner_new (model, model_key, store, &cfg, &error);
  if (learner != NULL && lora_in != NULL && !ruv_learner_import (learner, lora_in, &error))
    g_clear_object (&learner);
  if (learner != NULL)
    ctx = new_context (model, pairs, threads, &kv, &error);
  ruv_cli_kv_options_clear (&kv);
  if (ctx == NULL)
    return ruv_cli_fail (error);

  for (i = 0; i < pairs->len; i++)
    {
      const PairLine *pl = &g_array_index (pairs, PairLine, i);
      g_autofree char *key = NULL;
      RuvAdaptationResult res, bg;
      RuvSonaTrace *tr;
      gint64 message_id = 0;
      double logp = NAN;
      gboolean ok;

      if (store != NULL)
        {
          message_id = store_exchange (store, session_id, model_key, pl, &error);
          if (message_id <= 0)
            return ruv_cli_fail (error);
          /* the chat session's key for a rated message */
          key = g_strdup_printf ("message:%" G_GINT64_FORMAT, message_id);
        }
      else
        key = g_strdup_printf ("line %u", i + 1);

      tr = ruv_sona_llm_capture (ruv_learner_get_sona (learner), ctx,
                                 (const gint32 *) pl->tokens->data, pl->n_prompt,
                                 pl->tokens->len, &logp, &error);
      if (tr == NULL)
        return ruv_cli_fail (error);
      ok = ruv_learner_rate (learner, tr, message_id, key, pl->rating, &res, NULL, &error);
      memset (&bg, 0, sizeof bg);
      ruv_learner_consolidate (learner, &bg, NULL);
      if (json)
        printf ("{\"line\":%u,\"rating\":%g,\"logp\":%.6f,\"applied\":%s,\"skipped\":%s,"
                "\"latency_us\":%" G_GUINT64_FORMAT ",\"loss_before\":%.6f,\"loss_after\":%.6f,"
                "\"background\":{\"applied\":%s,\"samples\":%" G_GSIZE_FORMAT
                ",\"latency_us\":%" G_GUINT64_FORMAT "}}\n", i + 1, pl->rating, logp,
                res.applied ? "true" : "false", res.skipped ? "true" : "false",
                res.latency_us, res.loss, res.loss_after, bg.applied ? "true" : "false",
                bg.samples_used, bg.latency_us);
      else
        printf ("line %u: rating %g, log p %.4f, %s in %" G_GUINT64_FORMAT " us, loss %.5f -> "
                "%.5f\n", i + 1, pl->rating, logp, res.applied ? "applied" : "skipped",
                res.latency_us, res.loss, res.loss_after);
      if (!ok)
        {
          fprintf (stderr, "ruvllm-cli adapt: line %u: %s\n", i + 1, error->message);
          g_clear_error (&error);
        }
    }
  if (deep)
    {
      curve = g_array_new (FALSE, FALSE, sizeof (double));
      if (!ruv_learner_deep (learner, json ? NULL : print_progress, NULL, NULL, curve, &error))
        return ruv_cli_fail (error);
    }
  if (lora_out != NULL && !ruv_learner_export (learner, lora_out, &error))
    return ruv_cli_fail (error);
  if (json)
    {
      RuvLearningLoopStats st;
      g_autoptr(GString) line = g_string_new (NULL);

      ruv_sona_llm_get_stats (ruv_learner_get_sona (learner), &st);
      g_string_append_printf (line, "{\"ratings\":%u,\"instant_updates\":%" G_GUINT64_FORMAT
                              ",\"instant_skipped\":%" G_GUINT64_FORMAT ",\"background_runs\":%"
                              G_GUINT64_FORMAT ",\"deep_runs\":%" G_GUINT64_FORMAT
                              ",\"strategy\":\"%s\"", pairs->len,
                              st.instant_updates, st.instant_skipped, st.background_runs,
                              st.deep_runs,
                              ruv_consolidation_strategy_to_string (cfg.consolidation_strategy));
      if (store != NULL)
        g_string_append_printf (line, ",\"store\":{\"session\":%" G_GINT64_FORMAT
                                ",\"head\":%" G_GINT64_FORMAT "}", session_id,
                                ruv_learner_get_head (learner));
      if (curve != NULL)
        {
          g_string_append (line, ",\"deep_loss\":[");
          for (i = 0; i < curve->len; i++)
            g_string_append_printf (line, "%s%.6f", i > 0 ? "," : "",
                                    g_array_index (curve, double, i));
          g_string_append (line, "]");
        }
      printf ("%s}\n", line->str);
    }
  else if (store != NULL)
    fprintf (stderr, "recorded in %s: session %" G_GINT64_FORMAT ", adapter snapshot %"
             G_GINT64_FORMAT " in effect\n", ruv_store_get_path (store), session_id,
             ruv_learner_get_head (learner));
  ruv_context_set_lora (ctx, NULL);
  return RUV_CLI_EXIT_OK;
}
