/* Whole files in memory: a bounded read (malloc'ed, NUL-terminated) and a read-only mapping.
 * Both refuse what is not a regular file or is larger than the caller's limit, with the checks
 * and their messages in this one place; every message starts with the path as sg_file_label
 * quotes it, so model loaders, tokenizers and configuration readers all say it the same way. */
#ifndef SG_BASE_FILE_H
#define SG_BASE_FILE_H

#include <stddef.h>

#include "base/error.h"

/* Room for a path quoted by sg_file_label: its last 72 bytes, "..." where cut. */
#define SG_FILE_LABEL_SIZE 80

/* path as messages name it: the end kept (it says most), whole UTF-8 characters, control
 * characters and invalid bytes as '?'. buf has SG_FILE_LABEL_SIZE bytes; returns buf. */
const char *sg_file_label(char *buf, const char *path);

/* Reads the regular file path into *data (malloc'ed, with a NUL after the last byte, so a text
 * file is a C string; the caller frees it) and its size, without the NUL, into *len. A file
 * larger than max_bytes is refused before anything is read. On error *data is NULL, *len 0:
 *   SG_EIO      "PATH: cannot open: REASON", "PATH: not a regular file",
 *               "PATH: read error: REASON"
 *   SG_ETOOBIG  "PATH: N bytes, over the limit of MAX bytes"
 *   SG_ENOMEM   "PATH: out of memory for N bytes"
 *   SG_EINVAL   a NULL argument */
sg_status sg_file_read(const char *path, size_t max_bytes, char **data, size_t *len,
                       sg_error *err);

/* A whole regular file mapped read-only (private). data is never NULL while open: an empty file,
 * which cannot be mapped, reads as a static empty buffer. As with any mapping, a file truncated
 * while mapped faults when the lost bytes are read. */
typedef struct sg_file_map {
    const unsigned char *data;
    size_t len;
    void *addr; /* the mapping; NULL when nothing is mapped */
} sg_file_map;

/* Maps path with the checks and messages of sg_file_read, plus SG_EIO "PATH: cannot map:
 * REASON". On error *m is empty (closing it is a no-op). There is no read fallback: a file
 * system that cannot map is refused, since callers release pages of the mapping once converted
 * (sg_file_map_release), which on a malloc'ed copy would lose the bytes for good. */
sg_status sg_file_map_open(const char *path, size_t max_bytes, sg_file_map *m, sg_error *err);
/* Unmaps; *m is empty afterwards (closing an empty map, or twice, is a no-op). */
void sg_file_map_close(sg_file_map *m);
/* Tells the kernel that the whole pages inside [p, p + n) of the mapping will not be read again,
 * so it may drop them (read again, they come back from the file). A range outside the mapping,
 * or an empty map, is ignored. */
void sg_file_map_release(const sg_file_map *m, const void *p, size_t n);

#endif
