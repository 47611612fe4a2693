/*
 * mapped_file.h — read-only memory maps of whole files (weights are used in
 * place from the map, never copied twice).
 */
#ifndef MD_COMMON_MAPPED_FILE_H
#define MD_COMMON_MAPPED_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "megadelta.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct md_mapped_file {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
} md_mapped_file;

md_status md_mapped_file_open(const char *path, md_mapped_file *out);
void md_mapped_file_close(md_mapped_file *f);

/* Reads a whole (small) file into a NUL-terminated heap buffer. */
md_status md_read_text_file(const char *path, char **out, size_t *len);
int md_file_exists(const char *path);
/* Creates path and any missing parents (mkdir -p); an existing directory is fine. */
md_status md_make_dirs(const char *path);

#ifdef __cplusplus
}
#endif

#endif
