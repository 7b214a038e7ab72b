/* Helpers for tests that run the real binaries through the shell: run a command line, capture its
 * stdout (or only its exit status, or whether it prints something). Header-only so each test file
 * stays standalone. */
#ifndef SG_TESTS_CLI_H
#define SG_TESTS_CLI_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs cmd through /bin/sh; *out gets its stdout (malloc'ed, NUL-terminated, never NULL). Returns
 * the exit status, or -1 when it could not be started or did not exit normally. */
__attribute__((unused)) static int sgt_run(const char *cmd, char **out)
{
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    buf[0] = 0;
    *out = buf;
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown)
                abort();
            buf = grown;
        }
    }
    buf[n] = 0;
    *out = buf;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs cmd through /bin/sh for its exit status alone (stdout is read and dropped). */
__attribute__((unused)) static int sgt_status(const char *cmd)
{
    char *out;
    int st = sgt_run(cmd, &out);
    free(out);
    return st;
}

/* Whether cmd exits with status and prints needle on stdout. */
__attribute__((unused)) static int sgt_prints(const char *cmd, int status, const char *needle)
{
    char *out;
    int ok = sgt_run(cmd, &out) == status && strstr(out, needle) != NULL;
    free(out);
    return ok;
}

#endif
