/* CLIP's text tokenizer: openai's SimpleTokenizer (byte-level BPE over lower-cased, cleaned text),
 * loaded from a Hugging Face model directory's vocab.json + merges.txt. Gives the 77 ids the CLIP
 * text tower takes: <|startoftext|>, the text's tokens, <|endoftext|>.
 *
 * py/clip_tokenizer_reference.py is the executable specification and
 * tests/fixtures/clip_tokenizer/cases.json holds its answers. Where this differs from openai's
 * Python tokenizer, on purpose:
 *  - ftfy.fix_text is replaced by NFC normalisation (ftfy's other repairs of broken text, such as
 *    mojibake, are not done);
 *  - HTML named references: a subset of HTML5's 2231 names is known (all legacy names valid
 *    without ';', the HTML 4.01 names, &apos; and every name whose value is in U+0000..U+00FF);
 *    other names (&bigstar;, &NotEqualTilde;, ...) stay as text. Numeric references behave as
 *    Python's html.unescape, except that Python raises an error for a decimal one with more than
 *    4300 digits while this decodes it by value;
 *  - input must be valid UTF-8 (surrogates and overlong forms included): anything else is refused
 *    with SG_EINVAL, where Python would never see such bytes as text;
 *  - letter/number classes are libunistring's (Unicode 14.0) plus the letters and digits Unicode
 *    15.0 added, matching the tables of Debian 12's python3-regex. */
#ifndef SG_MODELS_CLIP_TOKENIZER_H
#define SG_MODELS_CLIP_TOKENIZER_H

#include <stdint.h>

#include "base/error.h"

/* CLIP's text context: sot + at most 75 tokens + eot. */
#define SG_CLIP_CONTEXT 77
/* Longest text sg_clip_tokenize accepts, in bytes; longer gives SG_ETOOBIG. The whole text is
 * cleaned before the first 75 tokens are taken, at about 16 bytes of memory per input byte. */
#define SG_CLIP_MAX_TEXT_BYTES (1u << 20)

typedef struct sg_clip_tokenizer sg_clip_tokenizer;

/* Loads vocab.json (an object token string -> id) and merges.txt (a "#version" line, then one
 * "a b" merge per line, lowest rank first; as openai and Hugging Face do, only the first 48894
 * are used). Every merge's two symbols and their concatenation must be in the vocabulary, as must
 * the 512 byte symbols (with and without "</w>"), <|startoftext|> and <|endoftext|>. Errors:
 * SG_EIO (cannot read a file), SG_EINVAL (malformed JSON, a bad merges line, a missing token),
 * SG_ENOMEM. */
sg_clip_tokenizer *sg_clip_tokenizer_load(const char *vocab_json_path, const char *merges_txt_path,
                                          sg_error *err);
/* The same from dir/vocab.json and dir/merges.txt. */
sg_clip_tokenizer *sg_clip_tokenizer_load_dir(const char *dir, sg_error *err);
void sg_clip_tokenizer_free(sg_clip_tokenizer *t);

/* Tokenizes NUL-terminated UTF-8 text into ids[0..ctx): sot, the text's tokens, eot. ctx must be
 * at least 2 (CLIP uses SG_CLIP_CONTEXT); text with more than ctx - 2 tokens is truncated to its
 * first ctx - 2 and eot is still last. Returns the number of ids written (2..ctx; the caller pads
 * the rest, CLIP with zeros) or -1 with err set: SG_EINVAL (bad argument, invalid UTF-8),
 * SG_ETOOBIG, SG_ENOMEM. The tokenizer is not modified: any number of threads may tokenize with
 * it at once. */
int sg_clip_tokenize(const sg_clip_tokenizer *t, const char *utf8_text, int32_t *ids, int ctx,
                     sg_error *err);

int32_t sg_clip_tokenizer_sot(const sg_clip_tokenizer *t);
int32_t sg_clip_tokenizer_eot(const sg_clip_tokenizer *t);
/* Number of entries in vocab.json (49408 for CLIP). */
int sg_clip_tokenizer_vocab_size(const sg_clip_tokenizer *t);

#endif
