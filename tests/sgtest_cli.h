/* Helper for tests that run the real binaries through the shell: run a command line, capture its
 * stdout. Header-only so each test file stays standalone. */
#ifndef SG_TESTS_CLI_H
#define SG_TESTS_CLI_H

#include <stdio.h>
#include <stdlib.h>
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

#endif
