/*
 * json.h — typed field access over cJSON with errors that name the file and
 * the field ("config.json: field 'hidden_size' must be a positive integer").
 */
#ifndef MD_COMMON_JSON_H
#define MD_COMMON_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "megadelta.h"

/* Parses a file; *out must be freed with cJSON_Delete. */
md_status md_json_parse_file(const char *path, cJSON **out);

/* Each getter: when the field is absent, *present (may be NULL) is set false and
 * the default is stored; a field of the wrong type is an error naming `where`
 * (the file) and the key. */
md_status md_json_int(const cJSON *obj, const char *key, int64_t def, int64_t *out, bool *present,
                      const char *where);
md_status md_json_num(const cJSON *obj, const char *key, double def, double *out, bool *present,
                      const char *where);
md_status md_json_bool(const cJSON *obj, const char *key, bool def, bool *out, bool *present,
                       const char *where);
/* The returned string points into obj (NULL when absent). */
md_status md_json_str(const cJSON *obj, const char *key, const char **out, const char *where);

#endif
