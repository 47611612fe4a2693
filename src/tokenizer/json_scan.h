/*
 * json_scan.h — a reader for the two bulk members of tokenizer.json,
 * model.vocab (an object of string -> id) and model.merges (a list of "a b"
 * strings or ["a", "b"] pairs): 150k-250k entries each, 10+ MB of text.
 *
 * Why not cJSON for them: building cJSON's tree of a Qwen tokenizer.json is
 * about a million small allocations and 50 MB of memory touched; on the
 * project's 2-core VM that alone took 330-370 ms, over the 300 ms budget for
 * the whole load. These two shapes are read here straight into the
 * tokenizer's arena instead; cJSON still parses everything else (the file with
 * these two members replaced by {} and []), so the structure, the options and
 * all error reporting of the small parts stay with the library.
 */
#ifndef MD_TOKENIZER_JSON_SCAN_H
#define MD_TOKENIZER_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Skips whitespace. */
const char *md_jscan_ws(const char *p, const char *end);
/* End of the JSON value starting at p (any kind), or NULL if malformed. */
const char *md_jscan_skip(const char *p, const char *end);
/* The start of the value of member key of the object at obj (the '{'),
 * skipping the members before it; NULL when obj is not an object or has no
 * such member. */
const char *md_jscan_member(const char *obj, const char *end, const char *key);
/* Reads the string literal at p (the '"') into out[0..cap), NUL-terminated;
 * *len its length (unescaping never grows text, so the literal's length is
 * always room enough). Returns the end of the literal, or NULL when malformed
 * (bad escape, lone surrogate, no closing quote) or longer than cap - 1. */
const char *md_jscan_string(const char *p, const char *end, char *out, size_t cap, size_t *len);
/* Reads a non-negative integer at p; NULL when there is none. */
const char *md_jscan_uint(const char *p, const char *end, int64_t *v);

#endif
