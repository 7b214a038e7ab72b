/* /proc/self readers for the standard process metrics. The field positions are proc(5)'s; the
 * names and units follow the Prometheus client libraries (seconds, bytes, seconds since the
 * epoch), so dashboards written for any other service work unchanged. */
#include "server/procstat.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The boot time (btime of /proc/stat): /proc/self/stat gives the start in ticks since boot. */
static double boot_time_s(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    char line[512];
    double btime = -1;
    bool at_start = true; /* the intr line is longer than the buffer: match at line starts only */
    while (fgets(line, sizeof line, f)) {
        if (at_start && strncmp(line, "btime ", 6) == 0) {
            btime = strtod(line + 6, NULL);
            break;
        }
        at_start = strchr(line, '\n') != NULL;
    }
    fclose(f);
    return btime;
}

static long count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor was among them */
}

bool sg_procstat_read(sg_procstat *out)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    /* the command name (field 2) is in parentheses and may hold spaces and ')': skip to the last */
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    /* fields from 3 on: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15) cutime cstime priority nice threads itrealvalue starttime(22)
     * vsize(23) rss(24) */
    unsigned long long v[25] = {0};
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " \n", &save); tok && field <= 24;
         tok = strtok_r(NULL, " \n", &save), field++)
        if (field > 3)
            v[field] = strtoull(tok, NULL, 10);
    if (field <= 24)
        return false;
    const double ticks = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    if (ticks <= 0 || page <= 0)
        return false;
    out->cpu_seconds = (double)(v[14] + v[15]) / ticks;
    out->virtual_bytes = (double)v[23];
    out->resident_bytes = (double)v[24] * page;
    const double boot = boot_time_s();
    out->start_time_s = boot >= 0 ? boot + (double)v[22] / ticks : -1;
    out->open_fds = count_open_fds();
    struct rlimit rl;
    out->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                       ? (long)rl.rlim_cur
                       : -1;
    return true;
}
