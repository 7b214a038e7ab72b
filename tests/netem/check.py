"""Checks and records one tests/netem/run.sh run (called by it).

    /usr/bin/python3 tests/netem/check.py WORK_DIR OUT_JSON|"" PROFILE...

Per profile, WORK_DIR holds what run.sh collected: <p>.meta.json (profile, exit codes, TCP
retransmissions in each namespace), <p>.stream.json (`sg stream --json`), <p>.prom.txt (the
server's Prometheus text), <p>.connect.txt (TCP connect times) and <p>.link.json (the userspace
emulator's counters, when it ran). Checks, for every profile:
  - sg stream exited 0 and the server is still alive;
  - the shaping is real: the fastest TCP connect takes at least 90 % of the profile's RTT;
  - no lost audio: every chunk recorded was answered by the server (sent == chunks, nothing failed,
    dropped or left unsent), and the server's request counter for the audio route agrees;
  - every question asked was answered;
  - frames: some were sent, and those the phone dropped or gave up on stay under MAX_FRAME_LOSS of
    the frames it encoded;
  - over the lossy profiles together the loss is visible: packets lost on the link and TCP
    retransmissions;
  - across a blackout longer than the client's per-attempt timeout, the client's own retries show
    (sg stream's http.retries or network_errors) and still no audio or question is lost.
Prints a table (E2E turn latency p50/p95 per profile: question asked -> answer received, phone-side
queueing included) and writes OUT_JSON when given. Exit 1 when a check failed.
"""

import json
import os
import re
import sys

MAX_FRAME_LOSS = {"wifi": 0.05, "4g": 0.25, "3g": 0.75, "outage": 0.75}  # share of encoded frames


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def prom_route_total(path, route):
    total = 0
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r'smartglass_requests_total\{route="([^"]*)",code="(\d+)"\} (\d+)', line)
                if m and m.group(1) == route:
                    total += int(m.group(3))
    except OSError:
        pass
    return total


def check_profile(work, name):
    meta = load_json(os.path.join(work, f"{name}.meta.json"), {})
    st = load_json(os.path.join(work, f"{name}.stream.json"))
    link = load_json(os.path.join(work, f"{name}.link.json"))
    problems = []
    rec = dict(meta)
    rec["link"] = link
    if meta.get("stream_rc") != 0:
        problems.append(f"sg stream exited {meta.get('stream_rc')}")
    if meta.get("server_alive") != 1:
        problems.append("sg-edge died")
    try:
        with open(os.path.join(work, f"{name}.connect.txt")) as f:
            connects = [float(x) * 1000 for x in f.read().split() if float(x) > 0]
    except (OSError, ValueError):
        connects = []
    rec["connect_ms_min"] = round(min(connects), 1) if connects else None
    if not connects:
        problems.append("no TCP connect time measured")
    elif min(connects) < 0.9 * meta["rtt_ms"]:
        problems.append(f"fastest connect {min(connects):.1f} ms < 90% of the {meta['rtt_ms']} ms RTT:"
                        " the link is not shaped")
    if not isinstance(st, dict):
        problems.append("no JSON from sg stream")
        return rec, problems
    a, q, fr, http = st["audio"], st["queries"], st["frames"], st["http"]
    rec["stream"] = {k: st[k] for k in ("duration_s", "elapsed_real_s", "audio", "queries", "frames",
                                         "turn_latency_ms", "upload", "uplink_kbps", "last_error")}
    rec["stream"]["http"] = {k: http[k] for k in ("requests", "attempts", "retries",
                                                  "network_errors", "gave_up", "responses")}
    rec["stream"]["upload"].pop("per_minute", None)
    # audio: nothing lost, and the server saw every chunk
    if a["chunks"] <= 0:
        problems.append("no audio chunk was recorded")
    if a["sent"] != a["chunks"] or a["failed"] or a["dropped"] or a["unsent"]:
        problems.append(f"audio lost: {a['chunks']} chunks, {a['sent']} answered, {a['failed']} failed,"
                        f" {a['dropped']} dropped, {a['unsent']} unsent")
    srv_audio = prom_route_total(os.path.join(work, f"{name}.prom.txt"), "/sessions/{id}/audio")
    rec["server_audio_requests"] = srv_audio
    if srv_audio < a["sent"]:
        problems.append(f"the server counted {srv_audio} audio requests, sg stream {a['sent']} answered")
    # questions
    if q["asked"] <= 0 or q["answered"] != q["asked"]:
        problems.append(f"questions: {q['asked']} asked, {q['answered']} answered, {q['failed']} failed,"
                        f" {q['unsent']} unsent")
    # frames: bounded loss
    lost_frames = fr["dropped"] + fr["failed"] + fr["abandoned"]
    rec["frame_loss"] = round(lost_frames / fr["encoded"], 3) if fr["encoded"] else 0.0
    if fr["sent"] <= 0:
        problems.append("no frame was sent")
    bound = MAX_FRAME_LOSS.get(name, 0.75)
    if rec["frame_loss"] > bound:
        problems.append(f"frames: {lost_frames} of {fr['encoded']} encoded were dropped or given up"
                        f" ({rec['frame_loss']:.0%} > {bound:.0%})")
    # loss visible where the profile has loss
    retrans = meta.get("tcp_retrans_client", 0) + meta.get("tcp_retrans_server", 0)
    rec["tcp_retransmits"] = retrans
    # (whether the loss shows is checked over all lossy profiles together, in main: a short run of
    # a few hundred packets at 1 % loses none about one time in twenty, and a lost pure ACK
    # causes no retransmission)
    rec["link_lost"] = (link["up"]["lost"] + link["down"]["lost"]) if link is not None else None
    if meta.get("blackout_s", 0) > 0:
        if link is not None and link["up"]["blackout_lost"] + link["down"]["blackout_lost"] == 0:
            problems.append("the blackout lost no packet")
        if http["retries"] + http["network_errors"] == 0:
            problems.append("a blackout longer than the attempt timeout caused no client retry")
    return rec, problems


def main():
    work, out, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
    records, failed = [], False
    print(f"{'profile':8} {'RTT':>5} {'rate':>9} {'loss':>5} | {'turns':>5} {'p50 ms':>8} {'p95 ms':>8}"
          f" | {'audio':>9} {'frames sent/enc':>15} {'q avg':>5} {'KB/min':>7} | {'retries':>7}"
          f" {'TCP rtx':>7}")
    for name in profiles:
        rec, problems = check_profile(work, name)
        rec["problems"] = problems
        records.append(rec)
        st = rec.get("stream")
        if st:
            tl, a, fr = st["turn_latency_ms"], st["audio"], st["frames"]
            print(f"{name:8} {rec['rtt_ms']:>3}ms {rec['rate_kbit'] / 1000:>6g}Mb/s {rec['loss_pct']:>4}%"
                  f" | {tl['count']:>5} {tl['p50'] or 0:>8.0f} {tl['p95'] or 0:>8.0f}"
                  f" | {a['sent']:>4}/{a['chunks']:<4} {fr['sent']:>7}/{fr['encoded']:<7}"
                  f" {fr['jpeg_quality_avg']:>5.0f} {st['upload']['kb_per_min']:>7.0f}"
                  f" | {st['http']['retries']:>7} {rec['tcp_retransmits']:>7}")
        for p in problems:
            print(f"  FAIL {name}: {p}")
            failed = True
    lossy = [r for r in records if r.get("loss_pct", 0) > 0]
    if lossy:
        lost = sum(r.get("link_lost") or 0 for r in lossy)
        rtx = sum(r.get("tcp_retransmits") or 0 for r in lossy)
        if all(r.get("link_lost") is not None for r in lossy) and lost == 0:
            print("  FAIL: the lossy profiles lost no packet on the link")
            failed = True
        if rtx == 0:
            print("  FAIL: the lossy profiles caused no TCP retransmission")
            failed = True
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(records, f, indent=1)
            f.write("\n")
    print("network conditions:", "FAILED" if failed else "ok")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
