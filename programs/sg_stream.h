/* `sg stream`, the glasses simulator (programs/sg_stream.c), called from programs/sg.c. argv[0] is
 * "stream"; options follow (getopt_long, optind reset inside). Returns the process exit code. */
#ifndef SG_TOOLS_STREAM_H
#define SG_TOOLS_STREAM_H

#include <stddef.h>

int sg_cmd_stream(int argc, char **argv);

/* The whole file at path (malloc'ed, *len bytes), NULL when it cannot be read (programs/sg.c). */
char *sg_tool_read_file(const char *path, size_t *len);

#endif
