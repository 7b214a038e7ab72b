/* safetensors weight files (Hugging Face's format): an 8-byte little-endian header length, a JSON
 * header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the raw
 * little-endian tensor data. Files are mmapped read-only and validated in full at open, as the
 * format's reference implementation does (tensors must tile the data section exactly), so a
 * tensor handed out always points at bytes that exist. A writer produces the same format for
 * quantized models and test fixtures. */
#ifndef SG_NN_SAFETENSORS_H
#define SG_NN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Largest JSON header accepted (the reference implementation's limit). */
#define SG_ST_MAX_HEADER_BYTES 100000000u
/* Most dimensions a tensor may have (a limit of this reader, not of the format). */
#define SG_ST_MAX_DIMS 8

typedef enum sg_dtype {
    SG_DT_F32,
    SG_DT_F16,
    SG_DT_BF16,
    SG_DT_F64,
    SG_DT_I8,
    SG_DT_U8,
    SG_DT_I16,
    SG_DT_I32,
    SG_DT_I64,
    SG_DT_BOOL
} sg_dtype;

/* One tensor of an open file. name and data live as long as the file; data is the raw
 * little-endian bytes and may be unaligned (offsets in the format are arbitrary). */
typedef struct sg_st_tensor {
    const char *name;
    sg_dtype dtype;
    int ndim;                       /* 0 for a scalar */
    int64_t shape[SG_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} sg_st_tensor;

typedef struct sg_st_file sg_st_file;

/* Maps path read-only and validates it. NULL on error (SG_EIO for system errors, SG_EINVAL for a
 * malformed file, SG_ETOOBIG for a header over the limit, SG_EUNSUPPORTED for a valid file this
 * reader cannot represent: F8/U16/U32/U64/... dtypes or more than SG_ST_MAX_DIMS dims). As with
 * any mapping, a file truncated by another process while open faults (SIGBUS) when read; replace
 * weight files by rename, as sg_st_write does. An open file is immutable: lookups and reads may
 * run from any number of threads. */
sg_st_file *sg_st_open(const char *path, sg_error *err);
/* The same over a borrowed buffer, which must outlive the returned file. */
sg_st_file *sg_st_open_memory(const void *buf, size_t len, sg_error *err);
void sg_st_close(sg_st_file *f);

/* Tensors in data-offset order (the order of their bytes in the file). */
size_t sg_st_count(const sg_st_file *f);
const sg_st_tensor *sg_st_at(const sg_st_file *f, size_t i);
/* Hashed lookup; NULL when absent. */
const sg_st_tensor *sg_st_find(const sg_st_file *f, const char *name);
/* A "__metadata__" value, or NULL. */
const char *sg_st_metadata(const sg_st_file *f, const char *key);

size_t sg_dtype_size(sg_dtype t);
/* The format's name ("F32", "BF16", ...); "?" for a value outside the enum. */
const char *sg_dtype_name(sg_dtype t);

int64_t sg_st_numel(const sg_st_tensor *t);

/* Converts n elements of dtype t at src (any alignment, little-endian) to f32. Exact for F16,
 * BF16 (subnormals, infinities and NaNs included), I8, U8, I16, BOOL (nonzero -> 1); F64, I32
 * and I64 round to the nearest float (F64 beyond the float range becomes +-inf). */
void sg_dtype_to_f32(sg_dtype t, const void *src, size_t n, float *dst);

/* Converts tensor name to f32 into out (room for sg_st_numel elements; may be NULL when that is
 * 0), checking its shape first: shape[0..ndim) is the expected shape, where -1 matches any size;
 * shape NULL skips the check. Errors: "tensor 'x' not found in FILE", "FILE: tensor 'x' has shape
 * [a, b], expected [c, *]" (SG_EINVAL). */
sg_status sg_st_read_f32(const sg_st_file *f, const char *name, int ndim, const int64_t *shape,
                         float *out, sg_error *err);
/* Tells the kernel a mapped tensor's bytes will not be read again, so a loader that converts
 * weights at load does not keep the whole file resident (a no-op for memory buffers). The data
 * stays readable: a later read faults the pages back in from the file. */
void sg_st_release(const sg_st_file *f, const sg_st_tensor *t);

/* The same into a malloc'ed buffer the caller frees; NULL on error. */
float *sg_st_get_f32(const sg_st_file *f, const char *name, int ndim, const int64_t *shape,
                     sg_error *err);

/* A tensor to write: data holds numel * sg_dtype_size(dtype) little-endian bytes. */
typedef struct sg_st_out {
    const char *name;
    sg_dtype dtype;
    int ndim;
    int64_t shape[SG_ST_MAX_DIMS];
    const void *data;
} sg_st_out;

/* Writes tensors (data in the given order, header padded so the data section starts 8-aligned)
 * and optional metadata (NULL-terminated key, value, key, value, ..., NULL) to path. The file is
 * written under a temporary name in the same directory and renamed into place, so path never
 * holds a partial file. Names must be unique valid UTF-8 and not "__metadata__". */
sg_status sg_st_write(const char *path, const sg_st_out *tensors, size_t n,
                      const char *const *metadata_kv, sg_error *err);

#endif
