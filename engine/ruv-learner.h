/* ruv-learner.h — a model's learning from ratings, kept in the user's store:
 * SONA's loops plus versioned adapter snapshots and rating outcomes.
 * SPDX-License-Identifier: MIT
 *
 * The adapters belong to the user. A RuvLearner wraps a RuvSonaLlm for one
 * model (identified in the store by `model_key`, e.g. the GGUF file name) and
 * an optional RuvStore:
 *  - every consolidation (background loop) and deep run that changes the
 *    weights becomes a snapshot: the adapter as GGUF LoRA bytes
 *    (ruv-lora-gguf.h), parent = the snapshot in effect before it, so the
 *    history is a tree; the new snapshot is then the one in effect (head);
 *  - restore (roll back to any snapshot of this model), reset (the adapter
 *    back to a no-op; recorded as a snapshot noted "reset"), export and
 *    import as GGUF LoRA (an import is recorded as a snapshot noted "import");
 *  - rate() runs the instant loop on a trace and records the outcome
 *    (applied / skipped, latency, loss before / after the step, the head
 *    snapshot) against the rated message with ruv_store_record_adaptation.
 * A learner made with a store starts from the newest snapshot of its model.
 * Without a store everything works except the recording (head stays 0).
 * Restoring keeps the same RuvMicroLora object when the snapshot has the same
 * adapter layout (contexts using it see the new weights at once); otherwise
 * the SONA gets a new adapter set (ruv_learner_get_lora) and its pending
 * samples and EWC state are cleared.
 */
#pragma once

#include <gio/gio.h>

#include "ruv-sona.h"
#include "ruv-store.h"

G_BEGIN_DECLS

#define RUV_TYPE_LEARNER (ruv_learner_get_type ())
G_DECLARE_FINAL_TYPE (RuvLearner, ruv_learner, RUV, LEARNER, GObject)

/* config NULL: SONA's defaults for the model. store may be NULL. A stored
 * snapshot that no longer loads (other model, corrupt) is skipped with a
 * warning; the learner then starts fresh. */
RuvLearner   *ruv_learner_new           (RuvModel               *model,
                                         const char             *model_key,
                                         RuvStore               *store,
                                         const RuvSonaLlmConfig *config,
                                         GError                **error);
RuvSonaLlm   *ruv_learner_get_sona      (RuvLearner             *self);
RuvMicroLora *ruv_learner_get_lora      (RuvLearner             *self);
/* The snapshot in effect (0: none yet). */
gint64        ruv_learner_get_head      (RuvLearner             *self);

/* Instant loop on a trace (ownership taken) for the stored message
 * message_id (> 0: its outcome is recorded; 0: not stored). rating: +1 up,
 * -1 down, or a quality in [0, 1] (reward 2 q - 1). loss_after (may be NULL)
 * receives the rated objective after the step. */
gboolean      ruv_learner_rate          (RuvLearner             *self,
                                         RuvSonaTrace           *trace,
                                         gint64                  message_id,
                                         const char             *key,
                                         double                  rating,
                                         RuvAdaptationResult    *result,
                                         double                 *loss_after,
                                         GError                **error);
/* Background consolidation now; a snapshot when the weights changed. */
gboolean      ruv_learner_consolidate   (RuvLearner             *self,
                                         RuvAdaptationResult    *result,
                                         GError                **error);
/* Deep run over every stored sample; a snapshot afterwards. */
gboolean      ruv_learner_deep          (RuvLearner             *self,
                                         RuvSonaProgressFunc     progress,
                                         gpointer                user_data,
                                         GCancellable           *cancellable,
                                         GArray                 *loss_curve,
                                         GError                **error);
/* Records the current adapter as a snapshot (parent: head); returns its id
 * (0 without a store or on error). */
gint64        ruv_learner_snapshot      (RuvLearner             *self,
                                         const char             *note,
                                         GError                **error);
/* Rolls back to snapshot_id (one of this model's). RUV_ERROR_NOT_FOUND /
 * RUV_ERROR_ADAPTER; the current adapter is kept on failure. */
gboolean      ruv_learner_restore       (RuvLearner             *self,
                                         gint64                  snapshot_id,
                                         GError                **error);
/* Adapter back to a no-op, samples and EWC cleared; recorded as "reset". */
gboolean      ruv_learner_reset         (RuvLearner             *self,
                                         GError                **error);
gboolean      ruv_learner_export        (RuvLearner             *self,
                                         const char             *path,
                                         GError                **error);
/* Loads a GGUF LoRA adapter (ours or llama.cpp-made) for this model. */
gboolean      ruv_learner_import        (RuvLearner             *self,
                                         const char             *path,
                                         GError                **error);

G_END_DECLS
