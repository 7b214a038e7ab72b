package com.smartglass.edge;

/**
 * The HTTP client of libsgclient (sg_client: libcurl, retries with backoff, keep-alive / HTTP/2):
 * sessions, frames, audio chunks and questions to sg-edge. Thread-safe (requests from several
 * threads share its connections). Requests block: call them off the UI thread.
 */
public final class UploadClient implements AutoCloseable {
    /** What one request did (sg_client_result). */
    public static final class Response {
        /** sg_client_status: 0 OK, 1 FAILED (4xx), 2 GAVE_UP (no response / 5xx after the retries). */
        public final int outcome;
        /** The last HTTP status; 0 = no response at all (the link is down: answer offline). */
        public final int httpStatus;
        public final int attempts;
        /** The error body's "error" code (e.g. "INVALID_SESSION"), "" when none. */
        public final String error;
        public final String detail;
        /** The last response body (JSON), or null. */
        public final String body;

        Response(int outcome, int httpStatus, int attempts, String error, byte[] detail, byte[] body) {
            this.outcome = outcome;
            this.httpStatus = httpStatus;
            this.attempts = attempts;
            this.error = error;
            this.detail = SgClient.text(detail);
            this.body = SgClient.text(body);
        }

        public boolean ok() { return outcome == 0; }
        /** No response at all: the server cannot be reached. */
        public boolean linkDown() { return outcome != 0 && httpStatus == 0; }
    }

    private volatile long handle;

    static {
        SgClient.load();
    }

    /** baseUrl "http://host:port"; apiKey null = none; timeoutMs per attempt, 0 = 30 s. */
    public UploadClient(String baseUrl, String apiKey, long timeoutMs) throws SgClientException {
        handle = nativeNew(SgClient.utf8(baseUrl), SgClient.utf8(apiKey), timeoutMs);
    }

    /** POST /sessions; the id is in sessionId[0] (empty when it failed). */
    public Response createSession(String[] sessionId) {
        return nativeCreateSession(live(), sessionId);
    }

    public Response uploadFrame(String sessionId, byte[] jpeg, boolean clientKeyframe) {
        return nativeRequest(live(), 0, SgClient.utf8(sessionId), jpeg, clientKeyframe);
    }

    public Response uploadAudio(String sessionId, byte[] audioFile) {
        return nativeRequest(live(), 1, SgClient.utf8(sessionId), audioFile, false);
    }

    public Response query(String sessionId, String text) {
        return nativeRequest(live(), 2, SgClient.utf8(sessionId), SgClient.utf8(text), false);
    }

    public Response deleteSession(String sessionId) {
        return nativeRequest(live(), 3, SgClient.utf8(sessionId), null, false);
    }

    @Override
    public synchronized void close() {
        long h = handle;
        handle = 0;
        if (h != 0)
            nativeFree(h);
    }

    private long live() {
        long h = handle;
        if (h == 0)
            throw new IllegalStateException("UploadClient is closed");
        return h;
    }

    /** Packed RGB (width*height*3 bytes) as a JPEG at quality 1..100 (TurboJPEG, 4:2:0). */
    public static native byte[] encodeJpeg(byte[] rgb, int width, int height, int quality) throws SgClientException;

    private static native long nativeNew(byte[] base, byte[] key, long timeoutMs) throws SgClientException;
    private static native void nativeFree(long h);
    private static native Response nativeCreateSession(long h, String[] sid);
    private static native Response nativeRequest(long h, int what, byte[] sid, byte[] data, boolean hint);
}
