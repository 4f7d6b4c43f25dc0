/* ruv-chat-template.c — chat prompt formats, after llama.cpp's llama-chat.cpp.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-chat-template.h"

#include <string.h>

static const struct
{
  const char      *name;
  RuvChatTemplate  kind;
} names[] = {
  { "chatml", RUV_CHAT_TEMPLATE_CHATML },
  { "llama2", RUV_CHAT_TEMPLATE_LLAMA2 },
  { "llama2-sys", RUV_CHAT_TEMPLATE_LLAMA2_SYS },
  { "llama2-sys-bos", RUV_CHAT_TEMPLATE_LLAMA2_SYS_BOS },
  { "llama2-sys-strip", RUV_CHAT_TEMPLATE_LLAMA2_SYS_STRIP },
  { "mistral-v1", RUV_CHAT_TEMPLATE_MISTRAL_V1 },
  { "mistral-v3", RUV_CHAT_TEMPLATE_MISTRAL_V3 },
  { "mistral-v3-tekken", RUV_CHAT_TEMPLATE_MISTRAL_V3_TEKKEN },
  { "mistral-v7", RUV_CHAT_TEMPLATE_MISTRAL_V7 },
  { "mistral-v7-tekken", RUV_CHAT_TEMPLATE_MISTRAL_V7_TEKKEN },
  { "phi3", RUV_CHAT_TEMPLATE_PHI3 },
  { "phi4", RUV_CHAT_TEMPLATE_PHI4 },
  { "falcon3", RUV_CHAT_TEMPLATE_FALCON3 },
  { "zephyr", RUV_CHAT_TEMPLATE_ZEPHYR },
  { "monarch", RUV_CHAT_TEMPLATE_MONARCH },
  { "gemma", RUV_CHAT_TEMPLATE_GEMMA },
  { "orion", RUV_CHAT_TEMPLATE_ORION },
  { "openchat", RUV_CHAT_TEMPLATE_OPENCHAT },
  { "vicuna", RUV_CHAT_TEMPLATE_VICUNA },
  { "vicuna-orca", RUV_CHAT_TEMPLATE_VICUNA_ORCA },
  { "deepseek", RUV_CHAT_TEMPLATE_DEEPSEEK },
  { "deepseek2", RUV_CHAT_TEMPLATE_DEEPSEEK2 },
  { "deepseek3", RUV_CHAT_TEMPLATE_DEEPSEEK3 },
  { "command-r", RUV_CHAT_TEMPLATE_COMMAND_R },
  { "llama3", RUV_CHAT_TEMPLATE_LLAMA3 },
  { "glmedge", RUV_CHAT_TEMPLATE_GLMEDGE },
};

const char *
ruv_chat_template_get_name (RuvChatTemplate kind)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (names); i++)
    if (names[i].kind == kind)
      return names[i].name;
  return "unknown";
}

RuvChatTemplate
ruv_chat_template_from_name (const char *name)
{
  gsize i;

  for (i = 0; name != NULL && i < G_N_ELEMENTS (names); i++)
    if (strcmp (names[i].name, name) == 0)
      return names[i].kind;
  return RUV_CHAT_TEMPLATE_UNKNOWN;
}

#define HAS(s) (strstr (tmpl, (s)) != NULL)

RuvChatTemplate
ruv_chat_template_detect (const char *tmpl)
{
  RuvChatTemplate kind;

  if (tmpl == NULL || *tmpl == '\0')
    return RUV_CHAT_TEMPLATE_CHATML;
  if ((kind = ruv_chat_template_from_name (tmpl)) != RUV_CHAT_TEMPLATE_UNKNOWN)
    return kind;
  /* llm_chat_detect_template's order; formats not written here are UNKNOWN. */
  if (HAS ("<|im_start|>"))
    {
      if (HAS ("<|im_sep|>"))
        return RUV_CHAT_TEMPLATE_PHI4;
      return HAS ("<end_of_utterance>") ? RUV_CHAT_TEMPLATE_UNKNOWN : RUV_CHAT_TEMPLATE_CHATML;
    }
  if (g_str_has_prefix (tmpl, "mistral") || HAS ("[INST]"))
    {
      if (HAS ("[SYSTEM_PROMPT]"))
        return RUV_CHAT_TEMPLATE_MISTRAL_V7;
      if (HAS ("' [INST] ' + system_message") || HAS ("[AVAILABLE_TOOLS]"))
        {
          if (HAS (" [INST]"))
            return RUV_CHAT_TEMPLATE_MISTRAL_V1;
          if (HAS ("\"[INST]\""))
            return RUV_CHAT_TEMPLATE_MISTRAL_V3_TEKKEN;
          return RUV_CHAT_TEMPLATE_MISTRAL_V3;
        }
      if (HAS ("content.strip()"))
        return RUV_CHAT_TEMPLATE_LLAMA2_SYS_STRIP;
      if (HAS ("bos_token + '[INST]"))
        return RUV_CHAT_TEMPLATE_LLAMA2_SYS_BOS;
      if (HAS ("<<SYS>>"))
        return RUV_CHAT_TEMPLATE_LLAMA2_SYS;
      return RUV_CHAT_TEMPLATE_LLAMA2;
    }
  if (HAS ("<|assistant|>") && HAS ("<|end|>"))
    return RUV_CHAT_TEMPLATE_PHI3;
  if (HAS ("[gMASK]<sop>"))
    return RUV_CHAT_TEMPLATE_UNKNOWN;
  if (HAS ("<|assistant|>") && HAS ("<|user|>"))
    {
      /* Zephyr's own template lands here too, as in llama.cpp. */
      if (HAS ("<|tool_declare|>"))
        return RUV_CHAT_TEMPLATE_UNKNOWN;
      return HAS ("</s>") ? RUV_CHAT_TEMPLATE_FALCON3 : RUV_CHAT_TEMPLATE_GLMEDGE;
    }
  if (HAS ("<|{{ item['role'] }}|>") && HAS ("<|begin_of_image|>"))
    return RUV_CHAT_TEMPLATE_GLMEDGE;
  if (HAS ("<|user|>") && HAS ("<|endoftext|>"))
    return RUV_CHAT_TEMPLATE_ZEPHYR;
  if (HAS ("bos_token + message['role']"))
    return RUV_CHAT_TEMPLATE_MONARCH;
  if (HAS ("<start_of_turn>"))
    return RUV_CHAT_TEMPLATE_GEMMA;
  if (HAS ("'\\n\\nAssistant: ' + eos_token"))
    return RUV_CHAT_TEMPLATE_ORION;
  if (HAS ("GPT4 Correct "))
    return RUV_CHAT_TEMPLATE_OPENCHAT;
  if (HAS ("USER: ") && HAS ("ASSISTANT: "))
    return HAS ("SYSTEM: ") ? RUV_CHAT_TEMPLATE_VICUNA_ORCA : RUV_CHAT_TEMPLATE_VICUNA;
  if (HAS ("### Instruction:") && HAS ("<|EOT|>"))
    return RUV_CHAT_TEMPLATE_DEEPSEEK;
  if (HAS ("<|START_OF_TURN_TOKEN|>") && HAS ("<|USER_TOKEN|>"))
    return RUV_CHAT_TEMPLATE_COMMAND_R;
  if (HAS ("<|start_header_id|>") && HAS ("<|end_header_id|>"))
    return RUV_CHAT_TEMPLATE_LLAMA3;
  if (HAS ("[gMASK]sop") || HAS ("<\xe7\x94\xa8\xe6\x88\xb7>"))
    return RUV_CHAT_TEMPLATE_UNKNOWN;
  if (HAS ("'Assistant: ' + message['content'] + eos_token"))
    return RUV_CHAT_TEMPLATE_DEEPSEEK2;
  if (HAS ("<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>") && HAS ("<\xef\xbd\x9c" "User\xef\xbd\x9c>")
      && HAS ("<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"))
    return RUV_CHAT_TEMPLATE_DEEPSEEK3;
  return RUV_CHAT_TEMPLATE_UNKNOWN;
}

#undef HAS

static inline gboolean
c_isspace (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* llama-chat.cpp's trim: C-locale isspace at both ends. */
static void
append_trimmed (GString    *s,
                const char *text)
{
  const char *end = text + strlen (text);

  while (text < end && c_isspace (*text))
    text++;
  while (end > text && c_isspace (end[-1]))
    end--;
  g_string_append_len (s, text, end - text);
}

static gboolean
is_role (const RuvChatMessage *m,
         const char           *role)
{
  return g_strcmp0 (m->role, role) == 0;
}

char *
ruv_chat_template_apply (RuvChatTemplate       kind,
                         const RuvChatMessage *msgs,
                         gsize                 n,
                         gboolean              add_ass)
{
  GString *s = g_string_new (NULL);
  gsize i;

  g_return_val_if_fail (msgs != NULL || n == 0, NULL);

  switch (kind)
    {
    case RUV_CHAT_TEMPLATE_MISTRAL_V7:
    case RUV_CHAT_TEMPLATE_MISTRAL_V7_TEKKEN:
      {
        const char *sp = kind == RUV_CHAT_TEMPLATE_MISTRAL_V7 ? " " : "";

        for (i = 0; i < n; i++)
          {
            if (is_role (&msgs[i], "system"))
              g_string_append_printf (s, "[SYSTEM_PROMPT]%s%s[/SYSTEM_PROMPT]", sp,
                                      msgs[i].content);
            else if (is_role (&msgs[i], "user"))
              g_string_append_printf (s, "[INST]%s%s[/INST]", sp, msgs[i].content);
            else
              g_string_append_printf (s, "%s%s</s>", sp, msgs[i].content);
          }
      }
      break;

    case RUV_CHAT_TEMPLATE_MISTRAL_V1:
    case RUV_CHAT_TEMPLATE_MISTRAL_V3:
    case RUV_CHAT_TEMPLATE_MISTRAL_V3_TEKKEN:
      {
        const char *lead = kind == RUV_CHAT_TEMPLATE_MISTRAL_V1 ? " " : "";
        const char *trail = kind == RUV_CHAT_TEMPLATE_MISTRAL_V3_TEKKEN ? "" : " ";
        gboolean inside = FALSE;

        for (i = 0; i < n; i++)
          {
            if (!inside)
              {
                g_string_append_printf (s, "%s[INST]%s", lead, trail);
                inside = TRUE;
              }
            if (is_role (&msgs[i], "system"))
              g_string_append_printf (s, "%s\n\n", msgs[i].content);
            else if (is_role (&msgs[i], "user"))
              g_string_append_printf (s, "%s%s[/INST]", msgs[i].content, lead);
            else
              {
                g_string_append (s, trail);
                if (kind == RUV_CHAT_TEMPLATE_MISTRAL_V3)
                  append_trimmed (s, msgs[i].content);
                else
                  g_string_append (s, msgs[i].content);
                g_string_append (s, "</s>");
                inside = FALSE;
              }
          }
      }
      break;

    case RUV_CHAT_TEMPLATE_LLAMA2:
    case RUV_CHAT_TEMPLATE_LLAMA2_SYS:
    case RUV_CHAT_TEMPLATE_LLAMA2_SYS_BOS:
    case RUV_CHAT_TEMPLATE_LLAMA2_SYS_STRIP:
      {
        gboolean sys = kind != RUV_CHAT_TEMPLATE_LLAMA2;
        gboolean inside = TRUE;   /* the first [INST] comes without BOS */

        g_string_append (s, "[INST] ");
        for (i = 0; i < n; i++)
          {
            g_autoptr(GString) c = g_string_new (NULL);

            if (kind == RUV_CHAT_TEMPLATE_LLAMA2_SYS_STRIP)
              append_trimmed (c, msgs[i].content);
            else
              g_string_append (c, msgs[i].content);
            if (!inside)
              {
                inside = TRUE;
                g_string_append (s, kind == RUV_CHAT_TEMPLATE_LLAMA2_SYS_BOS ? "<s>[INST] "
                                                                            : "[INST] ");
              }
            if (is_role (&msgs[i], "system"))
              {
                if (sys)
                  g_string_append_printf (s, "<<SYS>>\n%s\n<</SYS>>\n\n", c->str);
                else
                  g_string_append_printf (s, "%s\n", c->str);
              }
            else if (is_role (&msgs[i], "user"))
              g_string_append_printf (s, "%s [/INST]", c->str);
            else
              {
                g_string_append_printf (s, "%s</s>", c->str);
                inside = FALSE;
              }
          }
      }
      break;

    case RUV_CHAT_TEMPLATE_PHI3:
      for (i = 0; i < n; i++)
        g_string_append_printf (s, "<|%s|>\n%s<|end|>\n", msgs[i].role, msgs[i].content);
      if (add_ass)
        g_string_append (s, "<|assistant|>\n");
      break;

    case RUV_CHAT_TEMPLATE_PHI4:
      for (i = 0; i < n; i++)
        g_string_append_printf (s, "<|im_start|>%s<|im_sep|>%s<|im_end|>", msgs[i].role,
                                msgs[i].content);
      if (add_ass)
        g_string_append (s, "<|im_start|>assistant<|im_sep|>");
      break;

    case RUV_CHAT_TEMPLATE_FALCON3:
      for (i = 0; i < n; i++)
        g_string_append_printf (s, "<|%s|>\n%s\n", msgs[i].role, msgs[i].content);
      if (add_ass)
        g_string_append (s, "<|assistant|>\n");
      break;

    case RUV_CHAT_TEMPLATE_ZEPHYR:
      for (i = 0; i < n; i++)
        g_string_append_printf (s, "<|%s|>\n%s<|endoftext|>\n", msgs[i].role, msgs[i].content);
      if (add_ass)
        g_string_append (s, "<|assistant|>\n");
      break;

    case RUV_CHAT_TEMPLATE_GLMEDGE:
      for (i = 0; i < n; i++)
        g_string_append_printf (s, "<|%s|>\n%s", msgs[i].role, msgs[i].content);
      if (add_ass)
        g_string_append (s, "<|assistant|>");
      break;

    case RUV_CHAT_TEMPLATE_MONARCH:
      for (i = 0; i < n; i++)
        g_string_append_printf (s, "%s%s\n%s</s>\n", i == 0 ? "" : "<s>", msgs[i].role,
                                msgs[i].content);
      if (add_ass)
        g_string_append (s, "<s>assistant\n");
      break;

    case RUV_CHAT_TEMPLATE_GEMMA:
      {
        g_autoptr(GString) sys = g_string_new (NULL);

        for (i = 0; i < n; i++)
          {
            const char *role = msgs[i].role;

            if (is_role (&msgs[i], "system"))
              {
                append_trimmed (sys, msgs[i].content);
                continue;
              }
            if (is_role (&msgs[i], "assistant"))
              role = "model";
            g_string_append_printf (s, "<start_of_turn>%s\n", role);
            if (sys->len > 0 && strcmp (role, "model") != 0)
              {
                g_string_append_printf (s, "%s\n\n", sys->str);
                g_string_truncate (sys, 0);
              }
            append_trimmed (s, msgs[i].content);
            g_string_append (s, "<end_of_turn>\n");
          }
        if (add_ass)
          g_string_append (s, "<start_of_turn>model\n");
      }
      break;

    case RUV_CHAT_TEMPLATE_ORION:
      {
        g_autoptr(GString) sys = g_string_new (NULL);

        for (i = 0; i < n; i++)
          {
            if (is_role (&msgs[i], "system"))
              g_string_append (sys, msgs[i].content);
            else if (is_role (&msgs[i], "user"))
              {
                g_string_append (s, "Human: ");
                if (sys->len > 0)
                  {
                    g_string_append_printf (s, "%s\n\n", sys->str);
                    g_string_truncate (sys, 0);
                  }
                g_string_append_printf (s, "%s\n\nAssistant: </s>", msgs[i].content);
              }
            else
              g_string_append_printf (s, "%s</s>", msgs[i].content);
          }
      }
      break;

    case RUV_CHAT_TEMPLATE_OPENCHAT:
      for (i = 0; i < n; i++)
        {
          if (is_role (&msgs[i], "system"))
            g_string_append_printf (s, "%s<|end_of_turn|>", msgs[i].content);
          else
            {
              g_autofree char *role = g_strdup (msgs[i].role);

              if (role[0] != '\0')
                role[0] = g_ascii_toupper (role[0]);
              g_string_append_printf (s, "GPT4 Correct %s: %s<|end_of_turn|>", role,
                                      msgs[i].content);
            }
        }
      if (add_ass)
        g_string_append (s, "GPT4 Correct Assistant:");
      break;

    case RUV_CHAT_TEMPLATE_VICUNA:
    case RUV_CHAT_TEMPLATE_VICUNA_ORCA:
      for (i = 0; i < n; i++)
        {
          if (is_role (&msgs[i], "system"))
            g_string_append_printf (s, kind == RUV_CHAT_TEMPLATE_VICUNA_ORCA ? "SYSTEM: %s\n"
                                                                             : "%s\n\n",
                                    msgs[i].content);
          else if (is_role (&msgs[i], "user"))
            g_string_append_printf (s, "USER: %s\n", msgs[i].content);
          else if (is_role (&msgs[i], "assistant"))
            g_string_append_printf (s, "ASSISTANT: %s</s>\n", msgs[i].content);
        }
      if (add_ass)
        g_string_append (s, "ASSISTANT:");
      break;

    case RUV_CHAT_TEMPLATE_DEEPSEEK:
      for (i = 0; i < n; i++)
        {
          if (is_role (&msgs[i], "system"))
            g_string_append (s, msgs[i].content);
          else if (is_role (&msgs[i], "user"))
            g_string_append_printf (s, "### Instruction:\n%s\n", msgs[i].content);
          else if (is_role (&msgs[i], "assistant"))
            g_string_append_printf (s, "### Response:\n%s\n<|EOT|>\n", msgs[i].content);
        }
      if (add_ass)
        g_string_append (s, "### Response:\n");
      break;

    case RUV_CHAT_TEMPLATE_DEEPSEEK2:
      for (i = 0; i < n; i++)
        {
          if (is_role (&msgs[i], "system"))
            g_string_append_printf (s, "%s\n\n", msgs[i].content);
          else if (is_role (&msgs[i], "user"))
            g_string_append_printf (s, "User: %s\n\n", msgs[i].content);
          else if (is_role (&msgs[i], "assistant"))
            g_string_append_printf (s, "Assistant: %s<\xef\xbd\x9c" "end\xe2\x96\x81" "of"
                                    "\xe2\x96\x81" "sentence\xef\xbd\x9c>", msgs[i].content);
        }
      if (add_ass)
        g_string_append (s, "Assistant:");
      break;

    case RUV_CHAT_TEMPLATE_DEEPSEEK3:
      for (i = 0; i < n; i++)
        {
          if (is_role (&msgs[i], "system"))
            g_string_append_printf (s, "%s\n\n", msgs[i].content);
          else if (is_role (&msgs[i], "user"))
            g_string_append_printf (s, "<\xef\xbd\x9c" "User\xef\xbd\x9c>%s", msgs[i].content);
          else if (is_role (&msgs[i], "assistant"))
            g_string_append_printf (s, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>%s<\xef\xbd\x9c"
                                    "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
                                    msgs[i].content);
        }
      if (add_ass)
        g_string_append (s, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
      break;

    case RUV_CHAT_TEMPLATE_COMMAND_R:
      for (i = 0; i < n; i++)
        {
          const char *tag = is_role (&msgs[i], "system") ? "<|SYSTEM_TOKEN|>"
                            : is_role (&msgs[i], "user") ? "<|USER_TOKEN|>"
                            : is_role (&msgs[i], "assistant") ? "<|CHATBOT_TOKEN|>" : NULL;

          if (tag == NULL)
            continue;
          g_string_append_printf (s, "<|START_OF_TURN_TOKEN|>%s", tag);
          append_trimmed (s, msgs[i].content);
          g_string_append (s, "<|END_OF_TURN_TOKEN|>");
        }
      if (add_ass)
        g_string_append (s, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
      break;

    case RUV_CHAT_TEMPLATE_LLAMA3:
      for (i = 0; i < n; i++)
        {
          g_string_append_printf (s, "<|start_header_id|>%s<|end_header_id|>\n\n", msgs[i].role);
          append_trimmed (s, msgs[i].content);
          g_string_append (s, "<|eot_id|>");
        }
      if (add_ass)
        g_string_append (s, "<|start_header_id|>assistant<|end_header_id|>\n\n");
      break;

    case RUV_CHAT_TEMPLATE_UNKNOWN:
    case RUV_CHAT_TEMPLATE_CHATML:
    default:
      for (i = 0; i < n; i++)
        g_string_append_printf (s, "<|im_start|>%s\n%s<|im_end|>\n", msgs[i].role,
                                msgs[i].content);
      if (add_ass)
        g_string_append (s, "<|im_start|>assistant\n");
      break;
    }
  return g_string_free (s, FALSE);
}
