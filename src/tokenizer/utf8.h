/*
 * utf8.h — the UTF-8 rules the tokenizer and the text output share:
 * validation (input text must be valid UTF-8), lossy conversion of decoded
 * bytes (each maximal ill-formed subpart becomes U+FFFD, the Unicode
 * "substitution of maximal subparts" practice that Rust's from_utf8_lossy and
 * so HF `tokenizers` follow), and the length of an incomplete character at the
 * end of a buffer (what a streaming decoder must hold back).
 */
#ifndef MD_TOKENIZER_UTF8_H
#define MD_TOKENIZER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed character starting at s[0] (1..4), or 0 when the
 * bytes there are not a complete well-formed character. *cp receives the code
 * point. n is the number of bytes available. */
int md_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Length of the maximal ill-formed subpart at s[0] (>= 1) when md_utf8_decode
 * returned 0: the longest prefix that is still a valid start of a character,
 * or 1 byte. */
int md_utf8_invalid_len(const uint8_t *s, size_t n);

/* Offset of the first byte that is not well-formed UTF-8, or n when valid. */
size_t md_utf8_validate(const uint8_t *s, size_t n);

/* Bytes at the end of s[0..n) that form a valid but incomplete character
 * (0..3): more bytes could still complete it. */
int md_utf8_incomplete_tail(const uint8_t *s, size_t n);

/* Writes s[0..n) to out with U+FFFD for each maximal ill-formed subpart;
 * out needs 3*n bytes. Returns the bytes written. */
size_t md_utf8_lossy(const uint8_t *s, size_t n, uint8_t *out);

/* Encodes cp (< 0x110000) into out[0..4); returns its length. */
int md_utf8_encode(uint32_t cp, uint8_t *out);

/* Python's str.isspace() (what jinja2's trim strips). */
bool md_unicode_is_py_space(uint32_t cp);
/* Unicode White_Space (Rust's \s, used by HF for lstrip/rstrip). */
bool md_unicode_is_white_space(uint32_t cp);
/* Rust regex's Unicode \w (HF's single_word test): letters, marks, Nd, Nl,
 * Pc, the joiners, and the Other_Alphabetic symbols (circled letters). */
bool md_unicode_is_word(uint32_t cp);
/* The code point before s[i] (i > 0) in valid UTF-8. */
uint32_t md_utf8_prev(const uint8_t *s, size_t i);

#endif
