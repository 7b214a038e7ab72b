/* `sg stream`, the glasses simulator (tools/sg_stream.c), called from tools/sg.c. argv[0] is
 * "stream"; options follow (getopt_long, optind reset inside). Returns the process exit code. */
#ifndef SG_TOOLS_STREAM_H
#define SG_TOOLS_STREAM_H

int sg_cmd_stream(int argc, char **argv);

#endif
