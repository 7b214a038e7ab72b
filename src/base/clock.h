/* Monotonic and wall clocks in milliseconds. */
#ifndef SG_BASE_CLOCK_H
#define SG_BASE_CLOCK_H

double sg_now_ms(void);      /* CLOCK_MONOTONIC, for latencies */
double sg_wall_s(void);      /* CLOCK_REALTIME, seconds since the epoch */

#endif
