/* An in-memory file for libsndfile's virtual I/O, shared by the server's FLAC/Ogg decoding
 * (media/audio.c, read-only over the request bytes) and libsgclient's chunk encoder
 * (client/audio_codec.c, a growing buffer it writes, seeks in and reads back). Depends on libsndfile
 * and libc (pthreads) only: the sgclient target compiles this file too. */
#ifndef SG_MEDIA_SFMEM_H
#define SG_MEDIA_SFMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sndfile.h>

typedef struct sg_sfmem {
    const uint8_t *data; /* the bytes; == buf when writable */
    uint8_t *buf;        /* writable: the malloc'ed buffer, owned by the caller (free it) */
    sf_count_t n, cap, pos;
    bool writable;
    bool oom; /* a write failed for want of memory */
} sg_sfmem;

/* A read-only file over p[0..n) (p is borrowed). */
sg_sfmem sg_sfmem_reader(const uint8_t *p, size_t n);
/* An empty writable file. */
sg_sfmem sg_sfmem_writer(void);
/* The callbacks for sf_open_virtual, whose user data is a sg_sfmem *. Seeks stay within [0, n];
 * writes to a read-only file write nothing. */
SF_VIRTUAL_IO sg_sfmem_io(void);

/* sf_open_virtual over m (mode SFM_READ or SFM_WRITE) and sf_close, one at a time in the whole
 * process. libsndfile 1.2's open and close write process-wide state (its global error code and
 * log), so two threads opening at once race (helgrind: dozens of conflicting writes with three
 * decoders); the server decodes on several workers and an app may encode on several threads.
 * Reading, writing and sf_command on an open handle touch only that handle and need no lock.
 * Every open and close of libsndfile in the process must go through these two. */
SNDFILE *sg_sfmem_open(sg_sfmem *m, int mode, SF_INFO *info);
int sg_sfmem_close(SNDFILE *sf);

#endif
