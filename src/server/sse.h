/* Server-Sent Events for a request whose answer streams (Accept: text/event-stream): a bounded
 * buffer between the worker that makes the events and libmicrohttpd's thread that sends them.
 *
 * The request is suspended when its work is queued (as every queued request). The first event
 * resumes it, and the HTTP thread answers 200 with a callback response that reads this buffer;
 * when the buffer is empty the reader suspends the connection and the next event (or the end)
 * resumes it. An error before the first event is an ordinary JSON error response; after it, an
 * `error` event.
 *
 * Bounds: at most SG_SSE_BUFFER_BYTES wait for a client (or one event, when it is larger: an
 * event is bounded by what makes it, the speech budget for audio); an event that would pass that waits
 * up to SG_SSE_STALL_MS for the client to read, then the stream is given up (the worker's turn is
 * told to stop, and the connection ends at the server's idle timeout). A client that goes away
 * stops the turn at its next event.
 *
 * The request (sg_req) normally ends when libmicrohttpd completes the connection. A streamed
 * request may complete while its worker still runs (the client went away): then the last of the
 * two (sg_sse_request_completed, sg_sse_job_done) frees it. */
#ifndef SG_SERVER_SSE_H
#define SG_SERVER_SSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>


typedef struct sg_sse sg_sse;

/* max_buffered: bytes that may wait for the client (SG_SSE_BUFFER_BYTES, 4 MiB); stall_ms: how
 * long an event that would pass it waits (SG_SSE_STALL_MS, 10 s). NULL when out of memory. The
 * request holds the first reference. */
sg_sse *sg_sse_new(struct MHD_Connection *conn, size_t max_buffered, int stall_ms);
/* Drops a reference (the request's, or the response's through libmicrohttpd). */
void sg_sse_unref(sg_sse *s);

/* The worker: appends "event: name\ndata: <data as compact JSON>\n\n". The first event resumes
 * the suspended request so that it answers with the stream. false: the client is gone or does not
 * read (the turn should stop); the event was not sent. */
bool sg_sse_event(sg_sse *s, const char *name, json_t *data);
/* The same without an event line: "data: payload\n\n" (OpenAI's streams: JSON chunks, then
 * "[DONE]"). payload must hold no CR or LF (false). */
bool sg_sse_data(sg_sse *s, const char *payload);
/* Whether an event has gone into the stream (the response is the stream, not a JSON body). */
bool sg_sse_started(sg_sse *s);
/* Whether the client is gone or the stream was given up. */
bool sg_sse_broken(sg_sse *s);
/* The worker is done: no more events; a reader waiting for one is resumed to end the stream.
 * Returns true when the request already completed (the caller frees it). */
bool sg_sse_job_done(sg_sse *s);

/* The HTTP thread: the 200 response that streams the buffer (NULL when out of memory). */
struct MHD_Response *sg_sse_response(sg_sse *s);
/* libmicrohttpd completed the request: returns true when the job is done (free the request now),
 * false when the worker still runs (it frees it, see sg_sse_job_done). */
bool sg_sse_request_completed(sg_sse *s);

#endif
