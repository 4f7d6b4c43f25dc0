/* chat-record.c — records llama.cpp's llama_chat_apply_template outputs as test expectations.
 * SPDX-License-Identifier: MIT
 *
 * Not part of the build: a provenance tool, linked against the refharness's prebuilt libllama
 * (node-llama-cpp 3.21.1, llama.cpp v0.4.0, commit 5b4ebc5). See README.md.
 *
 *   chat-record > chat-templates.expected.txt
 *
 * Output, tab-separated:
 *   C conv role HEX-CONTENT            the conversations (in order)
 *   A KIND-OR-TEMPLATE conv add_ass HEX-OUTPUT
 *     KIND-OR-TEMPLATE is "name:<llama.cpp template name>" or "tmpl:<hex of a template text>"
 */
#include "llama.h"

#include <stdio.h>
#include <string.h>

static void put_hex (const char *s, int n)
{
  for (int i = 0; i < n; i++)
    printf ("%02x", (unsigned char) s[i]);
}

static const llama_chat_message conv0[] = {
  { "system", "You are a helpful assistant." },
  { "user", "Hello!" },
};
static const llama_chat_message conv1[] = {
  { "system", "  Be brief.\n" },
  { "user", "What is 2+2? " },
  { "assistant", " 4.\n" },
  { "user", "\nAnd 3+3?" },
};
static const llama_chat_message conv2[] = {
  { "user", "Hi" },
};
static const llama_chat_message conv3[] = {
  { "user", "Hi" },
  { "assistant", "Hello, how can I help?" },
  { "user", "Tell me a joke." },
};
static const struct { const llama_chat_message *m; int n; } convs[] = {
  { conv0, 2 }, { conv1, 4 }, { conv2, 1 }, { conv3, 3 },
};

static const char *names[] = {
  "chatml", "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "mistral-v1",
  "mistral-v3", "mistral-v3-tekken", "mistral-v7", "mistral-v7-tekken", "phi3", "phi4",
  "falcon3", "zephyr", "monarch", "gemma", "orion", "openchat", "vicuna", "vicuna-orca",
  "deepseek", "deepseek2", "deepseek3", "command-r", "llama3",
};

/* Template texts (or their signature parts) as models ship them. */
static const char *templates[] = {
  /* Qwen2.5 (abridged) */
  "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
  /* Llama 3 */
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  /* Llama 2 chat */
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
  /* Mistral 7B Instruct v0.1/v0.2 */
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
  /* Mistral v7 (Mistral-Small-24B) signature */
  "{{- bos_token }}{%- for message in loop_messages %}{%- if message['role'] == 'system' %}{{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}{%- elif message['role'] == 'user' %}{{- '[INST]' + message['content'] + '[/INST]' }}{%- endif %}{%- endfor %}",
  /* Mistral v3 (Mistral-7B-Instruct-v0.3) signature */
  "{%- for message in loop_messages %}{%- if message[\"role\"] == \"user\" %}{%- if tools is not none and (message == user_messages[-1]) %}{{- \"[AVAILABLE_TOOLS] [\" }}{%- endif %}{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}{%- endif %}{%- endfor %}",
  /* Gemma 2 */
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
  /* Phi-3 */
  "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
  /* Zephyr */
  "{% for message in messages %}\\n{% if message['role'] == 'user' %}\\n{{ '<|user|>\\n' + message['content'] + eos_token }}\\n{% elif message['role'] == 'system' %}\\n{{ '<|system|>\\n' + message['content'] + eos_token }}\\n{% elif message['role'] == 'assistant' %}\\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\\n{% endif %}\\n{% if loop.last and add_generation_prompt %}\\n{{ '<|assistant|>' }}\\n{% endif %}\\n{% endfor %}<|endoftext|>",
  /* DeepSeek Coder */
  "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}{% else %}{% if message['role'] == 'user' %}{{'### Instruction:\\n' + message['content'] + '\\n'}}{% else %}{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}{% endif %}{% endif %}{% endfor %}{{'### Response:'}}",
  /* Command-R signature */
  "{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}",
  /* Phi-4 */
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endfor %}",
};

static void record (const char *tmpl, const char *label, int label_hex)
{
  static char buf[1 << 16];

  for (int c = 0; c < (int) (sizeof convs / sizeof convs[0]); c++)
    for (int add = 0; add < 2; add++)
      {
        int n = llama_chat_apply_template (tmpl, convs[c].m, convs[c].n, add, buf, sizeof buf);

        if (n < 0)
          continue;
        printf ("A\t%s", label_hex ? "tmpl:" : "name:");
        if (label_hex)
          put_hex (label, (int) strlen (label));
        else
          printf ("%s", label);
        printf ("\t%d\t%d\t", c, add);
        put_hex (buf, n);
        printf ("\n");
      }
}

int main (void)
{
  for (int c = 0; c < (int) (sizeof convs / sizeof convs[0]); c++)
    for (int i = 0; i < convs[c].n; i++)
      {
        printf ("C\t%d\t%s\t", c, convs[c].m[i].role);
        put_hex (convs[c].m[i].content, (int) strlen (convs[c].m[i].content));
        printf ("\n");
      }
  for (int i = 0; i < (int) (sizeof names / sizeof names[0]); i++)
    record (names[i], names[i], 0);
  for (int i = 0; i < (int) (sizeof templates / sizeof templates[0]); i++)
    record (templates[i], templates[i], 1);
  return 0;
}
