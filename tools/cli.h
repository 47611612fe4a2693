/*
 * cli.h — helpers shared by the megadelta subcommands: flag parsing with
 * clear messages, the model options common to every command that runs the
 * model (-m/--preset, -c/--ctx, -t/--threads, --backend, --kernel), and the
 * synthetic-checkpoint cache used when no model is given.
 * Only the CLI may exit(); the library returns md_status.
 */
#ifndef MD_TOOLS_CLI_H
#define MD_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "megadelta.h"

/* Prints "megadelta: error: ..." to stderr. Returns 1 (the exit code). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the library's last error for a failed call. Returns 1. */
int cli_fail(const char *what, md_status st);

/* Flag value parsing: print an error naming the flag and return false on bad input. */
bool cli_int(const char *flag, const char *value, long lo, long hi, int *out);
bool cli_u64(const char *flag, const char *value, uint64_t *out);

typedef struct cli_model_opts {
    const char *model_dir;   /* -m DIR */
    const char *preset;      /* --preset NAME: a cached synthetic checkpoint */
    md_session_params params;
} cli_model_opts;

void cli_model_opts_init(cli_model_opts *o);
/* Consumes argv[*i] (and its value) when it is a model option: returns 1 when
 * consumed, 0 when not a model option, -1 on a bad value (message printed). */
int cli_model_flag(cli_model_opts *o, int argc, char **argv, int *i);
/* Help lines for the model options. */
extern const char cli_model_help[];

/* The value following a flag, or NULL (message printed) when missing. */
const char *cli_value(int argc, char **argv, int *i);

/* Resolves -m / --preset (default_preset when neither) to a directory,
 * writing the synthetic checkpoint into the cache on first use. */
md_status cli_model_dir(const cli_model_opts *o, const char *default_preset, char *dir, size_t n);

/* Parses "ID ID ..." (spaces or commas). *ids is malloc'd. */
bool cli_parse_ids(const char *text, int32_t **ids, int *n);

double cli_now(void); /* monotonic seconds */

/* ---- text commands (`generate`, `chat`; cmd_generate.c) */

#include <signal.h>

#define CLI_MAX_STOPS 16

typedef struct cli_text_opts {
    cli_model_opts model;
    const char *tokenizer;           /* --tokenizer FILE, else the model directory's */
    md_sampler_params sampling;      /* the sampling flags given ... */
    unsigned set;                    /* ... and which ones (over generation_config.json) */
    int n_predict;                   /* -1: until a stop or the context is full */
    const char *stops[CLI_MAX_STOPS];
    int n_stops;
    const char *system;
    bool no_think, ignore_eos, show_special;
} cli_text_opts;

typedef struct cli_text {
    char dir[4096];
    md_model_t *model;
    md_tokenizer_t *tok;
    md_session_t *s;
    md_sampler_t *smp;
    md_sampler_params sp;            /* as used, seed included */
    int32_t im_end;                  /* <|im_end|>, or -1 */
} cli_text;

extern const char cli_text_help[];
extern volatile sig_atomic_t cli_sigint_count; /* Ctrl-C presses since the last reset */
void cli_text_opts_init(cli_text_opts *o);
/* Like cli_model_flag, for the model options and the text options. */
int cli_text_flag(cli_text_opts *o, int argc, char **argv, int *i);
/* Loads model, tokenizer, session and sampler; 0, or the exit code (message printed). */
int cli_text_open(const cli_text_opts *o, cli_text *t);
void cli_text_close(cli_text *t);
md_generate_params cli_text_gen_params(const cli_text_opts *o, const cli_text *t, bool chat);
/* The one summary line on stderr. */
void cli_text_summary(const cli_text *t, const md_generate_result *r);
/* md_generate's text callback: writes to stdout and flushes. */
bool cli_print_text(const char *text, size_t len, void *user);
/* SIGINT handler: counts presses, the second exits (130). restart: whether
 * interrupted reads/writes resume (true while generating). */
void cli_sigint_install(bool restart);

/* The subcommands. */
int cmd_synth(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);

#endif
