/* ruv-backend.c — the RuvBackend interface and its boxed values.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-backend.h"

G_DEFINE_INTERFACE (RuvBackend, ruv_backend, G_TYPE_OBJECT)

static void
ruv_backend_default_init (RuvBackendInterface *iface)
{
}

GType
ruv_finish_reason_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      static const GEnumValue values[] = {
        { RUV_FINISH_REASON_LENGTH, "RUV_FINISH_REASON_LENGTH", "length" },
        { RUV_FINISH_REASON_STOP, "RUV_FINISH_REASON_STOP", "stop" },
        { RUV_FINISH_REASON_END_OF_TURN, "RUV_FINISH_REASON_END_OF_TURN", "end-of-turn" },
        { RUV_FINISH_REASON_CANCELLED, "RUV_FINISH_REASON_CANCELLED", "cancelled" },
        { 0, NULL, NULL }
      };
      GType t = g_enum_register_static ("RuvFinishReason", values);

      g_once_init_leave (&type_id, t);
    }
  return type_id;
}

const char *
ruv_finish_reason_name (RuvFinishReason reason)
{
  switch (reason)
    {
    case RUV_FINISH_REASON_LENGTH:
      return "length";
    case RUV_FINISH_REASON_STOP:
      return "stop";
    case RUV_FINISH_REASON_END_OF_TURN:
      return "end_of_turn";
    case RUV_FINISH_REASON_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
    }
}

G_DEFINE_BOXED_TYPE (RuvModelInfo, ruv_model_info, ruv_model_info_copy, ruv_model_info_free)

RuvModelInfo *
ruv_model_info_copy (const RuvModelInfo *self)
{
  RuvModelInfo *copy;

  g_return_val_if_fail (self != NULL, NULL);

  copy = g_memdup2 (self, sizeof *self);
  copy->path = g_strdup (self->path);
  copy->name = g_strdup (self->name);
  copy->architecture = g_strdup (self->architecture);
  copy->quantization = g_strdup (self->quantization);
  copy->chat_template = g_strdup (self->chat_template);
  return copy;
}

void
ruv_model_info_free (RuvModelInfo *self)
{
  if (self == NULL)
    return;
  g_free (self->path);
  g_free (self->name);
  g_free (self->architecture);
  g_free (self->quantization);
  g_free (self->chat_template);
  g_free (self);
}

G_DEFINE_BOXED_TYPE (RuvGenerateResult, ruv_generate_result,
                     ruv_generate_result_copy, ruv_generate_result_free)

RuvGenerateResult *
ruv_generate_result_copy (const RuvGenerateResult *self)
{
  RuvGenerateResult *copy;

  g_return_val_if_fail (self != NULL, NULL);

  copy = g_memdup2 (self, sizeof *self);
  copy->text = g_strdup (self->text);
  return copy;
}

void
ruv_generate_result_free (RuvGenerateResult *self)
{
  if (self == NULL)
    return;
  g_free (self->text);
  g_free (self);
}

gboolean
ruv_backend_load_model (RuvBackend            *self,
                        const char            *model_id,
                        const RuvModelConfig  *config,
                        GCancellable          *cancellable,
                        GError               **error)
{
  g_return_val_if_fail (RUV_IS_BACKEND (self), FALSE);
  g_return_val_if_fail (model_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return RUV_BACKEND_GET_IFACE (self)->load_model (self, model_id, config, cancellable,
                                                   error);
}

char *
ruv_backend_generate (RuvBackend               *self,
                      const char               *prompt,
                      const RuvGenerateParams  *params,
                      GCancellable             *cancellable,
                      GError                  **error)
{
  g_return_val_if_fail (RUV_IS_BACKEND (self), NULL);
  g_return_val_if_fail (prompt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return RUV_BACKEND_GET_IFACE (self)->generate (self, prompt, params, cancellable, error);
}

gboolean
ruv_backend_generate_stream (RuvBackend               *self,
                             const char               *prompt,
                             const RuvGenerateParams  *params,
                             RuvTokenFunc              func,
                             gpointer                  user_data,
                             GCancellable             *cancellable,
                             GError                  **error)
{
  g_return_val_if_fail (RUV_IS_BACKEND (self), FALSE);
  g_return_val_if_fail (prompt != NULL, FALSE);
  g_return_val_if_fail (func != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return RUV_BACKEND_GET_IFACE (self)->generate_stream (self, prompt, params, func, user_data,
                                                        cancellable, error);
}

RuvTokenizer *
ruv_backend_get_tokenizer (RuvBackend *self)
{
  g_return_val_if_fail (RUV_IS_BACKEND (self), NULL);

  return RUV_BACKEND_GET_IFACE (self)->get_tokenizer (self);
}

RuvModelInfo *
ruv_backend_get_model_info (RuvBackend *self)
{
  g_return_val_if_fail (RUV_IS_BACKEND (self), NULL);

  return RUV_BACKEND_GET_IFACE (self)->get_model_info (self);
}

gboolean
ruv_backend_is_loaded (RuvBackend *self)
{
  g_return_val_if_fail (RUV_IS_BACKEND (self), FALSE);

  return RUV_BACKEND_GET_IFACE (self)->is_loaded (self);
}
