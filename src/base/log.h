/* Logging to stderr with a level and a timestamp. SG_LOG_LEVEL=debug|info|warn|error. */
#ifndef SG_BASE_LOG_H
#define SG_BASE_LOG_H

typedef enum { SG_LOG_DEBUG, SG_LOG_INFO, SG_LOG_WARN, SG_LOG_ERROR } sg_log_level;

void sg_log_set_level(sg_log_level level);
void sg_log(sg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
