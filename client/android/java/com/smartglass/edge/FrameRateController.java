package com.smartglass.edge;

/**
 * The adaptive frame rate of the guide (libsgclient's sg_rate_controller): battery and the user's
 * activity choose a mode (MINIMAL 1 fps, LOW 5, MEDIUM 10, HIGH 30), motion boosts it; onFrame is
 * asked for every camera frame and says whether to capture it. Not thread-safe (one camera thread).
 */
public final class FrameRateController implements AutoCloseable {
    public static final int MINIMAL = 0, LOW = 1, MEDIUM = 2, HIGH = 3;

    private long handle;
    private final double[] last = new double[5];

    static {
        SgClient.load();
    }

    public FrameRateController() throws SgClientException {
        handle = nativeNew();
    }

    /** The user touched, spoke or asked something at nowMs (any monotonic clock in ms). */
    public void onInteraction(double nowMs) {
        nativeInteraction(live(), nowMs);
    }

    /** mode >= 0 forces it (a HIGH burst); -1 gives the choice back to the table. */
    public void forceMode(int mode) {
        nativeForceMode(live(), mode);
    }

    /** Every camera frame: true to capture it. motion: 0..1 (sg_motion_score), 0 when unknown. */
    public boolean onFrame(double nowMs, double batteryPct, double motion) {
        nativeOnFrame(live(), nowMs, batteryPct, motion, last);
        return last[0] != 0;
    }

    /** The last onFrame's mode, target fps, user activity and motion boost. */
    public int lastMode() { return (int) last[1]; }
    public double lastTargetFps() { return last[2]; }
    public boolean lastUserActive() { return last[3] != 0; }
    public boolean lastBoosted() { return last[4] != 0; }

    /** {camera frames seen, frames captured} */
    public long[] stats() {
        return nativeStats(live());
    }

    @Override
    public void close() {
        if (handle != 0)
            nativeFree(handle);
        handle = 0;
    }

    private long live() {
        if (handle == 0)
            throw new IllegalStateException("FrameRateController is closed");
        return handle;
    }

    /** The guide's table: battery < 15 % MINIMAL, < 30 % LOW, < 60 % and idle LOW, else MEDIUM. */
    public static native int modeFor(double batteryPct, boolean userActive);
    public static native int modeFps(int mode);
    public static native String modeName(int mode);

    private static native long nativeNew() throws SgClientException;
    private static native void nativeFree(long h);
    private static native void nativeInteraction(long h, double nowMs);
    private static native void nativeForceMode(long h, int mode);
    private static native void nativeOnFrame(long h, double nowMs, double battery, double motion, double[] out);
    private static native long[] nativeStats(long h);
}
