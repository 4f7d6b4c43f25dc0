/* ruv-hub-names.c — what names from the Hub or the user may be: repository
 * ids, paths inside a repository, revisions (checked before any path or URL
 * is built from them).
 * SPDX-License-Identifier: MIT
 */
#include "ruv-hub.h"

#include <string.h>

#include "ruv-error.h"

#define MAX_PATH_BYTES 1024
#define MAX_COMPONENT_BYTES 255
#define MAX_REPO_PART 96

static gboolean
repo_part_ok (const char *s,
              gsize       len)
{
  gsize i;

  if (len == 0 || len > MAX_REPO_PART || s[0] == '.' || s[0] == '-')
    return FALSE;
  for (i = 0; i < len; i++)
    {
      char c = s[i];

      if (!g_ascii_isalnum (c) && c != '-' && c != '_' && c != '.')
        return FALSE;
      if (c == '.' && i + 1 < len && s[i + 1] == '.')
        return FALSE;
    }
  return TRUE;
}

gboolean
ruv_hub_check_repo_id (const char  *repo_id,
                       GError     **error)
{
  const char *slash;

  if (repo_id != NULL)
    {
      slash = strchr (repo_id, '/');
      if (slash != NULL && strchr (slash + 1, '/') == NULL
          && repo_part_ok (repo_id, (gsize) (slash - repo_id))
          && repo_part_ok (slash + 1, strlen (slash + 1)))
        return TRUE;
    }
  g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
               "'%s' is not a Hugging Face repository id (expected owner/name)",
               repo_id != NULL ? repo_id : "(null)");
  return FALSE;
}

static gboolean
path_error (GError    **error,
            const char *path,
            const char *why)
{
  g_autofree char *shown = g_strescape (path, NULL);

  g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "unsafe file name '%s' from the Hub: %s",
               shown, why);
  return FALSE;
}

gboolean
ruv_hub_check_path (const char  *path,
                    GError     **error)
{
  gsize len, i, comp_start;

  if (path == NULL || *path == '\0')
    return path_error (error, "", "empty");
  len = strlen (path);
  if (len > MAX_PATH_BYTES)
    return path_error (error, path, "too long");
  if (!g_utf8_validate (path, (gssize) len, NULL))
    return path_error (error, path, "not UTF-8");
  if (path[0] == '/')
    return path_error (error, path, "absolute path");
  if (len >= 2 && g_ascii_isalpha (path[0]) && path[1] == ':')
    return path_error (error, path, "drive letter");
  comp_start = 0;
  for (i = 0; i <= len; i++)
    {
      guchar c = (guchar) path[i];

      if (i < len && (c < 0x20 || c == 0x7f))
        return path_error (error, path, "control character");
      if (c == '\\')
        return path_error (error, path, "backslash");
      if (i == len || c == '/')
        {
          gsize clen = i - comp_start;

          if (clen == 0)
            return path_error (error, path, "empty component");
          if (clen > MAX_COMPONENT_BYTES)
            return path_error (error, path, "component longer than 255 bytes");
          if ((clen == 1 && path[comp_start] == '.')
              || (clen == 2 && path[comp_start] == '.' && path[comp_start + 1] == '.'))
            return path_error (error, path, "'.' or '..' component");
          comp_start = i + 1;
        }
    }
  return TRUE;
}

gboolean
ruv_hub_check_revision (const char  *revision,
                        GError     **error)
{
  if (revision == NULL || strlen (revision) > 255 || strchr (revision, '?') != NULL
      || strchr (revision, '#') != NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "'%s' is not a valid revision",
                   revision != NULL ? revision : "(null)");
      return FALSE;
    }
  return ruv_hub_check_path (revision, error);
}
