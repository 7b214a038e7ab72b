/* libFuzzer target for the X-Client-Telemetry header (server/telemetry.c): any bytes parse or are
 * refused with SG_EINVAL and a reason; a report that parses holds values in their ranges and goes
 * into a small table whose snapshot stays consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "server/telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sg_telemetry *table;
    if (!table)
        table = sg_telemetry_new(64, 300);
    sg_client_report r;
    sg_error err = {0};
    sg_status st = sg_client_report_parse((const char *)data, size, &r, &err);
    if (st != SG_OK) {
        if (st != SG_EINVAL || !err.msg[0])
            abort();
        return 0;
    }
    if (!(r.battery_pct >= 0 && r.battery_pct <= 100) || r.charging < -1 || r.charging > 1 ||
        r.fps > 1000 || r.upload_kb_per_min > 1e6 || r.memory_bytes > 1e12)
        abort();
    char id[40];
    snprintf(id, sizeof id, "s%zu", size % 200);
    sg_telemetry_report(table, id, &r, (double)size);
    sg_telemetry_snapshot s;
    sg_telemetry_snapshot_at(table, (double)size, &s);
    long total = 0;
    for (int b = 0; b < SG_BAND_COUNT; b++)
        total += s.band[b].sessions;
    if (total > 64 || total < 1 || s.charging > total)
        abort();
    return 0;
}
