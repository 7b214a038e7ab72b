/* POST /v1/audio/transcriptions and /v1/audio/translations: multipart/form-data in
 * (server/multipart.h), openai/whisper's transcribe() (models/whisper_transcribe.h), OpenAI's
 * response formats out (agent/transcript_format.h). */
#include "server/openai.h"

void sg_handle_v1_transcriptions(sg_req *r)
{
    sg_req_error(r, 503, "MODEL_UNAVAILABLE", "transcriptions: being built");
}
