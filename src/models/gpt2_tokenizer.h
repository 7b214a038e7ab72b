/* GPT-2's byte-level BPE tokenizer (also Whisper's, whose vocabularies are the same kind), as
 * tiktoken runs it: encode_ordinary (text to ids, special tokens spelled out as ordinary text)
 * and decode (ids to bytes). Loads a .tiktoken ranks file or a Hugging Face vocab.json +
 * merges.txt pair. The SNN student's prompts and Whisper's output go through it.
 *
 * py/gpt2_tokenizer_reference.py is the executable specification and
 * tests/fixtures/gpt2_tokenizer/cases.json holds its answers. Where this differs from tiktoken:
 *  - invalid UTF-8 is accepted (tiktoken takes a Python str, which cannot hold it): each byte
 *    that is not part of a valid sequence counts as punctuation ([^\s\p{L}\p{N}]) when the text
 *    is split, and keeps its own byte value, so decode(encode(b)) == b for any bytes b;
 *  - \p{L} and \p{N} follow Debian 12's python3-regex (Unicode 15.0), where tiktoken's Rust
 *    regex has its own Unicode version;
 *  - only <|endoftext|> is known as a special token (Whisper's others belong to Whisper). */
#ifndef SG_MODELS_GPT2_TOKENIZER_H
#define SG_MODELS_GPT2_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct sg_bpe sg_bpe;

/* Loads a tiktoken ranks file: one "<base64 token bytes> <rank>" per line (empty lines are
 * skipped; "=" is the empty token, as in Whisper's multilingual.tiktoken). The ranks must be
 * 0..n-1, each once; the tokens distinct, all 256 single bytes among them. A token's id is its
 * rank, and <|endoftext|> gets id n (50256 for gpt2.tiktoken). Errors: SG_EIO (cannot read),
 * SG_EINVAL (a malformed line, a bad or repeated rank, a repeated token, a missing byte),
 * SG_ETOOBIG (over 256 MB), SG_ENOMEM. */
sg_bpe *sg_bpe_load_tiktoken(const char *path, sg_error *err);
/* Loads Hugging Face's GPT-2 files: vocab.json, an object token -> id whose ids are 0..n-1 and
 * whose tokens are spelled with GPT-2's byte characters (a token with a character outside them,
 * such as an added token with a space, stands for its own UTF-8 text), with an entry for every
 * byte and for <|endoftext|>; and merges.txt, a "#version" line then one "left right" merge per
 * line, highest priority first, both symbols and their concatenation in vocab.json (a repeated
 * merge keeps its later place, as Hugging Face does). Errors as for sg_bpe_load_tiktoken. */
sg_bpe *sg_bpe_load_hf(const char *vocab_json, const char *merges_txt, sg_error *err);
/* dir/vocab.json + dir/merges.txt if both are present, else the first dir/ *.tiktoken in byte
 * order of the names. SG_EIO if there is neither. */
sg_bpe *sg_bpe_load_dir(const char *dir, sg_error *err);
/* A tiktoken vocabulary from memory: tok[id] (len[id] bytes) is the token of rank id, NULL (or
 * empty) for a token whose bytes are unknown (it decodes to nothing and is never produced: a
 * whisper.cpp file's pieces of characters); a repeated token keeps its lowest rank; every
 * single byte must be present; <|endoftext|> gets id n. Errors: SG_EINVAL, SG_ENOMEM. */
sg_bpe *sg_bpe_load_ranks(const uint8_t *const *tok, const size_t *len, int32_t n, sg_error *err);
void sg_bpe_free(sg_bpe *t);

/* Number of ids, special tokens included: 50257 for gpt2.tiktoken. */
int sg_bpe_vocab_size(const sg_bpe *t);
/* The id of <|endoftext|>: 50256 for GPT-2, 50257 for Whisper's multilingual vocabulary. */
int32_t sg_bpe_eot(const sg_bpe *t);

/* Encodes text[0..len) (UTF-8; NUL bytes are text too; text may be NULL when len is 0) without
 * special tokens: "<|endoftext|>" in the text is encoded as ordinary text, as tiktoken's
 * encode_ordinary does. On success *ids is a malloc'ed array of *n ids (NULL when *n is 0) the
 * caller frees. Errors: SG_EINVAL (bad argument), SG_ETOOBIG (len over 2^31 - 2), SG_ENOMEM.
 * The tokenizer is not modified: any number of threads may encode and decode with it at once. */
sg_status sg_bpe_encode(const sg_bpe *t, const char *text, size_t len, int32_t **ids, size_t *n,
                        sg_error *err);
/* Concatenates the bytes of ids[0..n) into *out (malloc'ed, NUL-terminated, *len bytes without
 * the NUL; it may end in, or contain, incomplete UTF-8 sequences). <|endoftext|> decodes to its
 * text. An id outside the vocabulary gives SG_EINVAL; otherwise SG_OK or SG_ENOMEM. */
sg_status sg_bpe_decode(const sg_bpe *t, const int32_t *ids, size_t n, char **out, size_t *len,
                        sg_error *err);
/* The bytes of one token, for streaming output: a pointer into the tokenizer (valid until
 * sg_bpe_free, followed by a NUL) and its length in *len; NULL for an unknown id. */
const char *sg_bpe_token_bytes(const sg_bpe *t, int32_t id, size_t *len);

#endif
