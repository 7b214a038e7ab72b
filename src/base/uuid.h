/* Random (version 4) UUIDs from the kernel's CSPRNG, as lower-case 36-character strings. */
#ifndef SG_BASE_UUID_H
#define SG_BASE_UUID_H

#include <stdbool.h>

void sg_uuid4(char out[37]);
/* True when s is a canonical 36-character UUID string (any version, either case). */
bool sg_uuid_valid(const char *s);

#endif
