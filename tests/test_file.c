/* Tests for base/file: the bounded whole-file read and the read-only map refuse the same files
 * with the same messages (missing, a directory, over the limit), take an empty file and one of
 * exactly the limit, keep the bytes (and the read's trailing NUL), and quote long paths by their
 * end; the map unmaps and releases pages without losing what the file holds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "check.h"

static char dir[] = "/tmp/test_file.XXXXXX";

/* dir/name holding n bytes of data; returns its path (a static buffer). */
static const char *scratch_file(const char *name, const void *data, size_t n)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (f) {
        CHECK(fwrite(data, 1, n, f) == n);
        fclose(f);
    }
    return path;
}

/* Both readers refuse path with code and a message holding every fragment. */
static void check_refused(const char *path, size_t max, sg_status code, const char *frag1,
                          const char *frag2)
{
    sg_error err = {0};
    char *data = (char *)&err; /* must be reset to NULL */
    size_t len = 99;
    CHECK_EQ_INT(sg_file_read(path, max, &data, &len, &err), code);
    CHECK(data == NULL && len == 0 && err.code == code);
    CHECK_MSG(strstr(err.msg, frag1) && strstr(err.msg, frag2), "read: '%s'", err.msg);
    char read_msg[sizeof err.msg];
    memcpy(read_msg, err.msg, sizeof read_msg);
    sg_file_map m = {(const unsigned char *)"x", 1, &err};
    err = (sg_error){0};
    CHECK_EQ_INT(sg_file_map_open(path, max, &m, &err), code);
    CHECK(m.data == NULL && m.len == 0 && m.addr == NULL);
    CHECK_MSG(strcmp(err.msg, read_msg) == 0, "map says '%s', read '%s'", err.msg, read_msg);
    sg_file_map_close(&m); /* a no-op on an empty map */
    /* err may be NULL */
    CHECK_EQ_INT(sg_file_read(path, max, &data, &len, NULL), code);
    CHECK_EQ_INT(sg_file_map_open(path, max, &m, NULL), code);
}

static void test_refused(void)
{
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing.bin", dir);
    check_refused(missing, 100, SG_EIO, "missing.bin: cannot open: ", "No such file");
    check_refused(dir, 100, SG_EIO, ": not a regular file", dir + 5);
    const char *path = scratch_file("eleven.txt", "hello world", 11);
    check_refused(path, 10, SG_ETOOBIG, "eleven.txt: 11 bytes, over the limit of 10 bytes",
                  "/tmp/");
    check_refused(path, 0, SG_ETOOBIG, "over the limit of 0 bytes", "eleven");
    unlink(path);
    /* a long path is quoted by its end, and the message stays short */
    char longpath[400];
    memset(longpath, 'd', sizeof longpath);
    memcpy(longpath, "/nonexistent/", 13);
    strcpy(longpath + sizeof longpath - 12, "/the-end.pt");
    sg_error err = {0};
    char *data;
    size_t len;
    CHECK(sg_file_read(longpath, 100, &data, &len, &err) == SG_EIO);
    CHECK_MSG(strncmp(err.msg, "...", 3) == 0 && strstr(err.msg, "/the-end.pt: cannot open") &&
                  strlen(err.msg) < 160,
              "%s", err.msg);
    char lb[SG_FILE_LABEL_SIZE];
    CHECK(strlen(sg_file_label(lb, longpath)) <= SG_FILE_LABEL_SIZE - 8);
    CHECK(strcmp(sg_file_label(lb, "a\nb.bin"), "a?b.bin") == 0); /* no control characters */
    /* NULL arguments */
    CHECK(sg_file_read(NULL, 1, &data, &len, &err) == SG_EINVAL);
    CHECK(sg_file_read("x", 1, NULL, &len, &err) == SG_EINVAL);
    sg_file_map m;
    CHECK(sg_file_map_open(NULL, 1, &m, &err) == SG_EINVAL && m.data == NULL);
    CHECK(sg_file_map_open("x", 1, NULL, &err) == SG_EINVAL);
    sg_file_map_close(NULL);
}

static void test_read(void)
{
    sg_error err = {0};
    char *data = NULL;
    size_t len = 99;
    /* empty: an empty C string */
    const char *path = scratch_file("empty", "", 0);
    CHECK_MSG(sg_file_read(path, 0, &data, &len, &err) == SG_OK, "%s", err.msg);
    CHECK(data != NULL && len == 0 && data[0] == '\0');
    free(data);
    unlink(path);
    /* exactly the limit, binary bytes kept, a NUL after them */
    unsigned char bytes[300];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(i * 7);
    path = scratch_file("bytes.bin", bytes, sizeof bytes);
    CHECK_MSG(sg_file_read(path, sizeof bytes, &data, &len, &err) == SG_OK, "%s", err.msg);
    CHECK(data && len == sizeof bytes && memcmp(data, bytes, len) == 0 && data[len] == '\0');
    free(data);
    CHECK(sg_file_read(path, sizeof bytes - 1, &data, &len, &err) == SG_ETOOBIG);
    unlink(path);
    /* a larger file read in more than one read(2) is still whole */
    size_t big = (size_t)3 << 20;
    unsigned char *b = malloc(big);
    for (size_t i = 0; b && i < big; i++)
        b[i] = (unsigned char)(i ^ (i >> 11));
    path = scratch_file("big.bin", b, big);
    CHECK(sg_file_read(path, SIZE_MAX, &data, &len, &err) == SG_OK);
    CHECK(data && len == big && memcmp(data, b, big) == 0);
    free(data);
    unlink(path);
    free(b);
}

static void test_map(void)
{
    sg_error err = {0};
    sg_file_map m;
    /* empty: nothing mapped, but data points somewhere */
    const char *path = scratch_file("empty", "", 0);
    CHECK_MSG(sg_file_map_open(path, 0, &m, &err) == SG_OK, "%s", err.msg);
    CHECK(m.data != NULL && m.len == 0 && m.addr == NULL);
    sg_file_map_release(&m, m.data, 1); /* nothing mapped: ignored */
    sg_file_map_close(&m);
    CHECK(m.data == NULL && m.len == 0);
    sg_file_map_close(&m); /* twice */
    unlink(path);
    /* three pages and a bit, exactly the limit */
    long page = sysconf(_SC_PAGESIZE);
    size_t n = (size_t)(page > 0 ? page : 4096) * 3 + 123;
    unsigned char *b = malloc(n);
    for (size_t i = 0; b && i < n; i++)
        b[i] = (unsigned char)(i % 251);
    path = scratch_file("pages.bin", b, n);
    CHECK(sg_file_map_open(path, n - 1, &m, &err) == SG_ETOOBIG);
    CHECK_MSG(sg_file_map_open(path, n, &m, &err) == SG_OK, "%s", err.msg);
    CHECK(m.addr != NULL && m.data == m.addr && m.len == n);
    CHECK(b && memcmp(m.data, b, n) == 0);
    /* released pages read back from the file; ranges outside the mapping are ignored */
    sg_file_map_release(&m, m.data + 10, n - 20);
    sg_file_map_release(&m, m.data + n - 5, 10);
    sg_file_map_release(&m, b, n);
    sg_file_map_release(&m, m.data, 0);
    CHECK(b && memcmp(m.data, b, n) == 0);
    /* the mapping outlives the file's name */
    unlink(path);
    CHECK(b && memcmp(m.data, b, n) == 0);
    sg_file_map_close(&m);
    CHECK(m.data == NULL && m.len == 0 && m.addr == NULL);
    free(b);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create a scratch directory\n");
        return 1;
    }
    test_refused();
    test_read();
    test_map();
    rmdir(dir);
    return check_report("test_file");
}
