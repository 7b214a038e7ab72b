/* torch.save reader in three stages, each validating what the next relies on:
 *   1. ZIP (nn/zip.c): the end record, the central directory, and for each entry read its local
 *      header, bounds and CRC-32; here, the one "<stem>/data.pkl" and the byteorder entry.
 *   2. Pickle (nn/pickle.c): the bounded machine that never executes anything, up to the state
 *      dict's tensor views, each checked against its storage's declared size.
 *   3. Tensors (here): each storage bound to its "<stem>/data/<key>" entry and checked to hold
 *      its declared elements, then the views handed out, looked up and gathered to f32. */
#include "nn/ptfile.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/utf8.h"
#include "nn/pickle.h"
#include "nn/shape.h"
#include "nn/zip.h"

/* Storages are little-endian and handed to sg_dtype_to_f32 as they are. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ptfile.c assumes a little-endian host"
#endif

/* Bytes of a name quoted in a message, so that messages fit sg_error.msg. */
#define NAME_CLIP 48
#define QUOTE(buf, s, len) sg_utf8_quote(buf, NAME_CLIP, (s), (len), false)
#define QUOTEZ(buf, s) sg_utf8_quote(buf, NAME_CLIP, (s), strlen(s), false)

struct sg_pt_file {
    const unsigned char *base;
    size_t len;
    sg_file_map file; /* what sg_pt_open mapped; empty for a borrowed buffer */
    char label[SG_FILE_LABEL_SIZE];
    sg_zip zip;
    const unsigned char *stem; /* "archive" of "archive/data.pkl" */
    size_t stem_len;
    sg_zip_entry *pkl;         /* "<stem>/data.pkl" */
    sg_pt_tensor *tensors;     /* in dict order */
    size_t n;
    const sg_pt_tensor **by_name; /* sorted by name */
    char *names;
};

/* The entry "<stem>/<name>", or NULL. */
static sg_zip_entry *find_in_stem(const sg_pt_file *f, const char *name, size_t len)
{
    return sg_zip_find(&f->zip, f->stem, f->stem_len, name, len);
}

/* ---- 1. the archive: what torch puts in it ------------------------------------------------ */

/* The files torch wrote before the ZIP format (and its preview release) start differently. */
static sg_status check_legacy(const sg_pt_file *f, sg_error *err)
{
    const unsigned char *b = f->base;
    if ((f->len >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) ||
        (f->len >= 262 && memcmp(b + 257, "ustar", 5) == 0))
        return sg_zip_fail(&f->zip, err, SG_EUNSUPPORTED,
                           "legacy (pre-1.6) torch.save format is not supported; re-save with "
                           "torch>=1.6");
    if (f->len >= 8 && memcmp(b, "PYTORCH1", 8) == 0)
        return sg_zip_fail(&f->zip, err, SG_EUNSUPPORTED,
                           "torch preview-release archive format is not supported; re-save with "
                           "torch>=1.6");
    return SG_OK;
}

/* Finds the one "<stem>/data.pkl" and sets f->stem. */
static sg_status find_stem(sg_pt_file *f, sg_error *err)
{
    static const char suffix[] = "/data.pkl";
    const size_t sl = sizeof suffix - 1;
    sg_zip_entry *found = NULL;
    for (size_t i = 0; i < f->zip.n; i++) {
        sg_zip_entry *e = &f->zip.entries[i];
        if (e->name_len <= sl || memcmp(e->name + e->name_len - sl, suffix, sl) != 0 ||
            memchr(e->name, '/', e->name_len - sl))
            continue;
        if (found) {
            char a[NAME_CLIP + 4], b2[NAME_CLIP + 4];
            return sg_zip_fail(&f->zip, err, SG_EINVAL,
                               "two pickles, '%s' and '%s': not a torch.save file",
                               QUOTE(a, found->name, found->name_len),
                               QUOTE(b2, e->name, e->name_len));
        }
        found = e;
    }
    if (!found)
        return sg_zip_fail(&f->zip, err, SG_EINVAL,
                           "no '<name>/data.pkl' entry in the ZIP archive: not a torch.save file");
    f->pkl = found;
    f->stem = found->name;
    f->stem_len = found->name_len - sl;
    if (find_in_stem(f, "constants.pkl", 13))
        return sg_zip_fail(&f->zip, err, SG_EUNSUPPORTED,
                           "a TorchScript archive (torch.jit.save) is not a state dict; save "
                           "model.state_dict() with torch.save");
    return SG_OK;
}

static sg_status check_byteorder(sg_pt_file *f, sg_error *err)
{
    sg_zip_entry *e = find_in_stem(f, "byteorder", 9);
    if (!e)
        return SG_OK; /* torch < 2.1 does not write it, and was little-endian only */
    sg_status st = sg_zip_entry_data(&f->zip, e, err);
    if (st != SG_OK)
        return st;
    if (e->usize == 6 && memcmp(e->data, "little", 6) == 0)
        return SG_OK;
    if (e->usize == 3 && memcmp(e->data, "big", 3) == 0)
        return sg_zip_fail(&f->zip, err, SG_EUNSUPPORTED,
                           "big-endian checkpoint (byteorder \"big\") is not supported");
    char vb[NAME_CLIP + 4];
    return sg_zip_fail(&f->zip, err, SG_EINVAL,
                       "byteorder entry holds \"%s\", not \"little\" or \"big\"",
                       QUOTE(vb, e->data, e->usize > 40 ? 40 : (size_t)e->usize));
}

/* ---- 3. tensors (stage 2 is nn/pickle.c) -------------------------------------------------- */

/* How a ZIP entry was declared as a storage: one dtype and size for all its uses. */
typedef struct storage_use {
    bool used;
    sg_dtype dtype;
    uint64_t numel;
} storage_use;

/* The entry of storage s, checked to hold its declared elements, with one dtype and size for
 * all its uses (uses: one per ZIP entry). */
static sg_status resolve_storage(sg_pt_file *f, const sg_pickle_storage *s, storage_use *uses,
                                 sg_zip_entry **out, sg_error *err)
{
    char name[SG_PICKLE_MAX_KEY + 8], kb[NAME_CLIP + 4], sb[NAME_CLIP + 4];
    memcpy(name, "data/", 5);
    memcpy(name + 5, s->key, s->key_len);
    sg_zip_entry *e = find_in_stem(f, name, 5 + s->key_len);
    QUOTE(kb, s->key, s->key_len);
    if (!e)
        return sg_zip_fail(&f->zip, err, SG_EINVAL,
                           "storage '%s' has no entry '%s/data/%s' in the archive", kb,
                           QUOTE(sb, f->stem, f->stem_len), kb);
    storage_use *u = &uses[e - f->zip.entries];
    if (u->used && (u->dtype != s->dtype || u->numel != s->numel))
        return sg_zip_fail(&f->zip, err, SG_EINVAL,
                           "storage '%s' is declared as %s[%" PRIu64 "] and as %s[%" PRIu64 "]",
                           kb, sg_dtype_name(u->dtype), u->numel, sg_dtype_name(s->dtype),
                           s->numel);
    sg_status st = sg_zip_entry_data(&f->zip, e, err);
    if (st != SG_OK)
        return st;
    size_t es = sg_dtype_size(s->dtype);
    if (s->numel > e->usize / es)
        return sg_zip_fail(&f->zip, err, SG_EINVAL,
                           "storage '%s' declares %" PRIu64 " %s elements but its entry holds %"
                           PRIu64 " bytes",
                           kb, s->numel, sg_dtype_name(s->dtype), e->usize);
    *u = (storage_use){true, s->dtype, s->numel};
    *out = e;
    return SG_OK;
}

static int by_name_cmp(const void *pa, const void *pb)
{
    const sg_pt_tensor *const *a = pa, *const *b = pb;
    return strcmp((*a)->name, (*b)->name);
}

/* Builds f->tensors from the pickle's checked state dict. */
static sg_status build_tensors(sg_pt_file *f, const sg_pickle_state_dict *d, sg_error *err)
{
    /* every storage the pickle names, used or not, must exist */
    sg_zip_entry **ent = calloc(d->nstorages + 1, sizeof *ent);
    storage_use *uses = calloc(f->zip.n + 1, sizeof *uses);
    sg_status st = SG_OK;
    if (!ent || !uses)
        st = sg_zip_fail(&f->zip, err, SG_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < d->nstorages && st == SG_OK; i++)
        st = resolve_storage(f, &d->storages[i], uses, &ent[i], err);
    free(uses);
    size_t bytes = 1;
    for (size_t i = 0; i < d->n; i++)
        bytes += d->items[i].name_len + 1;
    if (st == SG_OK) {
        f->tensors = calloc(d->n + 1, sizeof *f->tensors);
        f->by_name = calloc(d->n + 1, sizeof *f->by_name);
        f->names = malloc(bytes);
        if (!f->tensors || !f->by_name || !f->names)
            st = sg_zip_fail(&f->zip, err, SG_ENOMEM, "out of memory for %zu tensors", d->n);
    }
    char *sp = f->names;
    for (size_t i = 0; i < d->n && st == SG_OK; i++) {
        const sg_pickle_item *item = &d->items[i];
        const sg_pickle_tensor *t = &d->tensors[item->tensor];
        const sg_pickle_storage *s = &d->storages[t->storage];
        sg_pt_tensor *o = &f->tensors[i];
        memcpy(sp, item->name, item->name_len);
        sp[item->name_len] = '\0';
        o->name = sp;
        sp += item->name_len + 1;
        o->dtype = s->dtype;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        memcpy(o->stride, t->stride, sizeof o->stride);
        o->offset = t->offset;
        o->storage = ent[t->storage]->data;
        o->storage_bytes = (size_t)s->numel * sg_dtype_size(s->dtype);
        f->by_name[i] = o;
    }
    free(ent);
    if (st != SG_OK)
        return st;
    f->n = d->n;
    qsort(f->by_name, f->n, sizeof *f->by_name, by_name_cmp);
    return SG_OK;
}

/* ---- open / close ------------------------------------------------------------------------ */

static sg_status pt_parse(sg_pt_file *f, sg_error *err)
{
    sg_status st;
    if ((st = check_legacy(f, err)) != SG_OK ||
        (st = sg_zip_open(&f->zip, f->base, f->len, SG_PT_MAX_ENTRIES, f->label, err)) != SG_OK ||
        (st = find_stem(f, err)) != SG_OK || (st = check_byteorder(f, err)) != SG_OK)
        return st;
    sg_zip_entry *pkl = f->pkl;
    if (pkl->usize > SG_PT_MAX_PICKLE_BYTES)
        return sg_zip_fail(&f->zip, err, SG_ETOOBIG,
                           "data.pkl is %" PRIu64 " bytes; the limit is %u", pkl->usize,
                           SG_PT_MAX_PICKLE_BYTES);
    if ((st = sg_zip_entry_data(&f->zip, pkl, err)) != SG_OK)
        return st;
    sg_pickle_state_dict d;
    st = sg_pickle_state_dict_parse(pkl->data, (size_t)pkl->usize, f->label,
                                    (const char *)pkl->name, pkl->name_len, &d, err);
    if (st == SG_OK)
        st = build_tensors(f, &d, err);
    sg_pickle_state_dict_free(&d);
    return st;
}

static sg_pt_file *pt_new(const char *label, sg_error *err)
{
    sg_pt_file *f = calloc(1, sizeof *f);
    if (!f) {
        sg_error_set(err, SG_ENOMEM, "out of memory opening %s", label);
        return NULL;
    }
    sg_file_label(f->label, label);
    f->zip.label = f->label; /* for the messages before the archive is read */
    return f;
}

/* Reads f over base[0..len); closes f and returns NULL when it is refused. */
static sg_pt_file *pt_read(sg_pt_file *f, const unsigned char *base, size_t len, sg_error *err)
{
    f->base = base;
    f->len = len;
    if (pt_parse(f, err) == SG_OK)
        return f;
    sg_pt_close(f);
    return NULL;
}

sg_pt_file *sg_pt_open_memory(const void *buf, size_t len, sg_error *err)
{
    static const unsigned char empty[1];
    if (!buf && len) {
        sg_error_set(err, SG_EINVAL, "sg_pt_open_memory: NULL buffer");
        return NULL;
    }
    sg_pt_file *f = pt_new("<memory>", err);
    return f ? pt_read(f, len ? buf : empty, len, err) : NULL;
}

sg_pt_file *sg_pt_open(const char *path, sg_error *err)
{
    if (!path) {
        sg_error_set(err, SG_EINVAL, "sg_pt_open: NULL path");
        return NULL;
    }
    sg_pt_file *f = pt_new(path, err);
    if (f && sg_file_map_open(path, SIZE_MAX, &f->file, err) != SG_OK) {
        sg_pt_close(f);
        return NULL;
    }
    return f ? pt_read(f, f->file.data, f->file.len, err) : NULL;
}

void sg_pt_close(sg_pt_file *f)
{
    if (!f)
        return;
    sg_file_map_close(&f->file);
    sg_zip_close(&f->zip);
    free(f->tensors);
    free(f->by_name);
    free(f->names);
    free(f);
}

/* ---- lookups and reads ------------------------------------------------------------------- */

size_t sg_pt_count(const sg_pt_file *f)
{
    return f ? f->n : 0;
}

const sg_pt_tensor *sg_pt_at(const sg_pt_file *f, size_t i)
{
    return f && i < f->n ? &f->tensors[i] : NULL;
}

const sg_pt_tensor *sg_pt_find(const sg_pt_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sg_pt_tensor *t = f->by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0)
            return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int64_t sg_pt_numel(const sg_pt_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i]; /* cannot overflow: checked at open */
    return n;
}

static const sg_pt_tensor *find_checked(const sg_pt_file *f, const char *name, int ndim,
                                        const int64_t *shape, sg_error *err)
{
    char nb[NAME_CLIP + 4];
    if (!f || !name) {
        sg_error_set(err, SG_EINVAL, "sg_pt_read_f32: NULL file or name");
        return NULL;
    }
    const sg_pt_tensor *t = sg_pt_find(f, name);
    if (!t) {
        sg_error_set(err, SG_EINVAL, "tensor '%s' not found in %s", QUOTEZ(nb, name), f->label);
        return NULL;
    }
    if (!shape)
        return t;
    if (ndim < 0 || ndim > SG_PT_MAX_DIMS) {
        sg_error_set(err, SG_EINVAL, "tensor '%s': expected ndim %d is out of range",
                     QUOTEZ(nb, name), ndim);
        return NULL;
    }
    if (!sg_shape_matches(t->ndim, t->shape, ndim, shape)) {
        char have[64], want[64];
        sg_error_set(err, SG_EINVAL, "%s: tensor '%s' has shape %s, expected %s", f->label,
                     QUOTEZ(nb, name), sg_shape_str(have, sizeof have, t->ndim, t->shape),
                     sg_shape_str(want, sizeof want, ndim, shape));
        return NULL;
    }
    return t;
}

/* Elements gathered per conversion call when the innermost stride is not 1. */
#define GATHER 256

/* Converts the view t, row-major, into out. */
static void gather_f32(const sg_pt_tensor *t, float *out)
{
    size_t es = sg_dtype_size(t->dtype);
    const unsigned char *base = (const unsigned char *)t->storage + (size_t)t->offset * es;
    int64_t numel = sg_pt_numel(t);
    if (numel == 0)
        return;
    /* contiguous (dims of size 1 may have any stride) */
    bool contig = true;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0 && contig; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect)
            contig = false;
        expect *= t->shape[d];
    }
    if (contig) {
        sg_dtype_to_f32(t->dtype, base, (size_t)numel, out);
        return;
    }
    int last = t->ndim - 1; /* >= 0: a scalar is contiguous */
    int64_t inner = t->shape[last], istride = t->stride[last];
    int64_t idx[SG_PT_MAX_DIMS] = {0};
    unsigned char tmp[GATHER * 8];
    for (int64_t done = 0; done < numel; done += inner) {
        int64_t pos = 0;
        for (int d = 0; d < last; d++)
            pos += idx[d] * t->stride[d];
        const unsigned char *row = base + (size_t)pos * es;
        if (istride == 1) {
            sg_dtype_to_f32(t->dtype, row, (size_t)inner, out + done);
        } else {
            for (int64_t j = 0; j < inner; j += GATHER) {
                int64_t n = inner - j < GATHER ? inner - j : GATHER;
                for (int64_t k = 0; k < n; k++)
                    memcpy(tmp + k * es, row + (size_t)((j + k) * istride) * es, es);
                sg_dtype_to_f32(t->dtype, tmp, (size_t)n, out + done + j);
            }
        }
        for (int d = last - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
}

sg_status sg_pt_read_f32(const sg_pt_file *f, const char *name, int ndim, const int64_t *shape,
                         float *out, sg_error *err)
{
    const sg_pt_tensor *t = find_checked(f, name, ndim, shape, err);
    if (!t)
        return err ? err->code : SG_EINVAL;
    if (sg_pt_numel(t) && !out)
        return sg_error_set(err, SG_EINVAL, "sg_pt_read_f32: NULL output buffer");
    gather_f32(t, out);
    return SG_OK;
}

float *sg_pt_get_f32(const sg_pt_file *f, const char *name, int ndim, const int64_t *shape,
                     sg_error *err)
{
    const sg_pt_tensor *t = find_checked(f, name, ndim, shape, err);
    if (!t)
        return NULL;
    int64_t n = sg_pt_numel(t);
    char nb[NAME_CLIP + 4];
    if ((uint64_t)n > SIZE_MAX / sizeof(float)) {
        sg_error_set(err, SG_ETOOBIG, "%s: tensor '%s' is too large to convert to f32",
                     f->label, QUOTEZ(nb, name));
        return NULL;
    }
    float *out = malloc(n ? (size_t)n * sizeof(float) : 1);
    if (!out) {
        sg_error_set(err, SG_ENOMEM, "%s: out of memory for tensor '%s' (%" PRId64 " floats)",
                     f->label, QUOTEZ(nb, name), n);
        return NULL;
    }
    gather_f32(t, out);
    return out;
}

sg_status sg_pt_parse_pickle_for_fuzz(const void *buf, size_t len, size_t *ntensors,
                                      sg_error *err)
{
    if (!buf && len)
        return sg_error_set(err, SG_EINVAL, "sg_pt_parse_pickle_for_fuzz: NULL buffer");
    static const unsigned char empty[1];
    sg_pickle_state_dict d;
    sg_status st = sg_pickle_state_dict_parse(len ? buf : empty, len, "<pickle>", "data.pkl", 8,
                                              &d, err);
    if (st == SG_OK && ntensors)
        *ntensors = d.n;
    sg_pickle_state_dict_free(&d);
    return st;
}
