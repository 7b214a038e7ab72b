/* The OCR backend over Tesseract 5 (Debian's libtesseract5, LSTM engine, tessdata from
 * tesseract-ocr-<lang>): the regions agent/ocr.c finds and prepares, each read as one block of
 * text, lines with boxes and confidences.
 *
 * A Tesseract engine is not thread-safe and takes 100+ ms to initialise, so the backend keeps a
 * small pool: the first engine is made at open (which also proves the language data loads), the
 * others when concurrent reads first need them; a read holds one engine for its frame.
 *
 * Tesseract runs OpenMP threads of its own unless OMP_THREAD_LIMIT=1 is in the environment before
 * the first engine starts; they would fight the server's workers, so the programs (sg-edge, sg)
 * set it at start-up (sg_ocr_tesseract_thread_env below), before any thread exists. */
#ifndef SG_AGENT_OCR_TESSERACT_H
#define SG_AGENT_OCR_TESSERACT_H

#include "agent/backends.h"
#include "agent/ocr.h"

typedef struct sg_ocr_tesseract sg_ocr_tesseract;

typedef struct sg_ocr_tesseract_options {
    const char *lang;     /* Tesseract languages, "eng" (default) or e.g. "eng+deu" */
    const char *tessdata; /* the tessdata directory; NULL: Debian's (/usr/share/tesseract-ocr/5/
                             tessdata), then TESSDATA_PREFIX */
    int engines;          /* engines at most (concurrent reads); <= 0: 2 */
} sg_ocr_tesseract_options;

/* Opens the backend. SG_EUNSUPPORTED with a message naming the missing file and the Debian
 * package when the language data is not installed; SG_EINVAL for a malformed language list. */
sg_ocr_tesseract *sg_ocr_tesseract_open(const sg_ocr_tesseract_options *o, sg_error *err);
sg_ocr_backend *sg_ocr_tesseract_backend(sg_ocr_tesseract *t);
void sg_ocr_tesseract_free(sg_ocr_tesseract *t);

/* Sets OMP_THREAD_LIMIT=1 unless the environment already sets it. Call from main() before any
 * thread starts (setenv is not thread-safe). */
void sg_ocr_tesseract_thread_env(void);

/* The whole pipeline on one full-size image, for callers without a describer pass of their own
 * (the CLI, tests): the backend's read with regions = NULL. */
sg_status sg_ocr_read_image(sg_ocr_backend *b, const sg_image *img, sg_ocr_result *out,
                            sg_error *err);

#endif
