/* ruvllm.h — the public API of libruvllm, in GObject idiom.
 * SPDX-License-Identifier: MIT
 *
 * The app and ruvllm-cli include this one header. Internals (bound weights,
 * private helpers) live in *-private.h files and are not part of it.
 */
#pragma once

#include "ruv-error.h"
#include "ruv-types.h"

/* Models and inference (the reference's backend). */
#include "ruv-gguf.h"
#include "ruv-gguf-writer.h"
#include "ruv-model.h"
#include "ruv-model-config.h"
#include "ruv-tokenizer.h"
#include "ruv-chat-template.h"
#include "ruv-generate-params.h"
#include "ruv-sampler.h"
#include "ruv-stop-matcher.h"
#include "ruv-forward.h"
#include "ruv-kv-cache.h"
#include "ruv-backend.h"
#include "ruv-cpu-backend.h"
#include "ruv-quantize.h"

/* Learning from ratings. */
#include "ruv-lora.h"
#include "ruv-lora-gguf.h"
#include "ruv-ewc.h"
#include "ruv-sona.h"
#include "ruv-learner.h"

/* Chats and their storage. */
#include "ruv-store.h"
#include "ruv-chat-session.h"

/* Models from the Hub. */
#include "ruv-hub.h"
#include "ruv-download.h"
#include "ruv-gguf-header.h"
#include "ruv-ram-fit.h"
#include "ruv-catalog.h"
#include "ruv-registry.h"
