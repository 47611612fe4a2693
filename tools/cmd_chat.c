/*
 * cmd_chat.c — `megadelta chat`: an interactive multi-turn conversation
 * through the model's chat template (Qwen3.5's, in C: md_chat_render).
 *
 * Each turn renders the whole conversation as the template does (which drops
 * the reasoning of earlier turns), tokenizes it, and feeds the session only
 * what it does not hold yet: when the session's tokens are a prefix of the
 * new prompt the rest is appended, otherwise (the template rewrote an earlier
 * turn) the session starts over. Replies stop at <|im_end|>, the model's eos
 * ids or a --stop string.
 *
 * Ctrl-C during a reply stops it and returns to the prompt (the partial reply
 * stays in the conversation); Ctrl-C at the prompt, a second Ctrl-C during a
 * reply, EOF (Ctrl-D) or /exit end the program.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "usage: megadelta chat (-m DIR | --preset NAME) [options]\n"
    "An interactive conversation using the model's chat template. Type a message and\n"
    "press Enter (a line ending in \\ continues on the next). Commands: /reset forgets\n"
    "the conversation, /exit quits. Ctrl-C stops a reply and returns to the prompt;\n"
    "Ctrl-C at the prompt, a second Ctrl-C or EOF exits. Each reply ends with a\n"
    "summary line on stderr.\n";

typedef struct conversation {
    md_chat_message *m;
    char **owned; /* the strings of m, freed with it */
    int n, cap;
} conversation;

static bool conv_add(conversation *c, const char *role, char *content) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        md_chat_message *m = realloc(c->m, (size_t)cap * sizeof *m);
        if (m) c->m = m;
        char **o = m ? realloc(c->owned, (size_t)cap * sizeof *o) : NULL;
        if (!o) {
            free(content);
            return false;
        }
        c->owned = o;
        c->cap = cap;
    }
    c->m[c->n] = (md_chat_message){.role = role, .content = content};
    c->owned[c->n++] = content;
    return true;
}

static void conv_pop(conversation *c) {
    if (c->n > 0) free(c->owned[--c->n]);
}

static void conv_clear(conversation *c, bool keep_system) {
    const int keep = keep_system && c->n > 0 && !strcmp(c->m[0].role, "system") ? 1 : 0;
    while (c->n > keep) conv_pop(c);
}

typedef struct reply {
    char *s;
    size_t n, cap;
} reply;

static bool on_reply_text(const char *text, size_t len, void *user) {
    reply *r = user;
    if (r->n + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        while (cap < r->n + len + 1) cap *= 2;
        char *s = realloc(r->s, cap);
        if (!s) return false;
        r->s = s;
        r->cap = cap;
    }
    memcpy(r->s + r->n, text, len);
    r->n += len;
    r->s[r->n] = 0;
    return cli_print_text(text, len, NULL);
}

/* Reads one message: lines ending in a backslash continue. NULL at EOF or Ctrl-C. */
static char *read_message(bool tty) {
    char *msg = NULL, *line = NULL;
    size_t msg_n = 0, cap = 0;
    for (;;) {
        if (tty) {
            fputs(msg ? ". " : "> ", stdout);
            fflush(stdout);
        }
        errno = 0;
        ssize_t got = getline(&line, &cap, stdin);
        if (got < 0 || cli_sigint_count) {
            free(line);
            free(msg);
            return NULL;
        }
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        const bool more = got > 0 && line[got - 1] == '\\';
        if (more) line[--got] = '\n';
        char *m = realloc(msg, msg_n + (size_t)got + 1);
        if (!m) {
            free(line);
            free(msg);
            return NULL;
        }
        msg = m;
        memcpy(msg + msg_n, line, (size_t)got);
        msg_n += (size_t)got;
        msg[msg_n] = 0;
        if (!more) break;
    }
    free(line);
    return msg;
}

int cmd_chat(int argc, char **argv) {
    cli_text_opts o;
    cli_text_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_text_flag(&o, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s%s", usage, cli_text_help, cli_model_help);
            return 0;
        }
        return cli_error("chat: unknown option '%s'\n%s", a, usage);
    }
    cli_text t;
    int rc = cli_text_open(&o, &t);
    conversation conv = {0};
    int32_t *fed = NULL, *out = NULL;
    int n_fed = 0;
    const int n_ctx = t.s ? md_session_n_ctx(t.s) : 0;
    if (rc) goto done;
    rc = 1;
    fed = malloc((size_t)n_ctx * sizeof *fed);
    out = malloc((size_t)n_ctx * sizeof *out);
    if (!fed || !out) {
        cli_error("out of memory");
        goto done;
    }
    if (o.system && !conv_add(&conv, "system", strdup(o.system))) goto done;
    const bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (tty)
        fprintf(stderr, "megadelta chat: %s on %s; /reset forgets the conversation, /exit or Ctrl-D quits\n", t.dir,
                md_session_backend_name(t.s));
    md_chat_params cp = md_chat_default_params();
    cp.enable_thinking = !o.no_think;
    md_generate_params g = cli_text_gen_params(&o, &t, true);
    g.on_text = on_reply_text;
    g.out_tokens = out;
    g.out_cap = n_ctx;
    for (;;) {
        cli_sigint_count = 0;
        cli_sigint_install(false);
        char *msg = read_message(tty);
        if (!msg) {
            if (tty) fputc('\n', stdout);
            break;
        }
        if (!strcmp(msg, "/exit") || !strcmp(msg, "/quit")) {
            free(msg);
            break;
        }
        if (!strcmp(msg, "/reset")) {
            free(msg);
            conv_clear(&conv, true);
            n_fed = 0;
            fprintf(stderr, "megadelta: conversation cleared\n");
            continue;
        }
        if (!*msg) {
            free(msg);
            continue;
        }
        if (!conv_add(&conv, "user", msg)) goto done;

        char *prompt = NULL;
        size_t plen = 0;
        int32_t *ids = NULL;
        int n = 0;
        md_status st = md_chat_render(conv.m, conv.n, &cp, &prompt, &plen);
        if (st == MD_OK) st = md_tokenizer_encode(t.tok, prompt, plen, true, &ids, &n);
        free(prompt);
        if (st != MD_OK || n >= n_ctx) {
            if (st != MD_OK) cli_fail("chat", st);
            else cli_error("the conversation is %d tokens, the context holds %d: /reset it or raise --ctx", n, n_ctx);
            free(ids);
            conv_pop(&conv);
            continue;
        }
        /* feed only what the session lacks, if it holds a prefix of the prompt */
        int start = 0;
        if (n_fed < n && memcmp(fed, ids, (size_t)n_fed * sizeof *ids) == 0) {
            start = n_fed;
        } else if ((st = md_session_reset(t.s)) != MD_OK) {
            free(ids);
            rc = cli_fail("resetting the session", st);
            goto done;
        }
        md_sampler_clear_history(t.smp);
        for (int i = 0; i < start; i++) md_sampler_accept(t.smp, ids[i]);
        reply rep = {0};
        g.user = &rep;
        if (tty && !o.no_think) fputs("<think>\n", stdout);
        md_generate_result res;
        cli_sigint_install(true);
        st = md_generate(t.s, t.tok, t.smp, ids + start, n - start, &g, &res);
        fputc('\n', stdout);
        fflush(stdout);
        const int pos = md_session_pos(t.s);
        if (st != MD_OK) {
            cli_fail("generation", st);
            conv_pop(&conv);
            n_fed = 0;
            md_session_reset(t.s);
        } else {
            cli_text_summary(&t, &res);
            /* what the session now holds: the prompt, then the generated tokens it was fed */
            memcpy(fed, ids, (size_t)(pos < n ? pos : n) * sizeof *fed);
            if (pos > n) memcpy(fed + n, out, (size_t)(pos - n) * sizeof *fed);
            n_fed = pos;
            if (res.stop == MD_STOP_INTERRUPTED && res.n_generated == 0) conv_pop(&conv);
            else if (!conv_add(&conv, "assistant", rep.s ? rep.s : strdup(""))) goto done;
            rep.s = NULL;
        }
        free(rep.s);
        free(ids);
    }
    rc = 0;
done:
    conv_clear(&conv, false);
    free(conv.m);
    free(conv.owned);
    free(fed);
    free(out);
    cli_text_close(&t);
    return rc;
}
