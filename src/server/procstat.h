/* The process's own resource use, read from /proc/self at scrape time for the standard Prometheus
 * process metrics (process_cpu_seconds_total, process_resident_memory_bytes, ...): the memory and
 * CPU panels of deploy/grafana/smartglass.json and the restart alert read them. Linux only. */
#ifndef SG_SERVER_PROCSTAT_H
#define SG_SERVER_PROCSTAT_H

#include <stdbool.h>

typedef struct sg_procstat {
    double cpu_seconds;     /* user + system CPU time */
    double resident_bytes;  /* resident set size */
    double virtual_bytes;   /* virtual memory size */
    double start_time_s;    /* start time, seconds since the Unix epoch */
    long open_fds;          /* file descriptors open */
    long max_fds;           /* the soft RLIMIT_NOFILE */
} sg_procstat;

/* Fills out; false when /proc/self/stat cannot be read or parsed (then nothing is exported).
 * open_fds and max_fds are -1 when unknown. */
bool sg_procstat_read(sg_procstat *out);

#endif
