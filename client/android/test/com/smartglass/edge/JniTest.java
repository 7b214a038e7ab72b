package com.smartglass.edge;

import java.io.File;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * The JNI binding's test (no JUnit): run by ctest as
 * {@code java -Djava.library.path=BUILD -cp CLASSES com.smartglass.edge.JniTest SG_EDGE_BIN}
 * from the project root. FrameRateController gives the guide's rates; LocalSnnEngine generates on
 * the tiny SNN fixture (the text equals the pieces the listener heard, int8 and f32, the same
 * tokens twice), a cancel from another thread stops a long generation, a bad directory throws
 * with the C library's status; UploadClient talks to a real sg-edge (started here) and, once it is
 * stopped, reports the link down, where offlineAnswer answers. Exits 1 on any failure.
 */
public final class JniTest {
    private static int passed, failed;

    private static void check(boolean ok, String what) {
        if (ok) {
            passed++;
        } else {
            failed++;
            System.err.println("CHECK failed: " + what);
        }
    }

    private static void frameRate() throws Exception {
        check(FrameRateController.modeFor(10, true) == FrameRateController.MINIMAL, "battery 10 -> MINIMAL");
        check(FrameRateController.modeFor(25, true) == FrameRateController.LOW, "battery 25 -> LOW");
        check(FrameRateController.modeFor(50, false) == FrameRateController.LOW, "50 idle -> LOW");
        check(FrameRateController.modeFor(50, true) == FrameRateController.MEDIUM, "50 active -> MEDIUM");
        check(FrameRateController.modeFps(FrameRateController.HIGH) == 30, "HIGH 30 fps");
        check("MEDIUM".equals(FrameRateController.modeName(FrameRateController.MEDIUM)), "mode name");
        try (FrameRateController rc = new FrameRateController()) {
            int captured = 0;
            for (int i = 0; i < 300; i++) /* 10 s of camera at 30 fps, battery 100, idle */
                captured += rc.onFrame(i * 1000.0 / 30, 100, 0) ? 1 : 0;
            check(rc.lastMode() == FrameRateController.MEDIUM && rc.lastTargetFps() == 10, "MEDIUM 10 fps");
            check(captured == 100, "100 of 300 frames at 10 fps, got " + captured);
            long[] st = rc.stats();
            check(st[0] == 300 && st[1] == 100, "stats");
            captured = 0;
            for (int i = 300; i < 600; i++)
                captured += rc.onFrame(i * 1000.0 / 30, 10, 0) ? 1 : 0;
            check(captured == 10 && rc.lastMode() == FrameRateController.MINIMAL, "battery 10: 1 fps, got " + captured);
            rc.onInteraction(20000);
            rc.onFrame(20001, 100, 0);
            check(rc.lastUserActive(), "an interaction makes the user active");
        }
    }

    private static void localModel(String dir) throws Exception {
        check(LocalSnnEngine.version().startsWith("1.3"), "version " + LocalSnnEngine.version());
        for (int precision : new int[] {LocalSnnEngine.PRECISION_INT8, LocalSnnEngine.PRECISION_F32}) {
            try (LocalSnnEngine m = new LocalSnnEngine(dir, precision, 2)) {
                int[] info = m.info();
                check(info[0] == 3584 && info[1] == 32 && info[4] == (precision == LocalSnnEngine.PRECISION_INT8 ? 1 : 0), "info");
                StringBuilder heard = new StringBuilder();
                String a = m.generate(null, "The glasses see a", 24, p -> { heard.append(p); return true; });
                check(m.lastStatus() == LocalSnnEngine.STATUS_OK, "status ok");
                check(a.length() > 0 && a.equals(heard.toString()), "text = the pieces: '" + a + "'");
                int[] t1 = m.lastTokens();
                String b = m.generate(null, "The glasses see a", 24, null);
                check(a.equals(b) && java.util.Arrays.equals(t1, m.lastTokens()) && t1.length == 24, "deterministic, 24 tokens");
                System.out.println((precision == LocalSnnEngine.PRECISION_INT8 ? "int8" : "f32") + ": '" + a + "'");
            }
        }
        /* cancel from another thread, in step with the listener (no timing) */
        try (LocalSnnEngine m = new LocalSnnEngine(dir)) {
            CountDownLatch third = new CountDownLatch(1), cancelled = new CountDownLatch(1);
            int[] n = {0};
            Thread t = new Thread(() -> {
                try {
                    third.await();
                } catch (InterruptedException e) {
                    return;
                }
                m.cancel();
                cancelled.countDown();
            });
            t.start();
            String text = m.generate(null, "hello", 1000, p -> {
                if (++n[0] == 3) {
                    third.countDown();
                    try {
                        cancelled.await();
                    } catch (InterruptedException e) {
                        return false;
                    }
                }
                return true;
            });
            t.join();
            check(m.lastStatus() == LocalSnnEngine.STATUS_CANCELLED, "cancelled: status " + m.lastStatus());
            check(m.lastTokens().length < 10 && text != null, "stopped early: " + m.lastTokens().length + " tokens");
            m.generate(null, "hello", 5, p -> false);
            check(m.lastStatus() == LocalSnnEngine.STATUS_ABANDONED, "the listener stops it");
            int[] src = {-1};
            String off = LocalSnnEngine.offlineAnswer(m, "A red mug on a desk.", "What am I looking at?", 8, src);
            check(src[0] == LocalSnnEngine.SOURCE_LOCAL_LLM && !off.isEmpty(), "offline answer from the model");
        }
        try {
            new LocalSnnEngine("tests/fixtures/no_such_model").close();
            check(false, "a bad directory must throw");
        } catch (SgClientException e) {
            check(e.statusName.equals("eformat") && e.getMessage().contains("no_such_model"), "bad dir: " + e.getMessage());
        }
        LocalSnnEngine closed = new LocalSnnEngine(dir);
        closed.close();
        closed.cancel(); /* harmless */
        try {
            closed.generate(null, "hi", 2, null);
            check(false, "closed engine must throw");
        } catch (SgClientException e) {
            check(e.statusName.equals("einval"), "closed: " + e.getMessage());
        }
    }

    private static void upload(String edgeBin) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        ProcessBuilder pb = new ProcessBuilder(edgeBin, "--host", "127.0.0.1", "--port", String.valueOf(port),
                                               "--log-level", "warn");
        pb.environment().put("SG_LATENCY_BUDGET_MS", "0");
        pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        Process edge = pb.start();
        try (UploadClient c = new UploadClient("http://127.0.0.1:" + port, null, 5000)) {
            String[] sid = {""};
            UploadClient.Response r = null;
            for (int i = 0; i < 600 && (r == null || !r.ok()); i++) { /* until it listens (<= 60 s) */
                if (r != null)
                    Thread.sleep(100);
                r = c.createSession(sid);
            }
            check(r.ok() && r.httpStatus == 200 && sid[0].length() > 0, "session " + sid[0]);
            byte[] rgb = new byte[64 * 48 * 3];
            for (int i = 0; i < rgb.length; i++)
                rgb[i] = (byte) (i * 7);
            byte[] jpeg = UploadClient.encodeJpeg(rgb, 64, 48, 80);
            check(jpeg.length > 100 && (jpeg[0] & 0xff) == 0xff && (jpeg[1] & 0xff) == 0xd8, "JPEG");
            r = c.uploadFrame(sid[0], jpeg, true);
            check(r.ok() && r.body != null && r.body.contains("keyframe"), "frame: " + r.httpStatus + " " + r.body);
            r = c.query(sid[0], "What am I looking at?");
            check(r.ok() && r.body.contains("\"response\""), "query: " + r.httpStatus);
            r = c.query("00000000-0000-4000-8000-000000000000", "hi");
            check(r.outcome == 1 && r.httpStatus == 404 && r.error.equals("INVALID_SESSION"), "unknown session: " + r.error);
            edge.destroy();
            edge.waitFor();
            r = c.query(sid[0], "What time is it?");
            check(r.linkDown(), "server stopped: link down (" + r.outcome + ", " + r.httpStatus + ")");
            int[] src = {-1};
            String a = LocalSnnEngine.offlineAnswer(null, "a red mug", "What time is it?", 8, src);
            check(src[0] == LocalSnnEngine.SOURCE_RULES && !a.isEmpty(), "offline rules answer: " + a);
            System.out.println("offline: " + a);
        } finally {
            edge.destroy();
            edge.waitFor();
        }
    }

    public static void main(String[] args) throws Exception {
        String edge = args.length > 0 ? args[0] : "build/sg-edge";
        frameRate();
        localModel("tests/fixtures/snn_tiny");
        if (new File(edge).canExecute())
            upload(edge);
        else
            check(false, "no sg-edge at " + edge);
        System.out.println("JniTest: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
