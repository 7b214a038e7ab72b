/* Whole files in memory: one open-and-check step (regular file, size limit) shared by the
 * bounded read and the read-only mapping, so both refuse the same files with the same words. */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/utf8.h"

const char *sg_file_label(char *buf, const char *path)
{
    return sg_utf8_quote(buf, SG_FILE_LABEL_SIZE - 8, path, strlen(path), true);
}

/* Opens path for reading into *fd and checks it: a regular file of at most max_bytes, whose
 * size goes to *size. who names the caller when path is NULL. */
static sg_status open_checked(const char *who, const char *path, size_t max_bytes, int *fd,
                              size_t *size, sg_error *err)
{
    char lb[SG_FILE_LABEL_SIZE];
    *fd = -1;
    *size = 0;
    if (!path)
        return sg_error_set(err, SG_EINVAL, "%s: NULL path", who);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (*fd < 0 || fstat(*fd, &sb) != 0) {
        const char *why = strerror(errno);
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return sg_error_set(err, SG_EIO, "%s: cannot open: %s", sg_file_label(lb, path), why);
    }
    sg_status st = SG_OK;
    if (!S_ISREG(sb.st_mode))
        st = sg_error_set(err, SG_EIO, "%s: not a regular file", sg_file_label(lb, path));
    else if ((uintmax_t)sb.st_size > max_bytes)
        st = sg_error_set(err, SG_ETOOBIG, "%s: %jd bytes, over the limit of %zu bytes",
                          sg_file_label(lb, path), (intmax_t)sb.st_size, max_bytes);
    if (st != SG_OK) {
        close(*fd);
        *fd = -1;
        return st;
    }
    *size = (size_t)sb.st_size;
    return SG_OK;
}

sg_status sg_file_read(const char *path, size_t max_bytes, char **data, size_t *len,
                       sg_error *err)
{
    if (!data || !len)
        return sg_error_set(err, SG_EINVAL, "sg_file_read: NULL output");
    *data = NULL;
    *len = 0;
    int fd;
    size_t size;
    sg_status st = open_checked("sg_file_read", path, max_bytes, &fd, &size, err);
    if (st != SG_OK)
        return st;
    char lb[SG_FILE_LABEL_SIZE];
    char *buf = size < SIZE_MAX ? malloc(size + 1) : NULL;
    if (!buf) {
        close(fd);
        return sg_error_set(err, SG_ENOMEM, "%s: out of memory for %zu bytes",
                            sg_file_label(lb, path), size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(buf);
            return sg_error_set(err, SG_EIO, "%s: read error: %s", sg_file_label(lb, path),
                                e ? strerror(e) : "the file shrank while being read");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return SG_OK;
}

sg_status sg_file_map_open(const char *path, size_t max_bytes, sg_file_map *m, sg_error *err)
{
    static const unsigned char empty[1];
    if (!m)
        return sg_error_set(err, SG_EINVAL, "sg_file_map_open: NULL map");
    *m = (sg_file_map){0};
    int fd;
    size_t size;
    sg_status st = open_checked("sg_file_map_open", path, max_bytes, &fd, &size, err);
    void *addr = NULL;
    if (st != SG_OK)
        return st;
    if (size) { /* a mapping of 0 bytes is EINVAL */
        addr = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            int e = errno;
            char lb[SG_FILE_LABEL_SIZE];
            close(fd);
            return sg_error_set(err, SG_EIO, "%s: cannot map: %s", sg_file_label(lb, path),
                                strerror(e));
        }
    }
    close(fd); /* the mapping keeps the file */
    m->data = addr ? addr : empty;
    m->len = size;
    m->addr = addr;
    return SG_OK;
}

void sg_file_map_close(sg_file_map *m)
{
    if (!m)
        return;
    if (m->addr)
        munmap(m->addr, m->len);
    *m = (sg_file_map){0};
}

void sg_file_map_release(const sg_file_map *m, const void *p, size_t n)
{
    if (!m || !m->addr || !p || n == 0)
        return;
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t lo = (uintptr_t)m->addr, hi = lo + m->len;
    uintptr_t a = (uintptr_t)p, b = a + n;
    if (b < a || a < lo || b > hi)
        return;
    /* only whole pages inside the range: its neighbours may still be needed */
    a = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    b &= ~((uintptr_t)page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}
