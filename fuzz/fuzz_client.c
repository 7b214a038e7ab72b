/* libFuzzer target for the bytes libsgclient parses from outside: a Y4M stream (header, frame
 * headers, planes -> RGB, as `sg stream` reads a clip) and Retry-After header values from a server.
 * Any crash, sanitizer report or over-limit allocation is a bug. */
#include <stdlib.h>
#include <string.h>

#include "sgclient_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Retry-After: the first line, as a C string */
    char ra[128];
    size_t n = 0;
    while (n < size && n < sizeof ra - 1 && data[n] != '\n')
        n++;
    memcpy(ra, data, n);
    ra[n] = 0;
    (void)sg_retry_after_parse(ra, 1.7e9);

    sg_y4m_info info;
    char err[SG_CLIENT_ERROR_SIZE];
    if (sg_y4m_parse_header(data, size, &info, err) != SG_CLIENT_OK)
        return 0;
    if (info.frame_bytes > (1u << 22)) /* keep the fuzzer's memory small; the parser allows more */
        return 0;
    uint8_t *rgb = malloc((size_t)info.width * (size_t)info.height * 3);
    if (!rgb)
        return 0;
    size_t pos = info.header_len;
    for (int f = 0; f < 4 && pos < size; f++) {
        size_t h = sg_y4m_frame_header_len(data + pos, size - pos);
        if (h == 0 || h > size - pos || info.frame_bytes > size - pos - h)
            break;
        sg_y4m_to_rgb(&info, data + pos + h, rgb);
        pos += h + info.frame_bytes;
    }
    free(rgb);
    return 0;
}
