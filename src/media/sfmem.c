/* libsndfile virtual I/O over memory (see sfmem.h). */
#include "media/sfmem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libsndfile's open and close are not thread-safe (see sfmem.h): one lock for the process. */
static pthread_mutex_t sndfile_lock = PTHREAD_MUTEX_INITIALIZER;

sg_sfmem sg_sfmem_reader(const uint8_t *p, size_t n)
{
    return (sg_sfmem){.data = p, .n = (sf_count_t)n};
}

sg_sfmem sg_sfmem_writer(void) { return (sg_sfmem){.writable = true}; }

static sf_count_t mem_length(void *ud) { return ((sg_sfmem *)ud)->n; }
static sf_count_t mem_tell(void *ud) { return ((sg_sfmem *)ud)->pos; }

static sf_count_t mem_seek(sf_count_t off, int whence, void *ud)
{
    sg_sfmem *m = ud;
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return -1;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->n;
    /* base and off are both within +-2^63; n <= SIZE_MAX, so compare without overflowing */
    if ((off < 0 && -off > base) || (off > 0 && off > m->n - base))
        return -1;
    m->pos = base + off;
    return m->pos;
}

static sf_count_t mem_read(void *dst, sf_count_t count, void *ud)
{
    sg_sfmem *m = ud;
    if (count <= 0 || m->pos >= m->n)
        return 0;
    if (count > m->n - m->pos)
        count = m->n - m->pos;
    memcpy(dst, m->data + m->pos, (size_t)count);
    m->pos += count;
    return count;
}

static sf_count_t mem_write(const void *src, sf_count_t count, void *ud)
{
    sg_sfmem *m = ud;
    if (!m->writable || count <= 0)
        return 0;
    if (m->pos + count > m->cap) {
        sf_count_t cap = m->cap ? m->cap : 4096;
        while (cap < m->pos + count)
            cap *= 2;
        uint8_t *p = realloc(m->buf, (size_t)cap);
        if (!p) {
            m->oom = true;
            return 0;
        }
        m->buf = p;
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->buf + m->pos, src, (size_t)count);
    m->pos += count;
    if (m->pos > m->n)
        m->n = m->pos;
    return count;
}

SF_VIRTUAL_IO sg_sfmem_io(void)
{
    return (SF_VIRTUAL_IO){mem_length, mem_seek, mem_read, mem_write, mem_tell};
}

SNDFILE *sg_sfmem_open(sg_sfmem *m, int mode, SF_INFO *info)
{
    SF_VIRTUAL_IO io = sg_sfmem_io();
    pthread_mutex_lock(&sndfile_lock);
    SNDFILE *sf = sf_open_virtual(&io, mode, info, m);
    pthread_mutex_unlock(&sndfile_lock);
    return sf;
}

int sg_sfmem_close(SNDFILE *sf)
{
    if (!sf)
        return 0;
    pthread_mutex_lock(&sndfile_lock);
    int rc = sf_close(sf); /* an encoder writes its last pages here: they go under the lock too */
    pthread_mutex_unlock(&sndfile_lock);
    return rc;
}
