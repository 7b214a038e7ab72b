/* Counts the guest instructions a program executes under qemu-user from qemu's own log, read on
 * stdin: `qemu-ARCH -d in_asm,exec,nochain -D FIFO ...`. in_asm prints each translated block once
 * ("IN: symbol", then one line per instruction "0x<pc>:  <encoding>  <mnemonic>"); exec prints
 * "Trace <cpu>: <host block> [<cs_base>/<pc>/<flags>/<cflags>] <symbol>" before every execution of
 * a block, and nochain makes every execution pass through that print. A block's size is learnt from
 * the in_asm listing printed just before its first execution (keyed by the host block's address,
 * which a later translation may reuse after qemu flushes its code cache: the new listing replaces
 * the old size). Executed instructions = sum over executions of the block's instruction count.
 *
 * Prints "insns <n> blocks <n> unknown <n>" (unknown: executions of a block whose listing was not
 * seen; must be 0). With a file argument, also writes "<instructions> <function>" per function
 * (qemu's symbol of the block, or "?<library>+0x<offset>" from the -strace mmap lines when those are
 * logged too, else "?0x<pc>") for bench/arm_insn_count.sh's profile. Used by bench/arm_insn_count.sh,
 * a measurement tool, not a test. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t host, pc;
    uint64_t ninsn, execs;
    char *name;
} block;

static block *blocks;
static size_t nblocks, capblocks;
static size_t *table; /* open addressing on host address: index + 1 into blocks, 0 empty */
static size_t tabsize = 1 << 16;

static size_t hash(uint64_t h) { return (size_t)((h >> 4) * 0x9E3779B97F4A7C15ull); }

static void table_put(size_t bi);

static void table_grow(void)
{
    size_t *old = table, oldsize = tabsize;
    tabsize = old ? tabsize * 2 : tabsize;
    table = calloc(tabsize, sizeof *table);
    if (!table) { perror("calloc"); exit(2); }
    if (old) {
        for (size_t i = 0; i < oldsize; i++)
            if (old[i]) table_put(old[i] - 1);
        free(old);
    }
}

static size_t *table_slot(uint64_t host)
{
    size_t m = tabsize - 1, i = hash(host) & m;
    for (size_t probe = 0; probe < tabsize; probe++, i = (i + 1) & m) {
        if (!table[i] || blocks[table[i] - 1].host == host) return &table[i];
    }
    return NULL; /* never: the table is kept at most half full */
}

static void table_put(size_t bi) { *table_slot(blocks[bi].host) = bi + 1; }

/* libraries mapped executable, from -strace lines (optional) */
typedef struct { uint64_t lo, hi, off; char *path; } mapping;
static mapping maps[64];
static int nmaps;
static char fdpath[1024][256];

static void name_block(block *b, const char *sym)
{
    char buf[512];
    if (*sym) {
        snprintf(buf, sizeof buf, "%s", sym);
    } else {
        int k = -1;
        for (int i = 0; i < nmaps; i++)
            if (b->pc >= maps[i].lo && b->pc < maps[i].hi) k = i;
        if (k >= 0) {
            const char *base = strrchr(maps[k].path, '/');
            snprintf(buf, sizeof buf, "?%s+0x%" PRIx64, base ? base + 1 : maps[k].path,
                     b->pc - maps[k].lo + maps[k].off);
        } else {
            snprintf(buf, sizeof buf, "?0x%" PRIx64, b->pc);
        }
    }
    b->name = strdup(buf);
}

/* -strace: 'openat(AT_FDCWD,"/lib/x/libm.so.6",O_RDONLY|O_CLOEXEC) = 3' and
 * 'mmap(0x...,<len>,PROT_READ|PROT_EXEC,MAP_PRIVATE|MAP_FIXED|...,3,<off>) = 0x<addr>' (or mmap2) */
static void strace_line(const char *s)
{
    const char *p;
    if ((p = strstr(s, "openat(")) && (p = strchr(p, '"'))) {
        const char *q = strchr(p + 1, '"'), *eq = strstr(s, ") = ");
        if (q && eq) {
            int fd = atoi(eq + 4);
            if (fd >= 0 && fd < 1024) snprintf(fdpath[fd], sizeof fdpath[fd], "%.*s", (int)(q - p - 1), p + 1);
        }
    } else if (((p = strstr(s, "mmap(")) || (p = strstr(s, "mmap2("))) && strstr(s, "PROT_EXEC")) {
        const int pages = p[4] == '2'; /* armhf: mmap2's offset is in 4096-byte units */
        p += pages;
        uint64_t len = 0, off = 0;
        int fd = -1;
        char flags[256];
        const char *eq = strstr(s, ") = ");
        if (!eq || nmaps == 64) return;
        /* mmap(addr,len,prot,flags,fd,off) */
        if (sscanf(p + 5, "%*[^,],%" SCNi64 ",%*[^,],%255[^,],%d,%" SCNi64, &len, flags, &fd, &off) < 4) return;
        if (fd < 0 || fd >= 1024 || !fdpath[fd][0]) return;
        uint64_t addr = strtoull(eq + 4, NULL, 0);
        maps[nmaps++] = (mapping){addr, addr + len, pages ? off * 4096 : off, strdup(fdpath[fd])};
    }
}

int main(int argc, char **argv)
{
    static char line[1 << 16];
    int in_block = 0, pending = 0;
    uint64_t pend_pc = 0, pend_n = 0, unknown = 0, insns = 0, execs = 0;
    char pend_sym[256] = "";
    table_grow();
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'T' && strncmp(line, "Trace ", 6) == 0) {
            in_block = 0;
            char *p = strchr(line, ':');
            if (!p) continue;
            uint64_t host = strtoull(p + 1, &p, 16);
            char *br = strchr(p, '[');
            if (!br) continue;
            char *slash = strchr(br, '/');
            if (!slash) continue;
            uint64_t pc = strtoull(slash + 1, NULL, 16);
            size_t *slot = table_slot(host);
            if (pending && pend_pc == pc) {
                /* a reused host address: the old block leaves the table, keeping its counts */
                if (nblocks == capblocks) {
                    capblocks = capblocks ? capblocks * 2 : 4096;
                    blocks = realloc(blocks, capblocks * sizeof *blocks);
                    if (!blocks) { perror("realloc"); return 2; }
                }
                blocks[nblocks] = (block){host, pc, pend_n, 0, NULL};
                name_block(&blocks[nblocks], pend_sym);
                *slot = ++nblocks;
                pending = 0;
                if (nblocks * 2 > tabsize) { table_grow(); slot = table_slot(host); }
            }
            if (!*slot || blocks[*slot - 1].pc != pc) {
                unknown++;
                continue;
            }
            block *b = &blocks[*slot - 1];
            b->execs++;
            insns += b->ninsn;
            execs++;
        } else if (strncmp(line, "IN:", 3) == 0) {
            in_block = 1;
            pending = 1;
            pend_n = 0;
            char *s = line + 3;
            while (*s == ' ') s++;
            s[strcspn(s, "\r\n")] = 0;
            snprintf(pend_sym, sizeof pend_sym, "%.200s", s);
        } else if (in_block && line[0] == '0' && line[1] == 'x') {
            if (pend_n == 0) pend_pc = strtoull(line, NULL, 16);
            pend_n++;
        } else if (line[0] == '\n' || line[0] == '-') {
            in_block = 0;
        } else if (!in_block) {
            strace_line(line);
        }
    }
    printf("insns %" PRIu64 " blocks %" PRIu64 " unknown %" PRIu64 "\n", insns, execs, unknown);
    if (argc > 1) {
        FILE *f = fopen(argv[1], "w");
        if (!f) { perror(argv[1]); return 2; }
        /* one line per block; the script sums them per function */
        for (size_t i = 0; i < nblocks; i++)
            if (blocks[i].execs)
                fprintf(f, "%" PRIu64 " %s\n", blocks[i].execs * blocks[i].ninsn, blocks[i].name);
        fclose(f);
    }
    return unknown ? 1 : 0;
}
