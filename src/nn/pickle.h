/* The pickle machine of nn/ptfile (its second stage): runs a torch.save data.pkl without ever
 * calling or importing anything and returns the state dict it describes, as tensor views over
 * storages named by key. It knows the opcodes of protocols 2-5 a state dict uses and a fixed list
 * of globals (pickle.c), is bounded by the SG_PT_MAX_* limits of ptfile.h, and checks every view
 * against its storage's declared size; binding storages to archive entries is ptfile.c's job. */
#ifndef SG_NN_PICKLE_H
#define SG_NN_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/ptfile.h" /* SG_PT_MAX_* limits, sg_dtype */

/* Longest storage key accepted (torch's are decimal numbers). */
#define SG_PICKLE_MAX_KEY 64

/* A storage as the pickle declares it: its entry is "<stem>/data/<key>". */
typedef struct sg_pickle_storage {
    sg_dtype dtype;
    const unsigned char *key; /* into the pickle, 1..SG_PICKLE_MAX_KEY bytes, no NUL */
    size_t key_len;
    uint64_t numel; /* declared elements */
} sg_pickle_storage;

/* A view (elements, no negative stride) that lies inside its storage's declared elements. */
typedef struct sg_pickle_tensor {
    uint32_t storage; /* index into the storages */
    int ndim;
    int64_t offset;
    int64_t shape[SG_PT_MAX_DIMS], stride[SG_PT_MAX_DIMS];
    size_t op_off; /* of the REDUCE that built it, for messages */
} sg_pickle_tensor;

/* One (name, tensor) pair of the top-level dict. */
typedef struct sg_pickle_item {
    const unsigned char *name; /* into the pickle, valid UTF-8 without NUL, unique */
    size_t name_len;
    uint32_t tensor; /* index into the tensors */
} sg_pickle_item;

typedef struct sg_pickle_state_dict {
    sg_pickle_storage *storages; /* every storage the pickle names, used or not */
    uint32_t nstorages;
    sg_pickle_tensor *tensors; /* every tensor rebuilt, named or not */
    uint32_t ntensors;
    sg_pickle_item *items; /* the dict's tensor values in its order (scalars skipped) */
    size_t n;
} sg_pickle_state_dict;

/* Runs the pickle buf[0..len) (entry what[0..what_len) of the file label, both for messages) to
 * its STOP and reads the result as a state dict: a dict (or OrderedDict) with string keys whose
 * tensor values become items, scalar values (None, bool, int, float, str) skipped, anything else
 * refused. Messages: "LABEL: WHAT: reason at offset N" while running, "LABEL: reason" after.
 * Errors: SG_EINVAL malformed, SG_EUNSUPPORTED a foreign global, opcode or tensor kind,
 * SG_ETOOBIG over a limit, SG_ENOMEM. On error *d is empty; on success free it. */
sg_status sg_pickle_state_dict_parse(const unsigned char *buf, size_t len, const char *label,
                                     const char *what, size_t what_len,
                                     sg_pickle_state_dict *d, sg_error *err);
void sg_pickle_state_dict_free(sg_pickle_state_dict *d);

#endif
