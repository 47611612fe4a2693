/*
 * test_bench_cli.c — `megadelta bench` on the tiny synthetic model: the table
 * has the pp and tg rows, --json prints one valid JSON object per test with
 * the documented fields (numbers or null, never text such as "n/a" or "45%"),
 * and bad flags fail with one error line.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static char out[1 << 16];

int main(void) {
    char cmd[8192];
    /* a cache of its own: the synthetic checkpoint is written there once */
    /* stdout only: the subshell drops stderr (progress of the first synth write) */
    snprintf(cmd, sizeof cmd, "(MEGADELTA_CACHE=%s %s bench --preset tiny -p 8,16 -n 4 -r 2 --json 2>/dev/null)", md_test_tmp(),
             md_test_bin());
    CHECK(md_test_run(cmd, out, sizeof out) == 0);
    int rows = 0;
    bool seen_pp8 = false, seen_pp16 = false, seen_tg4 = false;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        CHECK_MSG(j != NULL, "not JSON: %s", line);
        if (!j) continue;
        const cJSON *test = cJSON_GetObjectItemCaseSensitive(j, "test");
        if (cJSON_IsString(test)) {
            rows++;
            seen_pp8 |= !strcmp(test->valuestring, "pp8");
            seen_pp16 |= !strcmp(test->valuestring, "pp16");
            seen_tg4 |= !strcmp(test->valuestring, "tg4");
            const cJSON *tps = cJSON_GetObjectItemCaseSensitive(j, "tokens_per_second");
            CHECK_MSG(cJSON_IsNumber(tps) && tps->valuedouble > 0, "tokens_per_second in %s", line);
            CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "stddev")));
            const cJSON *reps = cJSON_GetObjectItemCaseSensitive(j, "repetitions");
            CHECK(cJSON_IsNumber(reps) && reps->valueint == 2);
            const char *opt[3] = {"watts", "tokens_per_joule", "roofline_fraction"};
            for (int i = 0; i < 3; i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, opt[i]);
                CHECK_MSG(cJSON_IsNull(v) || cJSON_IsNumber(v), "%s must be a number or null: %s", opt[i], line);
            }
        }
        cJSON_Delete(j);
    }
    CHECK_MSG(rows == 3 && seen_pp8 && seen_pp16 && seen_tg4, "expected pp8, pp16 and tg4 rows, got %d rows", rows);

    /* the table */
    snprintf(cmd, sizeof cmd, "(MEGADELTA_CACHE=%s %s bench --preset tiny -p 8 -n 4 -r 1 2>/dev/null)", md_test_tmp(), md_test_bin());
    CHECK(md_test_run(cmd, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "| pp8") && strstr(out, "| tg4") && strstr(out, "tok/J"), "table:\n%s", out);

    /* bad input: one error line, non-zero exit */
    snprintf(cmd, sizeof cmd, "MEGADELTA_CACHE=%s %s bench --preset tiny -n -3", md_test_tmp(), md_test_bin());
    CHECK(md_test_run(cmd, out, sizeof out) != 0);
    CHECK_MSG(strstr(out, "megadelta: error:") && !strchr(strchr(out, '\n') + 1, '\n'), "expected one error line: %s", out);
    return md_test_finish("test_bench_cli");
}
