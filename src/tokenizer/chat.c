/*
 * chat.c — Qwen3.5's chat template, written in C. It produces, byte for byte,
 * what the jinja template shipped in Qwen3.5's tokenizer_config.json renders
 * for text conversations (tests/tokenizer/test_chat.c compares against strings
 * rendered by jinja2, tests/fixtures/chat/):
 *
 *   [<|im_start|>system\n{system}<|im_end|>\n]
 *   <|im_start|>user\n{content}<|im_end|>\n
 *   <|im_start|>assistant\n{content}<|im_end|>\n            (turns before the last user query)
 *   <|im_start|>assistant\n<think>\n{reasoning}\n</think>\n\n{content}<|im_end|>\n   (after it)
 *   <|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n    (tool results)
 *   <|im_start|>assistant\n<think>\n                        (generation prompt; thinking off:
 *                                                            <think>\n\n</think>\n\n)
 * Every content is stripped of surrounding whitespace as Python's str.strip()
 * does (the template's |trim). An assistant's reasoning is its own field, or,
 * when absent, the text before "</think>" in its content. The "last user
 * query" is the last user message that is not just a <tool_response> block.
 * Tool definitions, tool calls and images are not supported.
 */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "tokenizer/utf8.h"

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *p, size_t n) {
    if (b->oom || n == 0) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void puts_(sbuf *b, const char *p) { put(b, p, strlen(p)); }

/* A view of a string. */
typedef struct span {
    const char *p;
    size_t n;
} span;

static span span_of(const char *s) { return (span){s ? s : "", s ? strlen(s) : 0}; }

/* Python's str.strip(): Unicode whitespace off both ends. */
static span py_strip(span s) {
    const uint8_t *p = (const uint8_t *)s.p;
    size_t a = 0, b = s.n;
    while (a < b) {
        uint32_t cp;
        int k = md_utf8_decode(p + a, b - a, &cp);
        if (k == 0 || !md_unicode_is_py_space(cp)) break;
        a += (size_t)k;
    }
    while (b > a) {
        size_t k = b - 1;
        while (k > a && (p[k] & 0xC0) == 0x80) k--;
        uint32_t cp;
        if (md_utf8_decode(p + k, b - k, &cp) != (int)(b - k) || !md_unicode_is_py_space(cp)) break;
        b = k;
    }
    return (span){s.p + a, b - a};
}

static span strip_newlines(span s, bool left, bool right) {
    while (left && s.n && s.p[0] == '\n') s.p++, s.n--;
    while (right && s.n && s.p[s.n - 1] == '\n') s.n--;
    return s;
}

/* First / last occurrence of needle in s, or NULL. */
static const char *find_first(span s, const char *needle) {
    const size_t k = strlen(needle);
    for (size_t i = 0; i + k <= s.n; i++)
        if (memcmp(s.p + i, needle, k) == 0) return s.p + i;
    return NULL;
}

static const char *find_last(span s, const char *needle) {
    const size_t k = strlen(needle);
    for (size_t i = s.n >= k ? s.n - k + 1 : 0; i-- > 0;)
        if (memcmp(s.p + i, needle, k) == 0) return s.p + i;
    return NULL;
}

static bool starts_with(span s, const char *x) { return s.n >= strlen(x) && memcmp(s.p, x, strlen(x)) == 0; }
static bool ends_with(span s, const char *x) {
    const size_t k = strlen(x);
    return s.n >= k && memcmp(s.p + s.n - k, x, k) == 0;
}

static bool role_is(const md_chat_message *m, const char *r) { return m->role && strcmp(m->role, r) == 0; }

md_chat_params md_chat_default_params(void) {
    md_chat_params p = {.add_generation_prompt = true, .enable_thinking = true};
    return p;
}

md_status md_chat_render(const md_chat_message *msgs, int n, const md_chat_params *params, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    const md_chat_params p = params ? *params : md_chat_default_params();
    if (n <= 0 || !msgs) return md_fail(MD_ERR_INVALID_ARG, "chat template: no messages provided");
    for (int i = 0; i < n; i++) {
        const md_chat_message *m = &msgs[i];
        if (!role_is(m, "system") && !role_is(m, "user") && !role_is(m, "assistant") && !role_is(m, "tool"))
            return md_fail(MD_ERR_INVALID_ARG, "chat template: message %d has unexpected role '%s'", i,
                           m->role ? m->role : "(none)");
        if (role_is(m, "system") && i != 0)
            return md_fail(MD_ERR_INVALID_ARG, "chat template: the system message must be the first (message %d)", i);
        const size_t bad = md_utf8_validate((const uint8_t *)span_of(m->content).p, span_of(m->content).n);
        if (bad < span_of(m->content).n)
            return md_fail(MD_ERR_INVALID_ARG, "chat template: message %d is not valid UTF-8 at byte %zu", i, bad);
    }
    /* the last user message that is a real query, not a tool response */
    int last_query = -1;
    for (int i = n - 1; i >= 0; i--) {
        if (!role_is(&msgs[i], "user")) continue;
        const span c = py_strip(span_of(msgs[i].content));
        if (!(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
            last_query = i;
            break;
        }
    }
    if (last_query < 0) return md_fail(MD_ERR_INVALID_ARG, "chat template: no user query found in the messages");

    sbuf b = {0};
    for (int i = 0; i < n; i++) {
        const md_chat_message *m = &msgs[i];
        span content = py_strip(span_of(m->content));
        if (role_is(m, "system")) {
            puts_(&b, "<|im_start|>system\n");
            put(&b, content.p, content.n);
            puts_(&b, "<|im_end|>\n");
        } else if (role_is(m, "user")) {
            puts_(&b, "<|im_start|>user\n");
            put(&b, content.p, content.n);
            puts_(&b, "<|im_end|>\n");
        } else if (role_is(m, "assistant")) {
            span reasoning = {"", 0};
            if (m->reasoning) {
                reasoning = span_of(m->reasoning);
            } else if (find_first(content, "</think>")) {
                const char *close = find_first(content, "</think>"), *last_close = find_last(content, "</think>");
                span before = strip_newlines((span){content.p, (size_t)(close - content.p)}, false, true);
                const char *open = find_last(before, "<think>");
                if (open) before = (span){open + 7, before.n - (size_t)(open + 7 - before.p)};
                reasoning = strip_newlines(before, true, false);
                const char *after = last_close + 8;
                content = strip_newlines((span){after, content.n - (size_t)(after - content.p)}, true, false);
            }
            reasoning = py_strip(reasoning);
            puts_(&b, "<|im_start|>assistant\n");
            if (i > last_query) {
                puts_(&b, "<think>\n");
                put(&b, reasoning.p, reasoning.n);
                puts_(&b, "\n</think>\n\n");
            }
            put(&b, content.p, content.n);
            puts_(&b, "<|im_end|>\n");
        } else { /* tool: consecutive results share one user turn */
            if (i > 0 && !role_is(&msgs[i - 1], "tool")) puts_(&b, "<|im_start|>user");
            puts_(&b, "\n<tool_response>\n");
            put(&b, content.p, content.n);
            puts_(&b, "\n</tool_response>");
            if (i == n - 1 || !role_is(&msgs[i + 1], "tool")) puts_(&b, "<|im_end|>\n");
        }
    }
    if (p.add_generation_prompt) {
        puts_(&b, "<|im_start|>assistant\n");
        puts_(&b, p.enable_thinking ? "<think>\n" : "<think>\n\n</think>\n\n");
    }
    if (b.oom || !b.s) { /* never empty: there is a user message */
        free(b.s);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "chat template: out of memory");
    }
    *out = b.s;
    if (len) *len = b.n;
    return MD_OK;
}
