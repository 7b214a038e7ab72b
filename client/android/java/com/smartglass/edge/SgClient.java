package com.smartglass.edge;

/** Loads libsgclient_jni.so once (on Android: from the APK's lib/ABI/; here: -Djava.library.path). */
final class SgClient {
    private static boolean loaded;

    private SgClient() {}

    static synchronized void load() {
        if (!loaded) {
            System.loadLibrary("sgclient_jni");
            loaded = true;
        }
    }

    static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    static String text(byte[] b) {
        return b == null ? null : new String(b, java.nio.charset.StandardCharsets.UTF_8);
    }
}
