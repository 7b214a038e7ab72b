"""Malformed HTTP/1.1 through the cluster's nginx: every request that makes libmicrohttpd answer
with its own HTML error page when sent to sg-edge directly (docs/ARCHITECTURE.md "The HTTP edge")
must get a JSON {"detail","error"} answer through nginx (or, where HTTP allows no answer, a closed
connection), and nginx's own refusals too. Raw bytes over TLS (ALPN http/1.1), so nothing
normalises the request on the way.

    python3 loadtest/cluster_hostile.py HOST PORT [CAFILE]     # exit 1 on any case that fails
    python3 loadtest/cluster_hostile.py HOST PORT --plain      # plain HTTP (sg-edge alone: the
                                                               # HTML answers nginx removes)
Prints one line per case: what was sent, the status and the body's error code.
"""

import json
import socket
import ssl
import sys

HOST, PORT = sys.argv[1], int(sys.argv[2])
PLAIN = len(sys.argv) > 3 and sys.argv[3] == "--plain"
CAFILE = sys.argv[3] if len(sys.argv) > 3 and not PLAIN else None


def tls_socket():
    ctx = ssl.create_default_context(cafile=CAFILE) if CAFILE else ssl._create_unverified_context()
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((HOST, PORT), timeout=15)
    return ctx.wrap_socket(raw, server_hostname=HOST)


def exchange(data, plain=False):
    """Sends data, reads until the server closes or 5 s of silence; returns the bytes read."""
    s = socket.create_connection((HOST, PORT), timeout=5) if plain or PLAIN else tls_socket()
    s.settimeout(5)
    out = b""
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:  # stop once a whole Content-Length body is in (the connection may stay open)
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length" and len(body) >= int(value):
                        return out
    except (socket.timeout, ConnectionResetError, ssl.SSLError, BrokenPipeError):
        pass
    finally:
        s.close()
    return out


def parse(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2) if lines and lines[0].startswith(b"HTTP/") else None
    status = int(parts[1]) if parts and len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return status, headers, body


ARGS = "&".join(f"a{i}=1" for i in range(500))
CASES = [
    # (name, raw request, expected statuses)
    ("request line over 4 KiB (libmicrohttpd: HTML 414 past its 32 KiB pool)",
     b"GET /health?" + b"a" * 6000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
    ("20 KiB of header fields (libmicrohttpd: HTML 431 past its 32 KiB pool)",
     b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 1000) for i in range(20)) + b"\r\n", {431}),
    ("one 6 KiB header field",
     b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 6000 + b"\r\n\r\n", {431}),
    ("500 query arguments (libmicrohttpd: no answer at all)",
     b"GET /health?" + ARGS.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
    ("lower-case version 'http/1.1' (libmicrohttpd: HTML 400)",
     b"GET /health http/1.1\r\nHost: x\r\n\r\n", {400}),
    ("version HTTP/2.0 in an HTTP/1 request line (libmicrohttpd: HTML 505)",
     b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", {400, 505}),
    ("garbage request line",
     b"\x01\x02 GARBAGE\r\n\r\n", {400}),
    # nginx ignores a header line it cannot read (ignore_invalid_headers): served without it
    ("header line without a colon (libmicrohttpd: HTML 400)",
     b"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nConnection: close\r\n\r\n", {200}),
    # no version is HTTP/0.9 to nginx: the answer is a bare body (HTTP/0.9 has no status line)
    ("no version: HTTP/0.9 GET (libmicrohttpd: HTML 400)",
     b"GET /health\r\n", {None}),
    ("no version: HTTP/0.9 POST",
     b"POST /sessions\r\n", {None}),
    ("Content-Length '12abc' (libmicrohttpd: HTML 400, headers twice)",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12abc\r\n\r\n{}", {400}),
    ("Content-Length overflowing 64 bits (libmicrohttpd: HTML 413, headers twice)",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n{}", {400, 413}),
    ("Content-Length -1",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}", {400}),
    ("bad chunk size mid-body (libmicrohttpd: HTML 400)",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\n{}\r\nZZ\r\n", {400}),
    ("chunk size over 2^64 (libmicrohttpd: HTML 413)",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffffffff\r\n", {400, 413}),
    ("chunked body over the 16 MiB limit",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1100000\r\n" + b"x" * 65536, {413}),
    ("Content-Length over the 16 MiB limit",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 16777217\r\n\r\n", {413}),
    ("Transfer-Encoding 'gzip, chunked'",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", {501}),
    ("Content-Length and Transfer-Encoding together",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400}),
    ("NUL in the target",
     b"GET /health\x00junk HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
    ("two Host fields",
     b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {400}),
    ("HTTP/1.1 without Host",
     b"GET /health HTTP/1.1\r\n\r\n", {400}),
    ("plain HTTP to the TLS port", None, {400}),
    # what sg-edge answers itself passes through untouched
    ("unknown route (sg-edge's own 404)",
     b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404}),
    ("malformed JSON body (sg-edge's own 400)",
     b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n"
     b"Connection: close\r\n\r\n{x}", {400}),
]


def main():
    failed = 0
    for name, raw, want in CASES:
        # A server that refuses a request before reading all of it closes the connection with bytes
        # unread; its TCP then resets the connection, which can destroy the answer on its way
        # (TCP, not nginx: any HTTP server does this). So an empty answer is tried again twice.
        for _ in range(3):
            if raw is None:
                resp = exchange(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                plain=True)
            else:
                resp = exchange(raw)
            if resp:
                break
        status, headers, body = parse(resp)
        problem = None
        code = None
        if status is None and None in want:  # HTTP/0.9: the body alone
            status, body, headers = None, resp, {"content-type": "application/json"}
        if status is None and None not in want:
            problem = f"no HTTP answer ({len(resp)} bytes: {resp[:60]!r})"
        elif status not in want:
            problem = f"status {status}, want {want}"
        elif not headers.get("content-type", "").startswith("application/json"):
            problem = f"Content-Type {headers.get('content-type')!r}: {body[:80]!r}"
        else:
            try:
                j = json.loads(body)
                code = j.get("error")
                ok_answer = status == 200 or (status is None and b"detail" not in body)
                if ok_answer and isinstance(j, dict) and j.get("status") == "ok":
                    code = "(GET /health answered)"
                elif not isinstance(j.get("detail"), str) or not isinstance(code, str):
                    problem = f"JSON without detail/error: {body[:120]!r}"
            except ValueError:
                problem = f"body is not JSON: {body[:120]!r}"
        print(f"  {'FAIL' if problem else 'ok  '} {name}: {status} {code or ''}"
              + (f"  <- {problem}" if problem else ""))
        failed += problem is not None
    print(f"hostile requests through nginx: {len(CASES) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
