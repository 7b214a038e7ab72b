/* libFuzzer target for the pickle machine of nn/ptfile alone: the bytes are a data.pkl, run
 * through the same opcode interpreter and top-level checks sg_pt_open uses (storages are not
 * resolved, so no ZIP archive is needed and every mutation reaches the interpreter). The
 * machine must refuse with a message or accept; any crash, leak, sanitizer report, timeout or
 * trap below is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ptfile.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_exact_copy(data, size);
    if (!buf)
        return 0;
    sg_error err = {0};
    size_t n = 0;
    sg_status st = sg_pt_parse_pickle_for_fuzz(buf, size, &n, &err);
    if (st != SG_OK && (err.code != st || !err.msg[0]))
        __builtin_trap(); /* a refusal must say why */
    if (st == SG_OK && n > size)
        __builtin_trap(); /* every tensor costs at least one REDUCE */
    free(buf);
    return 0;
}
