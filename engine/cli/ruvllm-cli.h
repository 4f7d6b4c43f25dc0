/* ruvllm-cli.h — sub-commands of ruvllm-cli and the helpers they share.
 * SPDX-License-Identifier: MIT
 *
 * Each sub-command lives in cli-<name>.c and defines
 *   int ruv_cli_<name> (int argc, char **argv);
 * with argv[0] the sub-command's name. The declarations are weak, so a
 * sub-command whose file is not built yet is reported as such, and adding
 * one is adding its file.
 */
#pragma once

#include <gio/gio.h>

#include "ruv-gguf.h"
#include "ruv-hub.h"

G_BEGIN_DECLS

#define RUV_CLI_WEAK __attribute__ ((weak))

int      ruv_cli_info     (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_tokenize (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_generate (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_logits   (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_chat     (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_bench    (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_quantize (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_search   (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_files    (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_pull     (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_models   (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_rm       (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_login    (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_logout   (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_chats    (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_export   (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_import   (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_store_bench (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_adapt    (int argc, char **argv) RUV_CLI_WEAK;
int      ruv_cli_score    (int argc, char **argv) RUV_CLI_WEAK;

/* Exit statuses. */
#define RUV_CLI_EXIT_OK     0
#define RUV_CLI_EXIT_ERROR  1
#define RUV_CLI_EXIT_USAGE  2

/* Parses "1,2,3" (spaces allowed, ids >= 0 that fit in gint32) into an array
 * of gint32. RUV_ERROR_CONFIG naming the bad item. */
GArray  *ruv_cli_parse_tokens   (const char   *text,
                                 GError      **error);

/* Prints "ruvllm-cli: <message>" to stderr and returns RUV_CLI_EXIT_ERROR. */
int      ruv_cli_fail           (const GError *error);
/* Parses a sub-command's options; on failure prints the message and usage
 * hint and returns FALSE. */
gboolean ruv_cli_parse_options  (GOptionContext *context,
                                 int            *argc,
                                 char         ***argv);

/* cli-hub-common.c. The Hub at $HF_ENDPOINT (else the public Hub) with the
 * token from $HF_TOKEN, else from the keyring for that endpoint, else none
 * (a keyring that cannot be asked is only a debug message). */
RuvHub  *ruv_cli_hub_new        (void);
/* The origin a token is kept under for endpoint (NULL: $HF_ENDPOINT, else
 * the public Hub); RUV_ERROR_CONFIG when it is not an http(s) URL. */
char    *ruv_cli_hub_origin     (const char    *endpoint,
                                 GError       **error);
/* A GAsyncReadyCallback storing a new reference to the
 * result in *(GAsyncResult **) user_data; ruv_cli_wait iterates the default
 * main context until it is set. */
void     ruv_cli_got_result     (GObject       *source,
                                 GAsyncResult  *result,
                                 gpointer       user_data);
void     ruv_cli_wait           (GAsyncResult **result);
/* $RUVLLM_MEM_AVAILABLE (bytes) if set, else MemAvailable. */
guint64  ruv_cli_available_memory (void);
/* "fits: needs … of … available (weights …, KV cache … at N tokens, …)" for a
 * model with `meta` and weights_bytes at n_ctx (0: its context, capped). */
char    *ruv_cli_fit_text       (const RuvGguf *meta,
                                 guint64        weights_bytes,
                                 guint32        n_ctx,
                                 GError       **error);
/* The fit line of each of `files` (RuvHubFile) from its remote header, read
 * concurrently: NULL for a non-GGUF file, a note for a split model's later
 * parts (the first part counts all parts of all_files), "unknown (why)" when
 * the header cannot be read. Result: GPtrArray of char*, parallel to files. */
GPtrArray *ruv_cli_remote_fits  (RuvHub        *hub,
                                 const char    *repo,
                                 const char    *revision,
                                 GPtrArray     *all_files,
                                 GPtrArray     *files);

G_END_DECLS
