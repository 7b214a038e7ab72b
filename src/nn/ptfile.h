/* PyTorch checkpoints (torch.save of a state dict, torch >= 1.6): a ZIP archive holding
 * "<stem>/data.pkl", a pickle describing the dict, and one raw little-endian entry
 * "<stem>/data/<key>" per storage. The pickle is never executed: a small bounded pickle machine
 * builds only what a state dict contains (dicts, lists, tuples, strings, numbers, and the few
 * torch globals that rebuild tensors) and refuses everything else. Files are mmapped read-only
 * and validated in full at open (ZIP structure and CRCs, every storage present and large enough,
 * every view's elements inside its storage), so a tensor handed out always addresses bytes that
 * exist. Compressed (DEFLATE) entries are refused: torch writes every entry stored, 64-byte
 * aligned, and tensors here point straight into the mapping. This header is the public face of
 * three files: nn/zip.c (the archive), nn/pickle.c (the machine), ptfile.c (the tensors). */
#ifndef SG_NN_PTFILE_H
#define SG_NN_PTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/safetensors.h" /* sg_dtype, sg_dtype_size, sg_dtype_to_f32 */

/* Limits of this reader (a plain state dict is far below all of them). */
#define SG_PT_MAX_DIMS SG_ST_MAX_DIMS
#define SG_PT_MAX_PICKLE_BYTES (64u << 20) /* size of data.pkl */
#define SG_PT_MAX_OBJECTS (1u << 21)       /* values the pickle may create */
#define SG_PT_MAX_ITEMS (1u << 23)         /* slots in all lists, tuples and dicts together */
#define SG_PT_MAX_STACK (1u << 20)         /* pickle stack depth */
#define SG_PT_MAX_MARKS 256                /* nesting of MARKs */
#define SG_PT_MAX_MEMO (1u << 21)          /* memo entries */
#define SG_PT_MAX_STRING (1u << 20)        /* bytes of one string */
#define SG_PT_MAX_TENSORS (1u << 18)       /* tensors rebuilt */
#define SG_PT_MAX_ENTRIES (1u << 21)       /* ZIP entries */

/* One tensor of an open file: a view (shape, stride and offset in elements) into a storage of
 * storage_bytes little-endian bytes, which may be shared with other tensors and may be larger
 * than the view. Every element the view addresses lies inside the storage, and no stride is
 * negative. name and storage live as long as the file; storage is 64-byte aligned in files torch
 * wrote but any alignment is accepted. */
typedef struct sg_pt_tensor {
    const char *name;
    sg_dtype dtype;
    int ndim; /* 0 for a scalar */
    int64_t shape[SG_PT_MAX_DIMS];
    int64_t stride[SG_PT_MAX_DIMS];
    int64_t offset; /* elements */
    const void *storage;
    size_t storage_bytes;
} sg_pt_tensor;

typedef struct sg_pt_file sg_pt_file;

/* Maps path read-only and validates it. NULL on error: SG_EIO for system errors, SG_EINVAL for a
 * malformed archive or pickle, SG_ETOOBIG for a limit above, SG_EUNSUPPORTED for a valid file
 * this reader does not take (the legacy pre-1.6 format, compressed entries, big-endian data,
 * dtypes outside sg_dtype, quantized or sparse tensors, any global not listed in pickle.c).
 * The top-level object must be a dict (or OrderedDict) with string keys; tensor values become
 * tensors, scalar values (None, bool, int, float, str) are skipped, anything else (a nested
 * dict, a list) is refused. As with any mapping, a file truncated while open faults when read.
 * An open file is immutable: lookups and reads may run from any number of threads. */
sg_pt_file *sg_pt_open(const char *path, sg_error *err);
/* The same over a borrowed buffer, which must outlive the returned file. */
sg_pt_file *sg_pt_open_memory(const void *buf, size_t len, sg_error *err);
void sg_pt_close(sg_pt_file *f);

/* Tensors in the dict's order. */
size_t sg_pt_count(const sg_pt_file *f);
const sg_pt_tensor *sg_pt_at(const sg_pt_file *f, size_t i);
/* Lookup by name (binary search); NULL when absent. */
const sg_pt_tensor *sg_pt_find(const sg_pt_file *f, const char *name);

int64_t sg_pt_numel(const sg_pt_tensor *t);

/* Gathers tensor name, honouring shape, stride and storage offset, converted to f32 into out
 * (room for sg_pt_numel elements, row-major; may be NULL when that is 0), checking its shape
 * first like sg_st_read_f32: shape[0..ndim) is the expected shape, -1 matches any size, shape
 * NULL skips the check. Errors: "tensor 'x' not found in FILE", "FILE: tensor 'x' has shape
 * [a, b], expected [c, *]" (SG_EINVAL). */
sg_status sg_pt_read_f32(const sg_pt_file *f, const char *name, int ndim, const int64_t *shape,
                         float *out, sg_error *err);
/* The same into a malloc'ed buffer the caller frees; NULL on error. */
float *sg_pt_get_f32(const sg_pt_file *f, const char *name, int ndim, const int64_t *shape,
                     sg_error *err);

/* Internal, for fuzz/fuzz_pickle.c only: runs the pickle machine over buf as if it were a
 * data.pkl, with the top-level checks of sg_pt_open but without a ZIP archive (storages are not
 * resolved). *ntensors (may be NULL) gets the number of tensors the dict holds. */
sg_status sg_pt_parse_pickle_for_fuzz(const void *buf, size_t len, size_t *ntensors,
                                      sg_error *err);

#endif
