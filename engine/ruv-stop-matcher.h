/* ruv-stop-matcher.h — finds stop sequences in streamed text, across token
 * boundaries, without ever emitting any part of a stop sequence.
 * SPDX-License-Identifier: MIT
 *
 * Feed it the text of each token (complete UTF-8); it says which bytes are
 * safe to show now. A suffix that could still grow into a stop sequence is
 * held back until it either completes (then generation ends at the earliest
 * match and the held text is dropped) or cannot (then it is released).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _RuvStopMatcher RuvStopMatcher;

RuvStopMatcher *ruv_stop_matcher_new    (const char * const *stops);
void            ruv_stop_matcher_free   (RuvStopMatcher     *self);
/* Appends `len` bytes. Returns TRUE when a stop sequence has matched; the text
 * before the earliest match is then the whole output. *emit / *emit_len give
 * the newly releasable text (valid until the next call). */
gboolean        ruv_stop_matcher_push   (RuvStopMatcher     *self,
                                         const char         *text,
                                         gsize               len,
                                         const char        **emit,
                                         gsize              *emit_len);
/* At the end of generation: releases whatever was held back. */
void            ruv_stop_matcher_flush  (RuvStopMatcher     *self,
                                         const char        **emit,
                                         gsize              *emit_len);
/* The output so far (what has been or may be emitted, without any stop). */
const char     *ruv_stop_matcher_get_text (RuvStopMatcher   *self,
                                           gsize            *len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvStopMatcher, ruv_stop_matcher_free)

G_END_DECLS
