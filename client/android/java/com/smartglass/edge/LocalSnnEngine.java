package com.smartglass.edge;

/**
 * The on-device language model: the SNN student of smartglass-edge (libsgclient's sg_local_llm_*),
 * loaded from the int8 directory {@code sg quantize} writes (or an f32 one). Greedy decoding: the
 * same tokens as the server's model on the same file. {@link #generate} runs on the calling thread
 * (not the UI thread: the real model takes tens of ms per token); {@link #cancel} may be called
 * from any thread; {@link #close} waits for a running generation.
 */
public final class LocalSnnEngine implements AutoCloseable {
    /** Hears the answer as it is made: each piece valid text; return false to stop. */
    public interface TokenListener {
        boolean onToken(String piece);
    }

    public static final int PRECISION_AUTO = 0, PRECISION_F32 = 1, PRECISION_INT8 = 2;
    /** sg_client_status values generate() reports through {@link #lastStatus}. */
    public static final int STATUS_OK = 0, STATUS_ABANDONED = 3, STATUS_CANCELLED = 11;
    /** Where {@link #offlineAnswer} got its answer. */
    public static final int SOURCE_RULES = 0, SOURCE_LOCAL_LLM = 1;

    private final Object cancelLock = new Object();
    private volatile long handle;
    private int lastStatus;

    static {
        SgClient.load();
    }

    public LocalSnnEngine(String modelDir) throws SgClientException {
        this(modelDir, PRECISION_AUTO, 0);
    }

    /** threads: the caller's included; 0 = one per core, at most 4. */
    public LocalSnnEngine(String modelDir, int precision, int threads) throws SgClientException {
        handle = nativeOpen(SgClient.utf8(modelDir), precision, threads);
    }

    /** The answer to "{system}\n\n{prompt}" (system may be null): maxTokens tokens. Cut short by
     * cancel() (lastStatus() STATUS_CANCELLED) or the listener (STATUS_ABANDONED): what was made. */
    public synchronized String generate(String system, String prompt, int maxTokens,
                                        TokenListener listener) throws SgClientException {
        long h = live();
        int[] st = new int[2];
        byte[] out = nativeGenerate(h, SgClient.utf8(system), SgClient.utf8(prompt), maxTokens,
                                    listener, st);
        lastStatus = st[0];
        return SgClient.text(out);
    }

    public synchronized int lastStatus() {
        return lastStatus;
    }

    /** Token ids of the last generation. */
    public synchronized int[] lastTokens() throws SgClientException {
        return nativeLastTokens(live());
    }

    /** {vocab, dim, depth, heads, int8 (0/1), prequantized (0/1)} */
    public int[] info() throws SgClientException {
        return nativeInfo(live());
    }

    /** Stops the generation running now (it returns with STATUS_CANCELLED). Any thread. */
    public void cancel() {
        synchronized (cancelLock) {
            if (handle != 0)
                nativeCancel(handle);
        }
    }

    @Override
    public synchronized void close() {
        synchronized (cancelLock) {
            long h = handle;
            handle = 0;
            if (h != 0)
                nativeClose(h);
        }
    }

    /**
     * A question answered without the server: the engine (may be null) for open questions and
     * questions about the scene the server last described (its "visual_context"; may be null), the
     * rule-based responder for the time, help, reminders and navigation, or for everything when
     * engine is null. source (may be null, else length 1) gets SOURCE_RULES or SOURCE_LOCAL_LLM.
     */
    public static String offlineAnswer(LocalSnnEngine engine, String scene, String question,
                                       int maxTokens, int[] source) throws SgClientException {
        int[] st = new int[2];
        byte[] out;
        if (engine == null) {
            out = nativeOfflineAnswer(0, SgClient.utf8(scene), SgClient.utf8(question), maxTokens, null, st);
        } else {
            synchronized (engine) {
                out = nativeOfflineAnswer(engine.live(), SgClient.utf8(scene), SgClient.utf8(question),
                                          maxTokens, null, st);
                engine.lastStatus = st[0];
            }
        }
        if (source != null && source.length > 0)
            source[0] = st[1];
        return SgClient.text(out);
    }

    /** libsgclient's version, e.g. "1.3.0". */
    public static String version() {
        return nativeVersion();
    }

    private long live() throws SgClientException {
        long h = handle;
        if (h == 0)
            throw new SgClientException(4, "einval", "the engine is closed");
        return h;
    }

    /* called from the native generation for each piece */
    private static boolean deliver(TokenListener l, byte[] piece) {
        return l == null || l.onToken(SgClient.text(piece));
    }

    private static native long nativeOpen(byte[] dir, int precision, int threads) throws SgClientException;
    private native byte[] nativeGenerate(long h, byte[] system, byte[] prompt, int maxTokens,
                                         TokenListener l, int[] status) throws SgClientException;
    private static native byte[] nativeOfflineAnswer(long h, byte[] scene, byte[] question, int maxTokens,
                                                     TokenListener l, int[] status) throws SgClientException;
    private static native int[] nativeLastTokens(long h);
    private static native int[] nativeInfo(long h);
    private static native void nativeCancel(long h);
    private static native void nativeClose(long h);
    private static native String nativeVersion();
}
