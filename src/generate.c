/*
 * generate.c — the generation loop under `megadelta generate` and `chat`:
 * prefill the prompt (in chunks, so Ctrl-C is noticed between them), sample
 * the first token from the prefill's logits, then decode-and-sample one token
 * at a time, streaming text, until a stop:
 *   - a stop token (the model's eos ids, the caller's extra ids): not printed;
 *   - a stop string: the text ends right before it;
 *   - n_predict tokens, a full context, the interrupt flag, or the callback.
 * Text reaches the callback only when final: the tokenizer stream holds back
 * an incomplete UTF-8 character, and this file holds back any tail of the text
 * that could still grow into a stop string.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/status.h"
#include "sample.h"
#include "session.h"

md_generate_params md_generate_default_params(void) {
    md_generate_params p;
    memset(&p, 0, sizeof p);
    p.n_predict = -1;
    p.stop_at_model_eos = true;
    p.skip_special = true;
    return p;
}

const char *md_stop_reason_name(md_stop_reason r) {
    switch (r) {
    case MD_STOP_NONE: return "none";
    case MD_STOP_LENGTH: return "length";
    case MD_STOP_EOS: return "eos";
    case MD_STOP_STRING: return "stop string";
    case MD_STOP_CONTEXT: return "context full";
    case MD_STOP_INTERRUPTED: return "interrupted";
    case MD_STOP_CALLBACK: return "callback";
    }
    return "unknown";
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Text held back while it may still be the start of a stop string. */
typedef struct text_out {
    const md_generate_params *p;
    char *held;
    size_t n, cap;
    md_stop_reason stop; /* STRING or CALLBACK once one happened */
} text_out;

static bool emit(text_out *o, const char *s, size_t n) {
    if (n == 0 || !o->p->on_text) return true;
    if (!o->p->on_text(s, n, o->p->user)) {
        o->stop = MD_STOP_CALLBACK;
        return false;
    }
    return true;
}

/* Longest suffix of s[0..n) that is a proper prefix of some stop string. */
static size_t stop_prefix_tail(const md_generate_params *p, const char *s, size_t n) {
    size_t best = 0;
    for (int i = 0; i < p->n_stop_strings; i++) {
        const char *x = p->stop_strings[i];
        const size_t k = x ? strlen(x) : 0;
        for (size_t len = (k - 1 < n ? k - 1 : n); k > 0 && len > best; len--)
            if (memcmp(s + n - len, x, len) == 0) {
                best = len;
                break;
            }
    }
    return best;
}

/* Adds decoded text; final says nothing more will come. Returns false once
 * generation must stop (a stop string was found, or the callback said so). */
static md_status feed_text(text_out *o, const char *s, size_t n, bool final, bool *go_on) {
    *go_on = true;
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + n + 1) cap *= 2;
        char *h = realloc(o->held, cap);
        if (!h) return md_fail(MD_ERR_OUT_OF_MEMORY, "generate: out of memory");
        o->held = h;
        o->cap = cap;
    }
    memcpy(o->held + o->n, s, n);
    o->n += n;
    /* the earliest occurrence of any stop string ends the text */
    size_t cut = o->n;
    for (int i = 0; i < o->p->n_stop_strings; i++) {
        const char *x = o->p->stop_strings[i];
        const size_t k = x ? strlen(x) : 0;
        if (k == 0 || k > o->n) continue;
        for (size_t j = 0; j + k <= o->n && j < cut; j++)
            if (memcmp(o->held + j, x, k) == 0) {
                cut = j;
                break;
            }
    }
    if (cut < o->n) {
        emit(o, o->held, cut);
        o->n = 0;
        o->stop = o->stop ? o->stop : MD_STOP_STRING;
        *go_on = false;
        return MD_OK;
    }
    const size_t keep = final ? 0 : stop_prefix_tail(o->p, o->held, o->n);
    const bool ok = emit(o, o->held, o->n - keep);
    memmove(o->held, o->held + o->n - keep, keep);
    o->n = keep;
    *go_on = ok;
    return MD_OK;
}

static bool is_stop(const md_session_t *s, const md_generate_params *p, int32_t t) {
    for (int i = 0; i < p->n_stop_ids; i++)
        if (p->stop_ids[i] == t) return true;
    if (p->stop_at_model_eos) {
        const md_model_info *in = md_model_get_info(s->model);
        for (int i = 0; i < in->n_eos; i++)
            if (in->eos_ids[i] == t) return true;
    }
    return false;
}

static bool interrupted(const md_generate_params *p) { return p->interrupt && *p->interrupt; }

md_status md_generate(md_session_t *s, const md_tokenizer_t *tok, md_sampler_t *smp, const int32_t *prompt,
                      int n_prompt, const md_generate_params *params, md_generate_result *res) {
    md_generate_result r = {.stop = MD_STOP_NONE, .stop_token = -1};
    if (res) *res = r;
    if (!s || !tok || !smp || !prompt || n_prompt < 1)
        return md_fail(MD_ERR_INVALID_ARG, "md_generate: needs a session, a tokenizer, a sampler and a prompt of >= 1 token");
    const md_generate_params p = params ? *params : md_generate_default_params();
    const int vocab = s->model->cfg.vocab_size;
    if (md_sampler_vocab(smp) != vocab)
        return md_fail(MD_ERR_INVALID_ARG, "sampler vocabulary %d differs from the model's %d", md_sampler_vocab(smp), vocab);
    const int n_ctx = md_session_n_ctx(s), pos0 = md_session_pos(s);
    if (n_prompt > n_ctx - pos0)
        return md_fail(MD_ERR_CONTEXT_FULL,
                       "the prompt is %d tokens but the context has room for %d (size %d, %d in use): raise --ctx "
                       "(the model allows %d) or shorten the prompt",
                       n_prompt, n_ctx - pos0, n_ctx, pos0, s->model->cfg.max_pos);

    md_status st;
    md_tokenizer_stream_t *stream = NULL;
    text_out out = {.p = &p};
    float *logits = malloc((size_t)vocab * sizeof *logits);
    if (!logits) return md_fail(MD_ERR_OUT_OF_MEMORY, "generate: out of memory");
    MD_TRY(md_tokenizer_stream_init(tok, p.skip_special, &stream));
    for (int i = 0; i < n_prompt; i++) md_sampler_accept(smp, prompt[i]);

    const int chunk = p.prefill_chunk > 0 ? p.prefill_chunk : 512;
    const double t0 = now_seconds();
    for (int off = 0; off < n_prompt; off += chunk) {
        if (interrupted(&p)) {
            r.stop = MD_STOP_INTERRUPTED;
            goto done;
        }
        const int k = n_prompt - off < chunk ? n_prompt - off : chunk;
        const bool last = off + k == n_prompt;
        MD_TRY(md_session_prefill(s, prompt + off, k, last ? logits : NULL, 1));
        r.n_prompt += k;
    }
    r.prefill_seconds = now_seconds() - t0;

    if (p.n_predict == 0) {
        r.stop = MD_STOP_LENGTH;
        goto done;
    }
    int32_t t = md_sampler_sample(smp, logits);
    for (;;) {
        if (is_stop(s, &p, t)) {
            r.stop = MD_STOP_EOS;
            r.stop_token = t;
            break;
        }
        if (p.out_tokens && r.n_generated < p.out_cap) p.out_tokens[r.n_generated] = t;
        r.n_generated++;
        md_sampler_accept(smp, t);
        const char *text;
        size_t len;
        bool go_on;
        MD_TRY(md_tokenizer_stream_push(stream, t, &text, &len));
        MD_TRY(feed_text(&out, text, len, false, &go_on));
        if (!go_on) {
            r.stop = out.stop;
            break;
        }
        if (p.n_predict > 0 && r.n_generated >= p.n_predict) {
            r.stop = MD_STOP_LENGTH;
            break;
        }
        if (interrupted(&p)) {
            r.stop = MD_STOP_INTERRUPTED;
            break;
        }
        if (md_session_pos(s) >= n_ctx) {
            r.stop = MD_STOP_CONTEXT;
            break;
        }
        const double t1 = now_seconds();
        MD_TRY(md_session_decode_sample(s, t, smp, &t));
        r.decode_seconds += now_seconds() - t1;
        r.n_decode++;
    }
done:
    if (r.stop != MD_STOP_STRING && r.stop != MD_STOP_CALLBACK) {
        const char *text;
        size_t len;
        bool go_on;
        MD_TRY(md_tokenizer_stream_flush(stream, &text, &len));
        MD_TRY(feed_text(&out, text, len, true, &go_on));
        if (!go_on && out.stop) r.stop = out.stop;
    }
    st = MD_OK;
fail:
    free(out.held);
    md_tokenizer_stream_free(stream);
    free(logits);
    if (res) *res = r;
    return st;
}
