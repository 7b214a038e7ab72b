/* Shared by the OpenAI routes (openai.c: errors, models, chat parsing, embeddings, speech;
 * openai_chat.c: the chat work; openai_audio.c: transcriptions). Not a public interface. */
#ifndef SG_SERVER_OPENAI_H
#define SG_SERVER_OPENAI_H

#include <jansson.h>
#include <stdbool.h>

#include "server/internal.h"

/* The model id of the rule-based responder (always listed: it answers without a language model). */
#define SG_V1_RULE_BASED "rule-based"
#define SG_V1_MAX_MESSAGES 256      /* messages in one chat request */
#define SG_V1_MAX_EMBED_INPUTS 256  /* inputs in one embeddings request */

typedef enum sg_v1_kind { SG_V1_CHAT, SG_V1_TRANSCRIBE, SG_V1_SPEECH, SG_V1_EMBED } sg_v1_kind;

/* The backend the request's "model" names for this kind of work: one of ours by the id GET
 * /v1/models lists, or (absent, or one of OpenAI's names for the kind: "whisper-1", "tts-1", ...)
 * the server's default one. *backend NULL for chat = the rule-based responder. false after the
 * error response: 404 for a model we do not have, 400 for one of another kind, 503 when the kind
 * has no model loaded. */
bool sg_v1_pick_model(sg_req *r, json_t *model, sg_v1_kind kind, const void **backend);

/* Each route's request parsing, on the HTTP thread (also what fuzz/fuzz_v1.c drives): fills r->in
 * and returns true, or sets the error response and returns false. */
bool sg_v1_chat_parse(sg_req *r);
bool sg_v1_embeddings_parse(sg_req *r);
bool sg_v1_speech_parse(sg_req *r);
bool sg_v1_transcription_parse(sg_req *r);

/* The chat completion's work on the queue (openai_chat.c). */
void sg_v1_work_chat(sg_req *r);

#endif
