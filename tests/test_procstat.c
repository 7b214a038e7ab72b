/* Unit tests for server/procstat: the process metrics read from /proc/self follow what this
 * process does (CPU burnt, a descriptor opened, memory touched, its start time). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "server/procstat.h"

int main(void)
{
    sg_procstat a, b;
    CHECK(sg_procstat_read(&a));
    const double now = (double)time(NULL);
    /* started a moment ago: the clock tick (10 ms) and the boot time (1 s) bound the error */
    CHECK_MSG(a.start_time_s > now - 120 && a.start_time_s <= now + 2, "start %.2f, now %.0f",
              a.start_time_s, now);
    CHECK(a.resident_bytes > 0 && a.virtual_bytes >= a.resident_bytes);
    CHECK(a.open_fds >= 3); /* stdin, stdout, stderr at least; the readers' own are closed */
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    CHECK(rl.rlim_cur == RLIM_INFINITY ? a.max_fds == -1 : a.max_fds == (long)rl.rlim_cur);

    /* one more descriptor, 64 MB more resident, a burst of CPU */
    int fd = open("/proc/self/stat", O_RDONLY);
    CHECK(fd >= 0);
    const size_t big = 64u << 20;
    char *mem = malloc(big);
    CHECK(mem != NULL);
    memset(mem, 1, big);
    const double t0 = check_thread_cpu_s();
    volatile double x = 0;
    while (check_thread_cpu_s() - t0 < 0.3)
        for (int i = 0; i < 100000; i++)
            x += i * 1e-9;
    CHECK(sg_procstat_read(&b));
    CHECK_EQ_INT(b.open_fds, a.open_fds + 1);
    CHECK_MSG(b.resident_bytes >= a.resident_bytes + 60e6, "rss %.0f -> %.0f", a.resident_bytes,
              b.resident_bytes);
    CHECK_MSG(b.cpu_seconds >= a.cpu_seconds + 0.2, "cpu %.2f -> %.2f", a.cpu_seconds,
              b.cpu_seconds);
    CHECK(b.start_time_s == a.start_time_s);
    free(mem);
    close(fd);
    return check_report("test_procstat");
}
