/*
 * cmd_generate.c — `megadelta generate`: one prompt in, streamed text out,
 * then one summary line on stderr. Also the pieces `megadelta chat` shares
 * with it (declared in cli.h): the text options (sampling flags over the
 * model's generation_config.json, stops, chat switches), opening model +
 * tokenizer + session + sampler, the Ctrl-C handling and the summary line.
 *
 * Ctrl-C: the first one stops generation at the next token (the summary is
 * still printed; exit status 130); a second one exits at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ---------------------------------------------------------------- shared */

volatile sig_atomic_t cli_sigint_count = 0;

static void on_sigint(int sig) {
    (void)sig;
    if (++cli_sigint_count >= 2) {
        static const char msg[] = "\nmegadelta: interrupted\n";
        ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)r;
        _exit(130);
    }
}

void cli_sigint_install(bool restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    /* while generating, writes to stdout must resume after the signal; at the
     * chat prompt the read must not, so that Ctrl-C ends it */
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGINT, &sa, NULL);
}

const char cli_text_help[] =
    "      --tokenizer FILE   tokenizer.json (default: the model directory's)\n"
    "  -n, --n-predict N      most tokens to generate (default: until a stop or the context is full)\n"
    "      --system TEXT      system message of the chat template\n"
    "      --no-think         thinking off: the template's empty think block\n"
    "      --stop TEXT        stop when TEXT appears (repeatable; the text ends before it)\n"
    "      --ignore-eos       do not stop at the model's eos tokens\n"
    "      --show-special     print special tokens instead of leaving them out\n"
    "sampling (defaults: the model's generation_config.json, HF semantics; greedy without one):\n"
    "      --temp T           temperature; 0 = greedy\n"
    "      --greedy           the same as --temp 0\n"
    "      --top-k K          keep the K most likely tokens (0 = off)\n"
    "      --top-p P          nucleus sampling (1 = off)\n"
    "      --min-p P          drop tokens below P x the top probability (0 = off)\n"
    "      --repeat-penalty R HF repetition penalty (1 = off)\n"
    "      --presence-penalty P  subtracted from tokens already seen (0 = off)\n"
    "      --repeat-last-n N  tokens the penalties look back on (-1 = all, 0 = none)\n"
    "      --seed N           random seed (default: from the clock; printed in the summary)\n";

enum {
    SET_TEMP = 1,
    SET_TOP_K = 2,
    SET_TOP_P = 4,
    SET_MIN_P = 8,
    SET_REPEAT = 16,
    SET_PRESENCE = 32,
    SET_LAST_N = 64,
    SET_SEED = 128,
};

void cli_text_opts_init(cli_text_opts *o) {
    memset(o, 0, sizeof *o);
    cli_model_opts_init(&o->model);
    o->n_predict = -1;
}

static bool parse_float(const char *flag, const char *v, double lo, double hi, float *out) {
    char *end = NULL;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || errno || !(x >= lo && x <= hi)) {
        cli_error("%s expects a number in %g..%g (got '%s')", flag, lo, hi, v ? v : "");
        return false;
    }
    *out = (float)x;
    return true;
}

int cli_text_flag(cli_text_opts *o, int argc, char **argv, int *i) {
    int r = cli_model_flag(&o->model, argc, argv, i);
    if (r != 0) return r;
    const char *a = argv[*i], *v;
    md_sampler_params *s = &o->sampling;
#define VALUE() \
    if (!(v = cli_value(argc, argv, i))) return -1
    if (!strcmp(a, "--tokenizer")) {
        VALUE();
        o->tokenizer = v;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
        VALUE();
        if (!cli_int(a, v, -1, 1 << 30, &o->n_predict)) return -1;
    } else if (!strcmp(a, "--system")) {
        VALUE();
        o->system = v;
    } else if (!strcmp(a, "--no-think")) {
        o->no_think = true;
    } else if (!strcmp(a, "--stop")) {
        VALUE();
        if (o->n_stops == CLI_MAX_STOPS) return cli_error("at most %d --stop strings", CLI_MAX_STOPS), -1;
        if (!*v) return cli_error("--stop needs a non-empty text"), -1;
        o->stops[o->n_stops++] = v;
    } else if (!strcmp(a, "--ignore-eos")) {
        o->ignore_eos = true;
    } else if (!strcmp(a, "--show-special")) {
        o->show_special = true;
    } else if (!strcmp(a, "--temp") || !strcmp(a, "--temperature")) {
        VALUE();
        if (!parse_float(a, v, 0, 100, &s->temperature)) return -1;
        o->set |= SET_TEMP;
    } else if (!strcmp(a, "--greedy")) {
        s->temperature = 0;
        o->set |= SET_TEMP;
    } else if (!strcmp(a, "--top-k")) {
        VALUE();
        if (!cli_int(a, v, 0, 1 << 30, &s->top_k)) return -1;
        o->set |= SET_TOP_K;
    } else if (!strcmp(a, "--top-p")) {
        VALUE();
        if (!parse_float(a, v, 1e-6, 1, &s->top_p)) return -1;
        o->set |= SET_TOP_P;
    } else if (!strcmp(a, "--min-p")) {
        VALUE();
        if (!parse_float(a, v, 0, 1, &s->min_p)) return -1;
        o->set |= SET_MIN_P;
    } else if (!strcmp(a, "--repeat-penalty")) {
        VALUE();
        if (!parse_float(a, v, 1e-3, 1000, &s->repeat_penalty)) return -1;
        o->set |= SET_REPEAT;
    } else if (!strcmp(a, "--presence-penalty")) {
        VALUE();
        if (!parse_float(a, v, -100, 100, &s->presence_penalty)) return -1;
        o->set |= SET_PRESENCE;
    } else if (!strcmp(a, "--repeat-last-n")) {
        VALUE();
        if (!cli_int(a, v, -1, 1 << 30, &s->penalty_last_n)) return -1;
        o->set |= SET_LAST_N;
    } else if (!strcmp(a, "--seed")) {
        VALUE();
        if (!cli_u64(a, v, &s->seed)) return -1;
        o->set |= SET_SEED;
    } else {
        return 0;
    }
#undef VALUE
    return 1;
}

/* The model's defaults with the flags given on top. */
static md_status sampling_params(const cli_text_opts *o, const char *dir, md_sampler_params *p) {
    md_status st = md_sampler_params_from_model(dir, p);
    if (st != MD_OK) return st;
    const md_sampler_params *f = &o->sampling;
    if (o->set & SET_TEMP) p->temperature = f->temperature;
    if (o->set & SET_TOP_K) p->top_k = f->top_k;
    if (o->set & SET_TOP_P) p->top_p = f->top_p;
    if (o->set & SET_MIN_P) p->min_p = f->min_p;
    if (o->set & SET_REPEAT) p->repeat_penalty = f->repeat_penalty;
    if (o->set & SET_PRESENCE) p->presence_penalty = f->presence_penalty;
    if (o->set & SET_LAST_N) p->penalty_last_n = f->penalty_last_n;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->seed = (o->set & SET_SEED) ? f->seed
                                  : ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    if (p->temperature == 0 && (o->set & (SET_TOP_K | SET_TOP_P | SET_MIN_P)))
        fprintf(stderr, "megadelta: note: decoding is greedy (temperature 0), so --top-k/--top-p/--min-p do nothing; "
                        "give --temp to sample\n");
    return MD_OK;
}

int cli_text_open(const cli_text_opts *o, cli_text *t) {
    memset(t, 0, sizeof *t);
    md_status st;
    if (cli_model_dir(&o->model, NULL, t->dir, sizeof t->dir) != MD_OK) return 1;
    if ((st = md_model_load(t->dir, &t->model)) != MD_OK) return cli_fail("loading the model", st);
    if ((st = o->tokenizer ? md_tokenizer_load(o->tokenizer, &t->tok) : md_tokenizer_load_dir(t->dir, &t->tok)) != MD_OK)
        return cli_fail("loading the tokenizer", st);
    if ((st = md_session_init(t->model, &o->model.params, &t->s)) != MD_OK) return cli_fail("creating the session", st);
    if ((st = sampling_params(o, t->dir, &t->sp)) != MD_OK) return cli_fail("reading the sampling defaults", st);
    const md_model_info *in = md_model_get_info(t->model);
    if ((st = md_sampler_init(&t->sp, in->vocab_size, &t->smp)) != MD_OK) return cli_fail("sampler", st);
    const int32_t im_end = md_tokenizer_token_id(t->tok, "<|im_end|>");
    if (im_end >= 0) t->im_end = im_end;
    else t->im_end = -1;
    return 0;
}

void cli_text_close(cli_text *t) {
    md_sampler_free(t->smp);
    md_session_free(t->s);
    md_tokenizer_free(t->tok);
    md_model_free(t->model);
    memset(t, 0, sizeof *t);
}

md_generate_params cli_text_gen_params(const cli_text_opts *o, const cli_text *t, bool chat) {
    md_generate_params g = md_generate_default_params();
    g.n_predict = o->n_predict;
    g.stop_at_model_eos = !o->ignore_eos;
    g.stop_ids = chat && t->im_end >= 0 && !o->ignore_eos ? &t->im_end : NULL;
    g.n_stop_ids = g.stop_ids ? 1 : 0;
    g.stop_strings = o->stops;
    g.n_stop_strings = o->n_stops;
    g.skip_special = !o->show_special;
    g.interrupt = &cli_sigint_count;
    return g;
}

void cli_text_summary(const cli_text *t, const md_generate_result *r) {
    const double pp = r->prefill_seconds > 0 ? r->n_prompt / r->prefill_seconds : 0;
    const double tg = r->decode_seconds > 0 ? r->n_decode / r->decode_seconds : 0;
    fprintf(stderr,
            "megadelta: prompt %d tokens, generated %d tokens, prefill %.1f tok/s, decode %.1f tok/s "
            "(%s, stop: %s, seed %llu)\n",
            r->n_prompt, r->n_generated, pp, tg, md_session_backend_name(t->s), md_stop_reason_name(r->stop),
            (unsigned long long)t->sp.seed);
}

bool cli_print_text(const char *text, size_t len, void *user) {
    (void)user;
    if (fwrite(text, 1, len, stdout) != len) return false;
    fflush(stdout);
    return true;
}

/* ---------------------------------------------------------------- generate */

static const char usage[] =
    "usage: megadelta generate (-m DIR | --preset NAME) (-p PROMPT | -f FILE) [-n N] [options]\n"
    "Streams the generated text to stdout, then one summary line on stderr.\n"
    "  -p, --prompt TEXT      the prompt (tokenized as is: special tokens written in it count)\n"
    "  -f, --file FILE        read the prompt from a file\n"
    "      --chat             wrap the prompt as a user turn of the model's chat template\n";

static bool read_file(const char *path, char **out) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return cli_error("cannot open '%s'", path), false;
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - 1 - n, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    if (f != stdin) fclose(f);
    if (!buf) return cli_error("out of memory reading '%s'", path), false;
    buf[n] = 0;
    *out = buf;
    return true;
}

int cmd_generate(int argc, char **argv) {
    cli_text_opts o;
    cli_text_opts_init(&o);
    const char *prompt = NULL, *file = NULL;
    bool chat = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_text_flag(&o, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s%s", usage, cli_text_help, cli_model_help);
            return 0;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--chat")) {
            chat = true;
        } else {
            return cli_error("generate: unknown option '%s'\n%s", a, usage);
        }
    }
    if (!!prompt + !!file != 1) return cli_error("generate: give the prompt with -p TEXT or -f FILE\n%s", usage);
    if (!chat && (o.system || o.no_think)) return cli_error("generate: --system and --no-think need --chat");
    char *owned = NULL;
    if (file && !read_file(file, &owned)) return 1;
    const char *text = file ? owned : prompt;

    cli_text t;
    int rc = cli_text_open(&o, &t);
    int32_t *ids = NULL;
    int n = 0;
    char *rendered = NULL;
    md_status st;
    if (rc) goto done;
    rc = 1;
    if (chat) {
        md_chat_message m[2];
        int k = 0;
        if (o.system) m[k++] = (md_chat_message){.role = "system", .content = o.system};
        m[k++] = (md_chat_message){.role = "user", .content = text};
        md_chat_params cp = md_chat_default_params();
        cp.enable_thinking = !o.no_think;
        if ((st = md_chat_render(m, k, &cp, &rendered, NULL)) != MD_OK) {
            cli_fail("chat template", st);
            goto done;
        }
        text = rendered;
    }
    if ((st = md_tokenizer_encode(t.tok, text, strlen(text), true, &ids, &n)) != MD_OK) {
        cli_fail("tokenizing the prompt", st);
        goto done;
    }
    if (n == 0) {
        cli_error("the prompt is empty: nothing to continue from");
        goto done;
    }
    md_generate_params g = cli_text_gen_params(&o, &t, chat);
    g.on_text = cli_print_text;
    md_generate_result res;
    cli_sigint_install(true);
    st = md_generate(t.s, t.tok, t.smp, ids, n, &g, &res);
    if (isatty(STDOUT_FILENO)) fputc('\n', stdout);
    fflush(stdout);
    if (st != MD_OK) {
        cli_fail("generation", st);
        goto done;
    }
    cli_text_summary(&t, &res);
    rc = res.stop == MD_STOP_INTERRUPTED ? 130 : 0;
done:
    free(ids);
    free(rendered);
    free(owned);
    cli_text_close(&t);
    return rc;
}
