/* What a test can see of the server process from /proc: resident memory (now and its peak) and
 * CPU time; and a millisecond sleep. For tests that bound what hostile input may cost the server.
 * And re-running the test program itself, natively or under the emulator of a cross build.
 * Header-only like sgtest_http.h. */
#ifndef SG_TESTS_PROC_H
#define SG_TESTS_PROC_H

#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((unused)) static void sgt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* /proc/<pid>/<file> into buf (NUL-terminated); false when unreadable. */
__attribute__((unused)) static bool sgt_proc_read(pid_t pid, const char *file, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return true;
}

/* A "Name:   N kB" line of /proc/<pid>/status in KiB (e.g. "VmRSS", "VmHWM"); -1 when
 * unreadable. */
__attribute__((unused)) static long sgt_proc_kib(pid_t pid, const char *name)
{
    char buf[4096], key[40];
    snprintf(key, sizeof key, "\n%s:", name);
    const char *line = sgt_proc_read(pid, "status", buf, sizeof buf) ? strstr(buf, key) : NULL;
    return line ? strtol(line + strlen(key), NULL, 10) : -1;
}

/* CPU seconds the process has used (user + system); -1 when unreadable. */
__attribute__((unused)) static double sgt_proc_cpu_s(pid_t pid)
{
    char buf[1024];
    if (!sgt_proc_read(pid, "stat", buf, sizeof buf))
        return -1;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Runs this test program again with args (argv[1..], NULL-terminated) and waits for it; its exit
 * status, or -1 when it could not be started or did not exit. Natively through /proc/self/exe; in
 * a cross build's emulated run (ctest sets SG_TEST_EMULATOR to the emulator's command line, e.g.
 * "qemu-aarch64 -L / -cpu max") through the emulator, since a program the emulated one starts is
 * the host kernel's to run, which cannot run it: the emulator reports this program's path as
 * /proc/self/exe's. */
__attribute__((unused)) static int sgt_run_self(char *const args[])
{
    extern char **environ;
    char exe[4096], emu[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *argv[64];
    int argc = 0;
    const char *e = getenv("SG_TEST_EMULATOR");
    if (e && *e) {
        snprintf(emu, sizeof emu, "%s", e);
        char *save = NULL;
        for (char *w = strtok_r(emu, " ", &save); w && argc < 16; w = strtok_r(NULL, " ", &save))
            argv[argc++] = w;
    }
    argv[argc++] = exe;
    for (int i = 0; args && args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid;
    int ws = 0;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0 || waitpid(pid, &ws, 0) != pid)
        return -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

#endif
