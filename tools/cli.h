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

/* The subcommands. */
int cmd_synth(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

#endif
