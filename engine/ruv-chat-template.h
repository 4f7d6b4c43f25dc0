/* ruv-chat-template.h — chat prompt formats recognised from tokenizer.chat_template.
 * SPDX-License-Identifier: MIT
 *
 * Not a Jinja interpreter: like llama.cpp's llama-chat.cpp, the template text
 * is recognised by signature substrings and each known format is written by
 * hand, with that format's exact whitespace.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  RUV_CHAT_TEMPLATE_UNKNOWN,
  RUV_CHAT_TEMPLATE_CHATML,
  RUV_CHAT_TEMPLATE_LLAMA2,
  RUV_CHAT_TEMPLATE_LLAMA2_SYS,
  RUV_CHAT_TEMPLATE_LLAMA2_SYS_BOS,
  RUV_CHAT_TEMPLATE_LLAMA2_SYS_STRIP,
  RUV_CHAT_TEMPLATE_MISTRAL_V1,
  RUV_CHAT_TEMPLATE_MISTRAL_V3,
  RUV_CHAT_TEMPLATE_MISTRAL_V3_TEKKEN,
  RUV_CHAT_TEMPLATE_MISTRAL_V7,
  RUV_CHAT_TEMPLATE_MISTRAL_V7_TEKKEN,
  RUV_CHAT_TEMPLATE_PHI3,
  RUV_CHAT_TEMPLATE_PHI4,
  RUV_CHAT_TEMPLATE_FALCON3,
  RUV_CHAT_TEMPLATE_ZEPHYR,
  RUV_CHAT_TEMPLATE_MONARCH,
  RUV_CHAT_TEMPLATE_GEMMA,
  RUV_CHAT_TEMPLATE_ORION,
  RUV_CHAT_TEMPLATE_OPENCHAT,
  RUV_CHAT_TEMPLATE_VICUNA,
  RUV_CHAT_TEMPLATE_VICUNA_ORCA,
  RUV_CHAT_TEMPLATE_DEEPSEEK,
  RUV_CHAT_TEMPLATE_DEEPSEEK2,
  RUV_CHAT_TEMPLATE_DEEPSEEK3,
  RUV_CHAT_TEMPLATE_COMMAND_R,
  RUV_CHAT_TEMPLATE_LLAMA3,
  RUV_CHAT_TEMPLATE_GLMEDGE,
} RuvChatTemplate;

typedef struct
{
  const char *role;      /* "system", "user", "assistant" */
  const char *content;
} RuvChatMessage;

/* llama.cpp's name for a format ("chatml", "llama3", "mistral-v7", ...). */
const char      *ruv_chat_template_get_name  (RuvChatTemplate       kind);
/* The format with that name, or RUV_CHAT_TEMPLATE_UNKNOWN. */
RuvChatTemplate  ruv_chat_template_from_name (const char           *name);
/* Recognises a tokenizer.chat_template text (or a format name). NULL or ""
 * give ChatML (a model without a template); an unrecognised text gives
 * RUV_CHAT_TEMPLATE_UNKNOWN. */
RuvChatTemplate  ruv_chat_template_detect    (const char           *tmpl);
/* The prompt for n messages; add_generation_prompt opens the assistant's
 * turn where the format has one. UNKNOWN is written as ChatML. */
char            *ruv_chat_template_apply     (RuvChatTemplate       kind,
                                              const RuvChatMessage *messages,
                                              gsize                 n_messages,
                                              gboolean              add_generation_prompt);

G_END_DECLS
