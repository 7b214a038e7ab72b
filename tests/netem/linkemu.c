/* A userspace netem for tests/netem/run.sh, for kernels built without sch_netem (this project's
 * machines are such): every packet routed between the client and server namespaces goes through a
 * TUN device in a third "link" namespace, and this program holds each one as netem would before
 * writing it back to be forwarded: random loss, then a transmit clock per direction that serialises
 * packets at RATE (bits on the wire take time; a burst queues), then a fixed one-way DELAY. Both
 * directions get the same parameters (the script passes RTT/2). Each direction's queue holds at most
 * LIMIT packets (netem's default 1000) and drops at the tail when full, like netem. Since the delay
 * is constant and the transmit clock only moves forward, release times in a direction are monotonic
 * and a FIFO per direction is all the scheduling needed.
 *
 *   sg_linkemu TUN SERVER_IPV4 DELAY_MS RATE_KBIT LOSS_PCT [SEED]
 *
 * Attaches to an existing TUN device (created with `ip tuntap add mode tun`), runs until SIGTERM or
 * SIGINT, then prints its counters as one JSON line on stdout ("up" = towards SERVER_IPV4).
 * SIGUSR1 toggles a blackout (every packet lost, both ways: a tunnel, a dead cell), counted apart. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define LINK_LIMIT 1000 /* packets queued per direction, as netem's default limit */
#define SLOT_BYTES 2048 /* the TUN MTU is 1500; larger packets are counted and dropped */

typedef struct {
    uint8_t data[SLOT_BYTES];
    uint16_t len;
    int64_t due_us;
} link_slot;

typedef struct {
    link_slot *slots; /* ring of LINK_LIMIT */
    int head, count;
    int64_t tx_free_us; /* when the emulated transmitter is free again */
    uint64_t packets, bytes, lost, blackout_lost, dropped, oversize, write_errors;
} link_dir;

static volatile sig_atomic_t g_stop, g_blackout;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        g_blackout = !g_blackout;
    else
        g_stop = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t g_rng;

static double rng_uniform(void) /* xorshift64*, [0, 1) */
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int tun_attach(const char *name)
{
    /* only an existing device: TUNSETIFF would otherwise create one, in whatever namespace */
    if (strlen(name) >= IFNAMSIZ || if_nametoindex(name) == 0) {
        errno = ENODEV;
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Takes one packet read from the TUN device: loss, then the transmit clock, then the delay. */
static void link_accept(link_dir *d, const uint8_t *pkt, size_t len, int64_t now, double loss,
                        double us_per_byte, int64_t delay_us)
{
    d->packets++;
    d->bytes += len;
    if (len > SLOT_BYTES) {
        d->oversize++;
        return;
    }
    if (g_blackout) {
        d->blackout_lost++;
        return;
    }
    if (loss > 0 && rng_uniform() < loss) {
        d->lost++;
        return;
    }
    if (d->count == LINK_LIMIT) {
        d->dropped++;
        return;
    }
    int64_t start = d->tx_free_us > now ? d->tx_free_us : now;
    d->tx_free_us = start + (int64_t)(us_per_byte * (double)len + 0.5);
    link_slot *s = &d->slots[(d->head + d->count) % LINK_LIMIT];
    memcpy(s->data, pkt, len);
    s->len = (uint16_t)len;
    s->due_us = d->tx_free_us + delay_us;
    d->count++;
}

static void link_release(link_dir *d, int fd, int64_t now)
{
    while (d->count > 0 && d->slots[d->head].due_us <= now) {
        link_slot *s = &d->slots[d->head];
        if (write(fd, s->data, s->len) != (ssize_t)s->len)
            d->write_errors++;
        d->head = (d->head + 1) % LINK_LIMIT;
        d->count--;
    }
}

static void print_dir(const char *name, const link_dir *d)
{
    printf("\"%s\":{\"packets\":%llu,\"bytes\":%llu,\"lost\":%llu,\"blackout_lost\":%llu,"
           "\"dropped\":%llu,\"oversize\":%llu,\"write_errors\":%llu}",
           name, (unsigned long long)d->packets, (unsigned long long)d->bytes,
           (unsigned long long)d->lost, (unsigned long long)d->blackout_lost,
           (unsigned long long)d->dropped,
           (unsigned long long)d->oversize, (unsigned long long)d->write_errors);
}

int main(int argc, char **argv)
{
    double delay_ms, rate_kbit, loss_pct, seed = 1;
    struct in_addr server;
    if ((argc != 6 && argc != 7) || inet_pton(AF_INET, argv[2], &server) != 1 ||
        parse_num(argv[3], 0, 10000, &delay_ms) || parse_num(argv[4], 1, 100e6, &rate_kbit) ||
        parse_num(argv[5], 0, 100, &loss_pct) ||
        (argc == 7 && parse_num(argv[6], 1, 1e15, &seed))) {
        fprintf(stderr, "usage: sg_linkemu TUN SERVER_IPV4 DELAY_MS RATE_KBIT LOSS_PCT [SEED]\n"
                        "  DELAY_MS 0..10000 one way, RATE_KBIT >= 1, LOSS_PCT 0..100\n");
        return 2;
    }
    g_rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL | 1;
    const double loss = loss_pct / 100.0;
    const double us_per_byte = 8.0 * 1000.0 / rate_kbit;
    const int64_t delay_us = (int64_t)(delay_ms * 1000.0 + 0.5);

    int fd = tun_attach(argv[1]);
    if (fd < 0) {
        fprintf(stderr, "sg_linkemu: cannot attach to TUN device %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    link_dir dirs[2]; /* 0: towards the server (uplink), 1: towards the client */
    memset(dirs, 0, sizeof dirs);
    for (int i = 0; i < 2; i++) {
        dirs[i].slots = malloc(sizeof(link_slot) * LINK_LIMIT);
        if (!dirs[i].slots) {
            fprintf(stderr, "sg_linkemu: out of memory\n");
            return 1;
        }
    }

    sigset_t block, empty;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&empty);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    static uint8_t buf[65536];
    uint64_t non_ipv4 = 0;
    while (!g_stop) {
        int64_t now = now_us(), next = -1;
        for (int i = 0; i < 2; i++)
            if (dirs[i].count > 0) {
                int64_t due = dirs[i].slots[dirs[i].head].due_us;
                if (next < 0 || due < next)
                    next = due;
            }
        struct timespec ts, *tsp = NULL;
        if (next >= 0) {
            int64_t wait = next > now ? next - now : 0;
            ts.tv_sec = (time_t)(wait / 1000000);
            ts.tv_nsec = (long)(wait % 1000000) * 1000;
            tsp = &ts;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = ppoll(&p, 1, tsp, &empty);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "sg_linkemu: poll: %s\n", strerror(errno));
            break;
        }
        now = now_us();
        if (r > 0 && (p.revents & POLLIN)) {
            for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n <= 0)
                    break;
                if (n < 20 || (buf[0] >> 4) != 4) {
                    non_ipv4++;
                    continue;
                }
                struct in_addr dst;
                memcpy(&dst, buf + 16, 4);
                link_dir *d = &dirs[dst.s_addr == server.s_addr ? 0 : 1];
                link_accept(d, buf, (size_t)n, now, loss, us_per_byte, delay_us);
            }
        }
        for (int i = 0; i < 2; i++)
            link_release(&dirs[i], fd, now);
    }
    printf("{");
    print_dir("up", &dirs[0]);
    printf(",");
    print_dir("down", &dirs[1]);
    printf(",\"non_ipv4\":%llu}\n", (unsigned long long)non_ipv4);
    for (int i = 0; i < 2; i++)
        free(dirs[i].slots);
    close(fd);
    return 0;
}
