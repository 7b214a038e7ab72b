/* Retry policy: which outcomes are worth another attempt, how long to wait (exponential backoff with
 * jitter, never shorter than the server's Retry-After), and when to give up. Pure: the clock is the
 * caller's now_ms, the randomness the caller's uniform function, so tests drive it exactly. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgclient_policy.h"

void sg_rng_seed(sg_rng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9E3779B97F4A7C15ull; /* xorshift must not start at 0 */
}

double sg_rng_uniform(void *rng)
{
    sg_rng *r = rng;
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
}

void sg_retry_policy_default(sg_retry_policy *p)
{
    p->max_attempts = 5;
    p->base_ms = 250.0;
    p->multiplier = 2.0;
    p->max_backoff_ms = 8000.0;
    p->jitter = 0.5;
    p->max_retry_after_ms = 30000.0;
}

sg_retry_class sg_retry_classify(int status, double retry_after_ms, const char *error_code)
{
    if (status == 0)
        return SG_RETRY_TRANSIENT; /* no response: connection refused, reset, timeout */
    if (status >= 200 && status < 300)
        return SG_RETRY_SUCCESS;
    if (status == 429)
        return SG_RETRY_TRANSIENT;
    if (status >= 500 && status < 600) {
        if (status == 503 && retry_after_ms < 0 && error_code &&
            strcmp(error_code, "MODEL_UNAVAILABLE") == 0)
            return SG_RETRY_PERMANENT;
        return SG_RETRY_TRANSIENT;
    }
    return SG_RETRY_PERMANENT; /* 1xx/3xx that libcurl did not follow, and every other 4xx */
}

double sg_retry_backoff_ms(const sg_retry_policy *p, int failures, double u)
{
    if (failures < 1)
        failures = 1;
    double d = p->base_ms;
    for (int i = 1; i < failures && d < p->max_backoff_ms; i++)
        d *= p->multiplier;
    if (d > p->max_backoff_ms)
        d = p->max_backoff_ms;
    if (!(u >= 0.0))
        u = 0.0;
    if (u >= 1.0)
        u = 0.999999;
    double j = p->jitter < 0.0 ? 0.0 : (p->jitter > 1.0 ? 1.0 : p->jitter);
    return d * (1.0 - j * u);
}

sg_retry_action sg_retry_next(const sg_retry_policy *p, sg_retry_state *st, int status,
                              double retry_after_ms, const char *error_code, double now_ms,
                              sg_uniform_fn uniform, void *rng_ud)
{
    st->attempts++;
    sg_retry_class c = sg_retry_classify(status, retry_after_ms, error_code);
    if (c != SG_RETRY_TRANSIENT)
        return SG_RETRY_DONE;
    if (st->attempts >= p->max_attempts)
        return SG_RETRY_GIVE_UP;
    if (retry_after_ms > p->max_retry_after_ms)
        return SG_RETRY_GIVE_UP; /* honour it by not coming back early: do not come back at all */
    double u = uniform ? uniform(rng_ud) : 0.0;
    double wait = sg_retry_backoff_ms(p, st->attempts, u);
    if (retry_after_ms > wait)
        wait = retry_after_ms;
    st->last_wait_ms = wait;
    st->next_at_ms = now_ms + wait;
    return SG_RETRY_WAIT;
}

/* ---- Retry-After ---------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (no timegm: not everywhere). */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int read_int(const char **s, int digits)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        if (!isdigit((unsigned char)**s))
            return -1;
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    return v;
}

double sg_retry_after_parse(const char *value, double now_epoch_s)
{
    if (!value)
        return -1.0;
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit((unsigned char)*value)) {
        double secs = 0;
        const char *s = value;
        while (isdigit((unsigned char)*s)) {
            secs = secs * 10.0 + (*s - '0');
            if (secs > 1e9)
                return -1.0;
            s++;
        }
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        return *s ? -1.0 : secs * 1000.0;
    }
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const char *s = value;
    if (strlen(s) < 29 || s[3] != ',' || s[4] != ' ')
        return -1.0;
    s += 5;
    int day = read_int(&s, 2);
    if (day < 1 || day > 31 || *s++ != ' ')
        return -1.0;
    int mon = 0;
    while (mon < 12 && strncmp(s, months[mon], 3) != 0)
        mon++;
    if (mon == 12)
        return -1.0;
    s += 3;
    if (*s++ != ' ')
        return -1.0;
    int year = read_int(&s, 4);
    if (year < 0 || *s++ != ' ')
        return -1.0;
    int hh = read_int(&s, 2);
    if (hh < 0 || hh > 23 || *s++ != ':')
        return -1.0;
    int mm = read_int(&s, 2);
    if (mm < 0 || mm > 59 || *s++ != ':')
        return -1.0;
    int ss = read_int(&s, 2);
    if (ss < 0 || ss > 60 || strncmp(s, " GMT", 4) != 0)
        return -1.0;
    double t = (double)days_from_civil(year, mon + 1, day) * 86400.0 + hh * 3600.0 + mm * 60.0 + ss;
    double ms = (t - now_epoch_s) * 1000.0;
    return ms > 0.0 ? ms : 0.0;
}
