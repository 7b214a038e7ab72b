/* The bounded pickle machine (see pickle.h): a stack machine over data.pkl that builds plain
 * values in an index-linked arena (no recursion anywhere, so deep or cyclic structures cost
 * nothing), bounded by the SG_PT_MAX_* limits. Nothing in the pickle is ever called or imported:
 * REDUCE on a known global is interpreted here, and any other global is refused when it is
 * named. The top-level dict's tensor values are then checked against their storages' declared
 * sizes. */
#include "nn/pickle.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "nn/shape.h"

/* Bytes of a name quoted in a message, so that messages fit sg_error.msg. */
#define NAME_CLIP 48
#define QUOTE(buf, s, len) sg_utf8_quote(buf, NAME_CLIP, (s), (len), false)
/* Longest module or name of a GLOBAL opcode. */
#define MAX_GLOBAL_LINE 256

/* The little-endian integer in p[0..n). */
static uint64_t rd_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

typedef enum pk_kind {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_FLOAT,
    PK_STR,
    PK_TUPLE,
    PK_LIST,
    PK_DICT, /* items: key, value, key, value, ... */
    PK_GLOBAL,
    PK_STORAGE,
    PK_TENSOR
} pk_kind;

static const char *const pk_kind_names[] = {"None",   "bool", "int",    "float",   "str",   "tuple",
                                            "list",   "dict", "global", "storage", "tensor"};

typedef struct pk_obj {
    uint8_t kind;
    uint8_t sub;     /* BOOL: value; GLOBAL: index in pk_globals */
    uint32_t n, cap; /* STR: length; containers: items used and allocated */
    union {
        int64_t i;
        double f;
        const unsigned char *s; /* into data.pkl */
        uint32_t *items;
        uint32_t ref; /* STORAGE, TENSOR: index into the machine's tables */
    } u;
} pk_obj;

/* The globals a state dict uses; nothing else is ever accepted. */
enum { G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_STATE };
static const struct {
    const char *module, *name;
    int dtype; /* a storage type's sg_dtype, or -1 */
} pk_globals[] = {
    {"collections", "OrderedDict", -1},
    {"torch._utils", "_rebuild_tensor_v2", -1},
    {"torch._utils", "_rebuild_parameter", -1},
    {"torch._utils", "_rebuild_parameter_with_state", -1},
    {"torch", "FloatStorage", SG_DT_F32},
    {"torch", "HalfStorage", SG_DT_F16},
    {"torch", "BFloat16Storage", SG_DT_BF16},
    {"torch", "DoubleStorage", SG_DT_F64},
    {"torch", "LongStorage", SG_DT_I64},
    {"torch", "IntStorage", SG_DT_I32},
    {"torch", "ShortStorage", SG_DT_I16},
    {"torch", "CharStorage", SG_DT_I8},
    {"torch", "ByteStorage", SG_DT_U8},
    {"torch", "BoolStorage", SG_DT_BOOL},
};
#define NGLOBALS (sizeof pk_globals / sizeof pk_globals[0])

typedef struct pk_machine {
    const unsigned char *start, *p, *end;
    const char *label; /* the file, for messages */
    char what[NAME_CLIP + 4]; /* the pickle's entry name */
    sg_error *err;
    size_t op_off;
    pk_obj *objs;
    uint32_t nobjs, capobjs;
    uint32_t *stack;
    uint32_t sp, capstack;
    uint32_t marks[SG_PT_MAX_MARKS];
    uint32_t nmarks;
    uint32_t *memo;
    uint32_t nmemo, capmemo;
    uint64_t items;
    sg_pickle_storage *storages;
    uint32_t nstorages, capstorages;
    sg_pickle_tensor *tensors;
    uint32_t ntensors, captensors;
    sg_pickle_item *out;
    size_t nout;
} pk_machine;

enum { OBJ_NONE, OBJ_FALSE, OBJ_TRUE, OBJ_FIRST_FREE };

static sg_status pk_fail(pk_machine *m, sg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static sg_status pk_fail(pk_machine *m, sg_status code, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sg_error_set(m->err, code, "%s: %s: %s at offset %zu", m->label, m->what, msg,
                        m->op_off);
}

/* arr (capacity *cap elements of size el) with room for need >= 1 elements, at most limit:
 * arr itself, or a larger copy, or NULL when out of memory (arr is then untouched). */
static void *grow(void *arr, uint32_t *cap, uint32_t need, size_t el, uint32_t limit)
{
    if (need <= *cap)
        return arr;
    uint64_t c = *cap ? (uint64_t)*cap * 2 : 16;
    if (c < need)
        c = need;
    if (c > limit)
        c = limit;
    void *q = realloc(arr, (size_t)c * el);
    if (q)
        *cap = (uint32_t)c;
    return q;
}

static void pk_free(pk_machine *m)
{
    for (uint32_t i = 0; i < m->nobjs; i++) {
        uint8_t k = m->objs[i].kind;
        if (k == PK_TUPLE || k == PK_LIST || k == PK_DICT)
            free(m->objs[i].u.items);
    }
    free(m->objs);
    free(m->stack);
    free(m->memo);
    free(m->storages);
    free(m->tensors);
    free(m->out);
}

static sg_status pk_new(pk_machine *m, pk_kind kind, uint32_t *idx)
{
    if (m->nobjs >= SG_PT_MAX_OBJECTS)
        return pk_fail(m, SG_ETOOBIG, "pickle creates more than %u objects", SG_PT_MAX_OBJECTS);
    pk_obj *objs = grow(m->objs, &m->capobjs, m->nobjs + 1, sizeof *objs, SG_PT_MAX_OBJECTS);
    if (!objs)
        return pk_fail(m, SG_ENOMEM, "out of memory for pickle objects");
    m->objs = objs;
    pk_obj *o = &m->objs[m->nobjs];
    memset(o, 0, sizeof *o);
    o->kind = (uint8_t)kind;
    *idx = m->nobjs++;
    return SG_OK;
}

static sg_status pk_push(pk_machine *m, uint32_t idx)
{
    if (m->sp >= SG_PT_MAX_STACK)
        return pk_fail(m, SG_ETOOBIG, "pickle stack deeper than %u", SG_PT_MAX_STACK);
    uint32_t *stack = grow(m->stack, &m->capstack, m->sp + 1, sizeof *stack, SG_PT_MAX_STACK);
    if (!stack)
        return pk_fail(m, SG_ENOMEM, "out of memory for the pickle stack");
    m->stack = stack;
    m->stack[m->sp++] = idx;
    return SG_OK;
}

/* Like Python's unpickler, a MARK starts a new stack: nothing below it is reachable. */
static uint32_t pk_base(const pk_machine *m)
{
    return m->nmarks ? m->marks[m->nmarks - 1] : 0;
}

static sg_status pk_pop(pk_machine *m, uint32_t *idx)
{
    if (m->sp <= pk_base(m))
        return pk_fail(m, SG_EINVAL, "pickle stack underflow");
    *idx = m->stack[--m->sp];
    return SG_OK;
}

static sg_status pk_top(pk_machine *m, uint32_t *idx)
{
    if (m->sp <= pk_base(m))
        return pk_fail(m, SG_EINVAL, "pickle stack underflow");
    *idx = m->stack[m->sp - 1];
    return SG_OK;
}

/* Pops the top MARK: the items above it are stack[*first .. sp). */
static sg_status pk_pop_mark(pk_machine *m, uint32_t *first)
{
    if (!m->nmarks)
        return pk_fail(m, SG_EINVAL, "no MARK to pop");
    *first = m->marks[--m->nmarks];
    return SG_OK;
}

static sg_status pk_need(pk_machine *m, uint64_t n)
{
    if ((uint64_t)(m->end - m->p) < n)
        return pk_fail(m, SG_EINVAL, "truncated: opcode needs %" PRIu64 " bytes, %zu remain", n,
                       (size_t)(m->end - m->p));
    return SG_OK;
}

static sg_status pk_str(pk_machine *m, uint64_t len)
{
    sg_status st;
    if (len > SG_PT_MAX_STRING)
        return pk_fail(m, SG_ETOOBIG, "string of %" PRIu64 " bytes exceeds the limit of %u", len,
                       SG_PT_MAX_STRING);
    if ((st = pk_need(m, len)) != SG_OK)
        return st;
    if (!sg_utf8_valid(m->p, (size_t)len))
        return pk_fail(m, SG_EINVAL, "string is not valid UTF-8");
    uint32_t o;
    if ((st = pk_new(m, PK_STR, &o)) != SG_OK)
        return st;
    m->objs[o].u.s = m->p;
    m->objs[o].n = (uint32_t)len;
    m->p += len;
    return pk_push(m, o);
}

static sg_status pk_int(pk_machine *m, int64_t v)
{
    uint32_t o;
    sg_status st = pk_new(m, PK_INT, &o);
    if (st != SG_OK)
        return st;
    m->objs[o].u.i = v;
    return pk_push(m, o);
}

/* Appends n object indices to container c. */
static sg_status pk_append(pk_machine *m, uint32_t c, const uint32_t *src, uint32_t n)
{
    if (m->items + n > SG_PT_MAX_ITEMS)
        return pk_fail(m, SG_ETOOBIG, "containers hold more than %u items", SG_PT_MAX_ITEMS);
    pk_obj *o = &m->objs[c];
    if (n == 0)
        return SG_OK;
    uint32_t *items = grow(o->u.items, &o->cap, o->n + n, sizeof *items, SG_PT_MAX_ITEMS);
    if (!items)
        return pk_fail(m, SG_ENOMEM, "out of memory for container items");
    o->u.items = items;
    memcpy(o->u.items + o->n, src, (size_t)n * sizeof *src);
    o->n += n;
    m->items += n;
    return SG_OK;
}

/* A new container of kind holding stack[first .. sp), which it replaces. */
static sg_status pk_collect(pk_machine *m, pk_kind kind, uint32_t first)
{
    uint32_t c;
    sg_status st = pk_new(m, kind, &c);
    if (st == SG_OK)
        st = pk_append(m, c, m->stack + first, m->sp - first);
    if (st != SG_OK)
        return st;
    m->sp = first;
    return pk_push(m, c);
}

static bool pk_is(const pk_machine *m, uint32_t o, pk_kind k)
{
    return m->objs[o].kind == k;
}

static const char *pk_kind_of(const pk_machine *m, uint32_t o)
{
    return pk_kind_names[m->objs[o].kind];
}

/* Dict keys must be hashable; the scalars are all a state dict uses. */
static sg_status pk_check_keys(pk_machine *m, const uint32_t *kv, uint32_t n)
{
    if (n % 2)
        return pk_fail(m, SG_EINVAL, "odd number of items (%" PRIu32 ") for a dict", n);
    for (uint32_t i = 0; i < n; i += 2)
        if (m->objs[kv[i]].kind > PK_STR)
            return pk_fail(m, SG_EINVAL, "a %s as a dict key is not supported",
                           pk_kind_of(m, kv[i]));
    return SG_OK;
}

static sg_status pk_global(pk_machine *m, const unsigned char *mod, size_t ml,
                           const unsigned char *name, size_t nl)
{
    for (size_t g = 0; g < NGLOBALS; g++)
        if (strlen(pk_globals[g].module) == ml && memcmp(pk_globals[g].module, mod, ml) == 0 &&
            strlen(pk_globals[g].name) == nl && memcmp(pk_globals[g].name, name, nl) == 0) {
            uint32_t o;
            sg_status st = pk_new(m, PK_GLOBAL, &o);
            if (st != SG_OK)
                return st;
            m->objs[o].sub = (uint8_t)g;
            return pk_push(m, o);
        }
    char a[NAME_CLIP + 4], b[NAME_CLIP + 4];
    return pk_fail(m, SG_EUNSUPPORTED,
                   "unsupported global '%s.%s' (only plain state dicts of dense tensors are read)",
                   QUOTE(a, mod, ml), QUOTE(b, name, nl));
}

/* One '\n'-terminated line of a GLOBAL opcode. */
static sg_status pk_line(pk_machine *m, const unsigned char **s, size_t *len)
{
    size_t avail = (size_t)(m->end - m->p);
    const unsigned char *nl = memchr(m->p, '\n', avail < MAX_GLOBAL_LINE ? avail : MAX_GLOBAL_LINE);
    if (!nl)
        return pk_fail(m, SG_EINVAL, "GLOBAL name unterminated or longer than %d bytes",
                       MAX_GLOBAL_LINE - 1);
    *s = m->p;
    *len = (size_t)(nl - m->p);
    m->p = nl + 1;
    return SG_OK;
}

/* BINPERSID: ('storage', <storage type>, key, location, numel), as torch's persistent_id. */
static sg_status pk_persistent(pk_machine *m)
{
    uint32_t pid = 0, o;
    sg_status st = pk_pop(m, &pid);
    if (st != SG_OK)
        return st;
    const pk_obj *t = &m->objs[pid];
    if (t->kind != PK_TUPLE || t->n != 5)
        return pk_fail(m, SG_EINVAL, "persistent id is not a 5-tuple ('storage', type, key, "
                                     "location, numel)");
    const pk_obj *tag = &m->objs[t->u.items[0]], *type = &m->objs[t->u.items[1]],
                 *key = &m->objs[t->u.items[2]], *loc = &m->objs[t->u.items[3]],
                 *numel = &m->objs[t->u.items[4]];
    if (tag->kind != PK_STR || tag->n != 7 || memcmp(tag->u.s, "storage", 7) != 0)
        return pk_fail(m, SG_EINVAL, "persistent id does not start with 'storage'");
    if (type->kind != PK_GLOBAL || pk_globals[type->sub].dtype < 0)
        return pk_fail(m, SG_EINVAL, "persistent id names no storage type");
    if (key->kind != PK_STR || key->n == 0 || key->n > SG_PICKLE_MAX_KEY ||
        memchr(key->u.s, 0, key->n))
        return pk_fail(m, SG_EINVAL, "storage key is not a string of 1 to %d bytes",
                       SG_PICKLE_MAX_KEY);
    if (loc->kind != PK_STR)
        return pk_fail(m, SG_EINVAL, "storage location is not a string");
    if (numel->kind != PK_INT || numel->u.i < 0)
        return pk_fail(m, SG_EINVAL, "storage size is not a non-negative integer");
    if (m->nstorages >= SG_PT_MAX_TENSORS)
        return pk_fail(m, SG_ETOOBIG, "more than %u storages", SG_PT_MAX_TENSORS);
    sg_pickle_storage *ss =
        grow(m->storages, &m->capstorages, m->nstorages + 1, sizeof *ss, SG_PT_MAX_TENSORS);
    if (!ss)
        return pk_fail(m, SG_ENOMEM, "out of memory for storages");
    m->storages = ss;
    sg_pickle_storage *s = &m->storages[m->nstorages];
    s->dtype = (sg_dtype)pk_globals[type->sub].dtype;
    s->key = key->u.s;
    s->key_len = key->n;
    s->numel = (uint64_t)numel->u.i;
    if ((st = pk_new(m, PK_STORAGE, &o)) != SG_OK)
        return st;
    m->objs[o].u.ref = m->nstorages++;
    return pk_push(m, o);
}

/* A tuple of at most SG_PT_MAX_DIMS non-negative ints into v; its length, or -1. */
static int pk_dims(const pk_machine *m, uint32_t o, int64_t *v)
{
    const pk_obj *t = &m->objs[o];
    if (t->kind != PK_TUPLE || t->n > SG_PT_MAX_DIMS)
        return -1;
    for (uint32_t i = 0; i < t->n; i++) {
        const pk_obj *d = &m->objs[t->u.items[i]];
        if (d->kind != PK_INT || d->u.i < 0)
            return -1;
        v[i] = d->u.i;
    }
    return (int)t->n;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
 * [, metadata]): the view is checked against the storage later, by name. */
static sg_status pk_rebuild_tensor(pk_machine *m, const pk_obj *args, uint32_t *res)
{
    const uint32_t *a = args->u.items;
    if (args->n != 6 && args->n != 7)
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2 takes 6 or 7 arguments, not %" PRIu32,
                       args->n);
    if (!pk_is(m, a[0], PK_STORAGE))
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: argument 1 is a %s, not a storage",
                       pk_kind_of(m, a[0]));
    if (!pk_is(m, a[1], PK_INT) || m->objs[a[1]].u.i < 0)
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: storage offset is not a "
                                     "non-negative integer");
    sg_pickle_tensor t = {0};
    t.storage = m->objs[a[0]].u.ref;
    t.offset = m->objs[a[1]].u.i;
    t.op_off = m->op_off;
    int nd = pk_dims(m, a[2], t.shape);
    if (nd < 0) {
        const pk_obj *s = &m->objs[a[2]];
        if (s->kind == PK_TUPLE && s->n > SG_PT_MAX_DIMS)
            return pk_fail(m, SG_EUNSUPPORTED, "tensor has %" PRIu32 " dimensions; at most %d "
                           "are supported", s->n, SG_PT_MAX_DIMS);
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: size is not a tuple of non-negative "
                                     "integers");
    }
    if (pk_dims(m, a[3], t.stride) != nd)
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: stride is not a tuple of %d "
                                     "non-negative integers (negative strides are refused)", nd);
    t.ndim = nd;
    if (!pk_is(m, a[4], PK_BOOL))
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: requires_grad is not a bool");
    if (!pk_is(m, a[5], PK_DICT))
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: backward_hooks is not a dict");
    if (args->n == 7 && !pk_is(m, a[6], PK_NONE) &&
        !(pk_is(m, a[6], PK_DICT) && m->objs[a[6]].n == 0))
        return pk_fail(m, SG_EUNSUPPORTED, "tensor metadata (conjugate or negative views) is "
                                           "not supported");
    if (m->ntensors >= SG_PT_MAX_TENSORS)
        return pk_fail(m, SG_ETOOBIG, "more than %u tensors", SG_PT_MAX_TENSORS);
    sg_pickle_tensor *ts =
        grow(m->tensors, &m->captensors, m->ntensors + 1, sizeof *ts, SG_PT_MAX_TENSORS);
    if (!ts)
        return pk_fail(m, SG_ENOMEM, "out of memory for tensors");
    m->tensors = ts;
    sg_status st = pk_new(m, PK_TENSOR, res);
    if (st != SG_OK)
        return st;
    m->tensors[m->ntensors] = t;
    m->objs[*res].u.ref = m->ntensors++;
    return SG_OK;
}

/* REDUCE: the callable is always one of pk_globals, interpreted here. */
static sg_status pk_reduce(pk_machine *m)
{
    uint32_t args_i = 0, fn_i = 0, res = 0;
    sg_status st;
    if ((st = pk_pop(m, &args_i)) != SG_OK || (st = pk_top(m, &fn_i)) != SG_OK)
        return st;
    const pk_obj *args = &m->objs[args_i], *fn = &m->objs[fn_i];
    if (fn->kind != PK_GLOBAL)
        return pk_fail(m, SG_EINVAL, "REDUCE calls a %s", pk_kind_of(m, fn_i));
    if (args->kind != PK_TUPLE)
        return pk_fail(m, SG_EINVAL, "REDUCE arguments are a %s, not a tuple",
                       pk_kind_of(m, args_i));
    switch (fn->sub) {
    case G_ORDERED_DICT:
        if (args->n != 0)
            return pk_fail(m, SG_EINVAL, "OrderedDict() with arguments is not supported");
        if ((st = pk_new(m, PK_DICT, &res)) != SG_OK)
            return st;
        break;
    case G_REBUILD_TENSOR:
        if ((st = pk_rebuild_tensor(m, args, &res)) != SG_OK)
            return st;
        break;
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE: {
        /* (data, requires_grad, backward_hooks[, state]): the Parameter is its data */
        uint32_t want = fn->sub == G_REBUILD_PARAMETER ? 3 : 4;
        if (args->n != want || !pk_is(m, args->u.items[0], PK_TENSOR) ||
            !pk_is(m, args->u.items[1], PK_BOOL) || !pk_is(m, args->u.items[2], PK_DICT))
            return pk_fail(m, SG_EINVAL, "%s takes (tensor, bool, dict%s)",
                           pk_globals[fn->sub].name, want == 4 ? ", state" : "");
        res = args->u.items[0];
        break;
    }
    default:
        return pk_fail(m, SG_EUNSUPPORTED, "calling torch.%s is not supported",
                       pk_globals[fn->sub].name);
    }
    m->stack[m->sp - 1] = res;
    return SG_OK;
}

/* Runs the opcodes to STOP; *result is the unpickled object. Accepted, and nothing else:
 *   protocol   PROTO (2..5), FRAME (a hint: only checked to lie inside the pickle)
 *   values     NONE NEWTRUE NEWFALSE BININT BININT1 BININT2 LONG1 (<= 8 bytes) BINFLOAT
 *              BINUNICODE SHORT_BINUNICODE BINUNICODE8 (strict UTF-8)
 *   containers EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_LIST LIST APPEND APPENDS
 *              EMPTY_DICT DICT SETITEM SETITEMS (scalar keys only) MARK
 *   memo       BINPUT LONG_BINPUT MEMOIZE (numbered in order) BINGET LONG_BINGET
 *   torch      GLOBAL STACK_GLOBAL (pk_globals only) REDUCE (on those) BUILD (dict on a dict:
 *              the OrderedDict's _metadata, ignored) BINPERSID (torch's storage ids) STOP */
static sg_status pk_run(pk_machine *m, uint32_t *result)
{
    sg_status st = SG_OK;
    uint32_t a = 0, b = 0, c, first = 0;
    const unsigned char *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    while (st == SG_OK) {
        if (m->p >= m->end) {
            m->op_off = (size_t)(m->p - m->start);
            return pk_fail(m, SG_EINVAL, "truncated: no STOP opcode");
        }
        m->op_off = (size_t)(m->p - m->start);
        unsigned char op = *m->p++;
        switch (op) {
        case 0x80: /* PROTO */
            if ((st = pk_need(m, 1)) != SG_OK)
                break;
            if (*m->p > 5)
                return pk_fail(m, SG_EUNSUPPORTED, "pickle protocol %u", *m->p);
            m->p++;
            break;
        case 0x95: /* FRAME: a framing hint; the bytes that follow are read as usual */
            if ((st = pk_need(m, 8)) != SG_OK)
                break;
            if (rd_le(m->p, 8) > (uint64_t)(m->end - m->p - 8))
                return pk_fail(m, SG_EINVAL, "frame of %" PRIu64 " bytes runs past the end",
                               rd_le(m->p, 8));
            m->p += 8;
            break;
        case '}': /* EMPTY_DICT */
        case ']': /* EMPTY_LIST */
        case ')': /* EMPTY_TUPLE */
            if ((st = pk_new(m, op == '}' ? PK_DICT : op == ']' ? PK_LIST : PK_TUPLE, &a)) ==
                SG_OK)
                st = pk_push(m, a);
            break;
        case '(': /* MARK */
            if (m->nmarks >= SG_PT_MAX_MARKS)
                return pk_fail(m, SG_ETOOBIG, "MARKs nested deeper than %d", SG_PT_MAX_MARKS);
            m->marks[m->nmarks++] = m->sp;
            break;
        case 'q':  /* BINPUT */
        case 'r':  /* LONG_BINPUT */
        case 0x94: /* MEMOIZE */
            if (op == 'q') {
                if ((st = pk_need(m, 1)) != SG_OK)
                    break;
                b = *m->p++;
            } else if (op == 'r') {
                if ((st = pk_need(m, 4)) != SG_OK)
                    break;
                b = (uint32_t)rd_le(m->p, 4);
                m->p += 4;
            } else {
                b = m->nmemo;
            }
            if ((st = pk_top(m, &a)) != SG_OK)
                break;
            /* picklers number memo entries 0, 1, 2, ...: a sparse memo is refused */
            if (b > m->nmemo)
                return pk_fail(m, SG_EINVAL, "memo index %" PRIu32 " skips ahead (memo holds %"
                               PRIu32 ")", b, m->nmemo);
            if (b == m->nmemo) {
                if (m->nmemo >= SG_PT_MAX_MEMO)
                    return pk_fail(m, SG_ETOOBIG, "more than %u memo entries", SG_PT_MAX_MEMO);
                uint32_t *memo =
                    grow(m->memo, &m->capmemo, m->nmemo + 1, sizeof *memo, SG_PT_MAX_MEMO);
                if (!memo)
                    return pk_fail(m, SG_ENOMEM, "out of memory for the memo");
                m->memo = memo;
                m->nmemo++;
            }
            m->memo[b] = a;
            break;
        case 'h': /* BINGET */
        case 'j': /* LONG_BINGET */
            if ((st = pk_need(m, op == 'h' ? 1 : 4)) != SG_OK)
                break;
            b = op == 'h' ? *m->p : (uint32_t)rd_le(m->p, 4);
            m->p += op == 'h' ? 1 : 4;
            if (b >= m->nmemo)
                return pk_fail(m, SG_EINVAL, "memo index %" PRIu32 " out of range (memo holds %"
                               PRIu32 ")", b, m->nmemo);
            st = pk_push(m, m->memo[b]);
            break;
        case 'c': /* GLOBAL */
            if ((st = pk_line(m, &s1, &l1)) == SG_OK && (st = pk_line(m, &s2, &l2)) == SG_OK)
                st = pk_global(m, s1, l1, s2, l2);
            break;
        case 0x93: /* STACK_GLOBAL */
            if ((st = pk_pop(m, &b)) != SG_OK || (st = pk_pop(m, &a)) != SG_OK)
                break;
            if (!pk_is(m, a, PK_STR) || !pk_is(m, b, PK_STR))
                return pk_fail(m, SG_EINVAL, "STACK_GLOBAL needs two strings");
            st = pk_global(m, m->objs[a].u.s, m->objs[a].n, m->objs[b].u.s, m->objs[b].n);
            break;
        case 'X': /* BINUNICODE */
            if ((st = pk_need(m, 4)) == SG_OK) {
                uint32_t n = (uint32_t)rd_le(m->p, 4);
                m->p += 4;
                st = pk_str(m, n);
            }
            break;
        case 0x8c: /* SHORT_BINUNICODE */
            if ((st = pk_need(m, 1)) == SG_OK) {
                uint32_t n = *m->p++;
                st = pk_str(m, n);
            }
            break;
        case 0x8d: /* BINUNICODE8 */
            if ((st = pk_need(m, 8)) == SG_OK) {
                uint64_t n = rd_le(m->p, 8);
                m->p += 8;
                st = pk_str(m, n);
            }
            break;
        case 'J': /* BININT */
            if ((st = pk_need(m, 4)) == SG_OK) {
                int32_t v = (int32_t)(uint32_t)rd_le(m->p, 4);
                m->p += 4;
                st = pk_int(m, v);
            }
            break;
        case 'K': /* BININT1 */
            if ((st = pk_need(m, 1)) == SG_OK)
                st = pk_int(m, *m->p++);
            break;
        case 'M': /* BININT2 */
            if ((st = pk_need(m, 2)) == SG_OK) {
                int64_t v = (int64_t)rd_le(m->p, 2);
                m->p += 2;
                st = pk_int(m, v);
            }
            break;
        case 0x8a: { /* LONG1: little-endian two's complement */
            if ((st = pk_need(m, 1)) != SG_OK)
                break;
            size_t n = *m->p++;
            if (n > 8)
                return pk_fail(m, SG_EUNSUPPORTED, "integer of %zu bytes does not fit 64 bits", n);
            if ((st = pk_need(m, n)) != SG_OK)
                break;
            uint64_t v = 0;
            for (size_t i = 0; i < n; i++)
                v |= (uint64_t)m->p[i] << (8 * i);
            if (n && n < 8 && (m->p[n - 1] & 0x80))
                v |= ~(uint64_t)0 << (8 * n);
            m->p += n;
            st = pk_int(m, (int64_t)v);
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            if ((st = pk_need(m, 8)) != SG_OK)
                break;
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++)
                bits = bits << 8 | m->p[i];
            m->p += 8;
            if ((st = pk_new(m, PK_FLOAT, &a)) != SG_OK)
                break;
            memcpy(&m->objs[a].u.f, &bits, sizeof bits);
            st = pk_push(m, a);
            break;
        }
        case 'N': /* NONE */
            st = pk_push(m, OBJ_NONE);
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            st = pk_push(m, op == 0x88 ? OBJ_TRUE : OBJ_FALSE);
            break;
        case 't': /* TUPLE */
        case 'l': /* LIST */
        case 'd': /* DICT */
            if ((st = pk_pop_mark(m, &first)) != SG_OK)
                break;
            if (op == 'd' && (st = pk_check_keys(m, m->stack + first, m->sp - first)) != SG_OK)
                break;
            st = pk_collect(m, op == 't' ? PK_TUPLE : op == 'l' ? PK_LIST : PK_DICT, first);
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
            c = (uint32_t)(op - 0x84);
            if (m->sp - pk_base(m) < c)
                return pk_fail(m, SG_EINVAL, "pickle stack underflow");
            st = pk_collect(m, PK_TUPLE, m->sp - c);
            break;
        case 'a': /* APPEND */
            if ((st = pk_pop(m, &b)) != SG_OK || (st = pk_top(m, &a)) != SG_OK)
                break;
            if (!pk_is(m, a, PK_LIST))
                return pk_fail(m, SG_EINVAL, "APPEND to a %s", pk_kind_of(m, a));
            st = pk_append(m, a, &b, 1);
            break;
        case 'e': /* APPENDS */
        case 'u': /* SETITEMS */
            if ((st = pk_pop_mark(m, &first)) != SG_OK)
                break;
            if (first <= pk_base(m))
                return pk_fail(m, SG_EINVAL, "pickle stack underflow");
            a = m->stack[first - 1];
            if (!pk_is(m, a, op == 'e' ? PK_LIST : PK_DICT))
                return pk_fail(m, SG_EINVAL, "%s to a %s", op == 'e' ? "APPENDS" : "SETITEMS",
                               pk_kind_of(m, a));
            if (op == 'u' && (st = pk_check_keys(m, m->stack + first, m->sp - first)) != SG_OK)
                break;
            if ((st = pk_append(m, a, m->stack + first, m->sp - first)) == SG_OK)
                m->sp = first;
            break;
        case 's': { /* SETITEM */
            uint32_t kv[2];
            if ((st = pk_pop(m, &kv[1])) != SG_OK || (st = pk_pop(m, &kv[0])) != SG_OK ||
                (st = pk_top(m, &a)) != SG_OK)
                break;
            if (!pk_is(m, a, PK_DICT))
                return pk_fail(m, SG_EINVAL, "SETITEM on a %s", pk_kind_of(m, a));
            if ((st = pk_check_keys(m, kv, 2)) == SG_OK)
                st = pk_append(m, a, kv, 2);
            break;
        }
        case 'R': /* REDUCE */
            st = pk_reduce(m);
            break;
        case 'b': /* BUILD: only the attributes of a state dict's OrderedDict (_metadata) */
            if ((st = pk_pop(m, &b)) != SG_OK || (st = pk_top(m, &a)) != SG_OK)
                break;
            if (!pk_is(m, a, PK_DICT) || !pk_is(m, b, PK_DICT))
                return pk_fail(m, SG_EINVAL, "BUILD of a %s with a %s is not supported",
                               pk_kind_of(m, a), pk_kind_of(m, b));
            break;
        case 'Q': /* BINPERSID */
            st = pk_persistent(m);
            break;
        case '.': /* STOP */
            if (m->nmarks)
                return pk_fail(m, SG_EINVAL, "STOP with a MARK still open");
            if (m->sp != 1)
                return pk_fail(m, SG_EINVAL, "STOP with %" PRIu32 " values on the stack, not 1",
                               m->sp);
            if (m->p != m->end)
                return pk_fail(m, SG_EINVAL, "%zu bytes after STOP", (size_t)(m->end - m->p));
            *result = m->stack[0];
            return SG_OK;
        default:
            return pk_fail(m, SG_EUNSUPPORTED, "unsupported pickle opcode 0x%02x", op);
        }
    }
    return st;
}

/* Number of elements of t's view (*numel) and one past the highest element it addresses
 * (*span; the offset when empty). False on overflow. */
static bool view_extent(const sg_pickle_tensor *t, uint64_t *numel, uint64_t *span)
{
    uint64_t n = 1, hi = (uint64_t)t->offset;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t s = (uint64_t)t->shape[d];
        if (s && n > (uint64_t)INT64_MAX / s)
            return false;
        n *= s;
    }
    *numel = n;
    if (n == 0) {
        *span = hi;
        return true;
    }
    for (int d = 0; d < t->ndim; d++) {
        uint64_t s = (uint64_t)t->shape[d] - 1, st = (uint64_t)t->stride[d];
        if (s && st > ((uint64_t)INT64_MAX - 1 - hi) / s)
            return false;
        hi += s * st;
    }
    *span = hi + 1;
    return true;
}

/* Checks that tensor ti's view lies in its storage's declared elements; name may be NULL. */
static sg_status pk_check_view(pk_machine *m, uint32_t ti, const unsigned char *name,
                               size_t name_len)
{
    const sg_pickle_tensor *t = &m->tensors[ti];
    const sg_pickle_storage *s = &m->storages[t->storage];
    uint64_t numel, span;
    char who[NAME_CLIP + 40], kb[NAME_CLIP + 4], sb[96], tb[96];
    if (name) {
        char nb[NAME_CLIP + 4];
        snprintf(who, sizeof who, "tensor '%s'", QUOTE(nb, name, name_len));
    } else {
        snprintf(who, sizeof who, "the tensor built at offset %zu", t->op_off);
    }
    if (!view_extent(t, &numel, &span))
        return sg_error_set(m->err, SG_EINVAL, "%s: %s: shape %s, stride %s overflows", m->label,
                            who, sg_shape_str(sb, sizeof sb, t->ndim, t->shape),
                            sg_shape_str(tb, sizeof tb, t->ndim, t->stride));
    if (span > s->numel)
        return sg_error_set(m->err, SG_EINVAL,
                            "%s: %s (shape %s, stride %s, offset %" PRId64 ") addresses element %"
                            PRIu64 " of storage '%s', which holds %" PRIu64,
                            m->label, who, sg_shape_str(sb, sizeof sb, t->ndim, t->shape),
                            sg_shape_str(tb, sizeof tb, t->ndim, t->stride), t->offset,
                            span - 1 + (numel == 0), QUOTE(kb, s->key, s->key_len), s->numel);
    return SG_OK;
}

static int out_name_cmp(const void *pa, const void *pb)
{
    const sg_pickle_item *a = pa, *b = pb;
    int c = memcmp(a->name, b->name, a->name_len < b->name_len ? a->name_len : b->name_len);
    return c ? c : (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

/* The top-level dict: its tensor values into m->out, scalars skipped, anything else refused;
 * then every view checked. */
static sg_status pk_collect_tensors(pk_machine *m, uint32_t top)
{
    const pk_obj *d = &m->objs[top];
    if (d->kind != PK_DICT)
        return sg_error_set(m->err, SG_EINVAL,
                            "%s: %s holds a %s, not a dict of tensors (a state dict)", m->label,
                            m->what, pk_kind_of(m, top));
    m->out = calloc(d->n / 2 + 1, sizeof *m->out);
    if (!m->out)
        return sg_error_set(m->err, SG_ENOMEM, "%s: out of memory", m->label);
    char nb[NAME_CLIP + 4];
    for (uint32_t i = 0; i < d->n; i += 2) {
        const pk_obj *k = &m->objs[d->u.items[i]];
        uint32_t v = d->u.items[i + 1];
        if (k->kind != PK_STR)
            return sg_error_set(m->err, SG_EINVAL, "%s: state dict key %" PRIu32
                                " is a %s, not a string", m->label, i / 2, pk_kind_names[k->kind]);
        if (memchr(k->u.s, 0, k->n))
            return sg_error_set(m->err, SG_EINVAL, "%s: state dict key '%s' holds a NUL byte",
                                m->label, QUOTE(nb, k->u.s, k->n));
        uint8_t vk = m->objs[v].kind;
        if (vk == PK_TENSOR) {
            m->out[m->nout++] = (sg_pickle_item){k->u.s, k->n, m->objs[v].u.ref};
        } else if (vk > PK_STR) {
            return sg_error_set(m->err, SG_EUNSUPPORTED,
                                "%s: value of '%s' is a %s; only a flat state dict of tensors "
                                "is supported (save model.state_dict() itself)",
                                m->label, QUOTE(nb, k->u.s, k->n), pk_kind_of(m, v));
        }
    }
    sg_status st;
    for (size_t i = 0; i < m->nout; i++)
        if ((st = pk_check_view(m, m->out[i].tensor, m->out[i].name, m->out[i].name_len)) !=
            SG_OK)
            return st;
    for (uint32_t i = 0; i < m->ntensors; i++)
        if ((st = pk_check_view(m, i, NULL, 0)) != SG_OK)
            return st;
    /* duplicate names: a sorted copy */
    if (m->nout > 1) {
        sg_pickle_item *sorted = malloc(m->nout * sizeof *sorted);
        if (!sorted)
            return sg_error_set(m->err, SG_ENOMEM, "%s: out of memory", m->label);
        memcpy(sorted, m->out, m->nout * sizeof *sorted);
        qsort(sorted, m->nout, sizeof *sorted, out_name_cmp);
        for (size_t i = 1; i < m->nout; i++)
            if (out_name_cmp(&sorted[i - 1], &sorted[i]) == 0) {
                sg_error_set(m->err, SG_EINVAL, "%s: duplicate tensor name '%s'", m->label,
                             QUOTE(nb, sorted[i].name, sorted[i].name_len));
                free(sorted);
                return SG_EINVAL;
            }
        free(sorted);
    }
    return SG_OK;
}

/* Runs the machine over buf (pickle entry what of file label) up to the checked tensor list. */
static sg_status pk_parse(pk_machine *m, const unsigned char *buf, size_t len, const char *label,
                          const char *what, size_t what_len, sg_error *err)
{
    memset(m, 0, sizeof *m);
    m->start = m->p = buf;
    m->end = buf + len;
    m->label = label;
    m->err = err;
    QUOTE(m->what, what, what_len);
    uint32_t o, top = 0;
    sg_status st;
    /* None, False, True, shared by every use */
    if ((st = pk_new(m, PK_NONE, &o)) != SG_OK || (st = pk_new(m, PK_BOOL, &o)) != SG_OK ||
        (st = pk_new(m, PK_BOOL, &o)) != SG_OK)
        return st;
    m->objs[OBJ_TRUE].sub = 1;
    /* a stack exists from the start: "MARK DICT" on an empty one uses m->stack + 0 */
    uint32_t *stack = grow(NULL, &m->capstack, 1, sizeof *stack, SG_PT_MAX_STACK);
    if (!stack)
        return pk_fail(m, SG_ENOMEM, "out of memory for the pickle stack");
    m->stack = stack;
    if ((st = pk_run(m, &top)) != SG_OK)
        return st;
    return pk_collect_tensors(m, top);
}

sg_status sg_pickle_state_dict_parse(const unsigned char *buf, size_t len, const char *label,
                                     const char *what, size_t what_len,
                                     sg_pickle_state_dict *d, sg_error *err)
{
    pk_machine m;
    sg_status st = pk_parse(&m, buf, len, label, what, what_len, err);
    *d = (sg_pickle_state_dict){0};
    if (st == SG_OK) { /* the results change hands; the rest of the machine goes */
        *d = (sg_pickle_state_dict){m.storages, m.nstorages, m.tensors, m.ntensors, m.out, m.nout};
        m.storages = NULL;
        m.tensors = NULL;
        m.out = NULL;
    }
    pk_free(&m);
    return st;
}

void sg_pickle_state_dict_free(sg_pickle_state_dict *d)
{
    free(d->storages);
    free(d->tensors);
    free(d->items);
    *d = (sg_pickle_state_dict){0};
}
