/* Read-only ZIP archives in memory, as torch.save writes them (nn/ptfile's first stage): the end
 * record (ZIP64 when present), the central directory (sorted by name, duplicates refused), and,
 * for each entry whose bytes are asked for, its local header, bounds and CRC-32. Only stored
 * entries are read: tensors point straight into the archive, so DEFLATE is refused. */
#ifndef SG_NN_ZIP_H
#define SG_NN_ZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct sg_zip_entry {
    const unsigned char *name; /* into the archive, not NUL-terminated */
    size_t name_len;
    uint64_t csize, usize, local; /* local: offset of the local header */
    uint32_t crc;
    uint16_t flags, method;
    const unsigned char *data; /* set by sg_zip_entry_data once checked */
} sg_zip_entry;

typedef struct sg_zip {
    const unsigned char *base; /* the archive's bytes (borrowed) */
    size_t len;
    const char *label;     /* the file, first in every message (borrowed) */
    sg_zip_entry *entries; /* sorted by name */
    size_t n;
} sg_zip;

/* Reads the directory of the archive buf[0..len) into *z. Errors: SG_EINVAL for a malformed
 * archive, SG_EUNSUPPORTED for multi-disk archives, SG_ETOOBIG over max_entries entries, each
 * message "LABEL: what". *z must be closed after either outcome. */
sg_status sg_zip_open(sg_zip *z, const void *buf, size_t len, size_t max_entries,
                      const char *label, sg_error *err);
void sg_zip_close(sg_zip *z);
/* The entry "dir/name" (dir without its '/'), or NULL. */
sg_zip_entry *sg_zip_find(const sg_zip *z, const unsigned char *dir, size_t dir_len,
                          const char *name, size_t name_len);
/* Checks entry e once (stored, not encrypted, local header agrees, inside the archive, CRC-32)
 * and sets e->data to its usize bytes. */
sg_status sg_zip_entry_data(const sg_zip *z, sg_zip_entry *e, sg_error *err);
/* Formats "LABEL: message" into err; returns code. */
sg_status sg_zip_fail(const sg_zip *z, sg_error *err, sg_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
