"""Load test for sg-edge, after the Python system's performance guide.

Each simulated user (one pair of glasses) creates a session (POST /sessions), then asks text
questions (POST /sessions/{id}/query {"text_query"}) and multimodal ones (POST
/sessions/{id}/multimodal {"text","image"}) in a 3:1 ratio, waiting SG_LOAD_WAIT_MIN..SG_LOAD_WAIT_MAX
seconds (default 30..60, the guide's pacing; 0 for CI) between tasks.

Images are the real photos of ../shared/data/images (SG_LOAD_IMAGES to change), centre-cropped to
4:3, resized to 640x480 and re-encoded as JPEG q85 once at start (PIL), then base64'd, so the
request bodies look like what the phone uploads.

Every answer is checked for the turn-result shape of API.md (a string "response", the session id,
"metadata.latency_ms"; a multimodal turn must report a visual context): anything else, and any
non-200, counts as a failure.

Run with Debian's python3-locust (2.12):
    /usr/bin/python3 -m locust -f loadtest/locustfile.py --headless -u 20 -r 20 -t 30s \
        --host http://127.0.0.1:5000
Environment: SG_LOAD_WAIT_MIN / SG_LOAD_WAIT_MAX (seconds), SG_LOAD_IMAGES (a directory of
JPEG/PNG photos), SG_LOAD_API_KEY (sent as X-API-Key when the server has auth on).
An https:// host (the cluster's nginx, scripts/cluster.sh) is verified against SG_LOAD_CA (a PEM
file, e.g. the cluster's self-signed certificate), else the system's CAs; SG_LOAD_INSECURE=1
skips verification. SG_LOAD_SESSIONS_FILE: every session created is appended to it as
"<session_id>\t<unix time>" (the failover test checks that each is still served).
SG_LOAD_DEGRADED_FILE: at the end, {"turns": N, "degraded": N, "steps": {"llm:rule-based": N, ...}}
is written there - the successful turns and those whose metadata.degraded says they stepped down
(loadtest/degrade.sh).
"""

import base64
import io
import itertools
import json
import os
import random
import sys
import time

from locust import HttpUser, between, events, task
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_DIR = os.environ.get("SG_LOAD_IMAGES",
                           os.path.join(HERE, "..", "..", "shared", "data", "images"))
WAIT_MIN = float(os.environ.get("SG_LOAD_WAIT_MIN", "30"))
WAIT_MAX = float(os.environ.get("SG_LOAD_WAIT_MAX", "60"))
API_KEY = os.environ.get("SG_LOAD_API_KEY")
CA_FILE = os.environ.get("SG_LOAD_CA")
INSECURE = os.environ.get("SG_LOAD_INSECURE", "").lower() in ("1", "true", "yes", "on")
SESSIONS_FILE = os.environ.get("SG_LOAD_SESSIONS_FILE")
DEGRADED_FILE = os.environ.get("SG_LOAD_DEGRADED_FILE")
DEGRADED = {"turns": 0, "degraded": 0, "steps": {}}
if INSECURE:
    import urllib3  # one warning per request otherwise
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

if WAIT_MIN < 0 or WAIT_MAX < WAIT_MIN:
    sys.exit(f"locustfile: bad waits SG_LOAD_WAIT_MIN={WAIT_MIN} SG_LOAD_WAIT_MAX={WAIT_MAX}")

TEXT_QUERIES = [
    "What am I looking at?",
    "What time is it?",
    "Read the text in front of me",
    "Navigate to the nearest coffee shop",
    "Remind me to buy milk",
    "Translate this sign into French",
    "What can you do?",
    "Is there anything dangerous ahead?",
]
MULTIMODAL_QUERIES = [
    "What is this?",
    "Describe what you see",
    "Identify this object",
    "Read this for me",
    "What colour is this?",
]


def _load_images(directory):
    """Every photo in the directory as base64 of a 640x480 q85 JPEG (computed once)."""
    try:
        names = sorted(n for n in os.listdir(directory)
                       if n.lower().endswith((".jpg", ".jpeg", ".png")))
    except OSError as e:
        sys.exit(f"locustfile: cannot read images from {directory}: {e}")
    out = []
    for n in names:
        with Image.open(os.path.join(directory, n)) as im:
            im = ImageOps.fit(im.convert("RGB"), (640, 480), Image.BICUBIC)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85)
            out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    if not out:
        sys.exit(f"locustfile: no JPEG/PNG photos in {directory}")
    return out


IMAGES = _load_images(IMAGE_DIR)


def _check_turn(resp, session_id, want_visual):
    """Returns None when resp is a turn result of API.md, else what is wrong."""
    if resp.status_code == 0:  # no answer: connection refused, reset or closed
        return f"no HTTP answer: {resp.error!r}"[:300]
    if resp.status_code != 200:
        return f"HTTP {resp.status_code}: {resp.text[:200]}"
    try:
        body = resp.json()
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if not isinstance(body.get("response"), str) or not body["response"]:
        return "no 'response' string in the turn result"
    if body.get("session_id") != session_id:
        return f"session_id {body.get('session_id')!r} != {session_id!r}"
    meta = body.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("latency_ms"), dict):
        return "no metadata.latency_ms in the turn result"
    if want_visual:
        vc = body.get("visual_context")
        if not isinstance(vc, str) or not vc or vc == "No visual input":
            return f"image sent but visual_context is {vc!r}"
    return None


def _tally_degraded(resp):
    """Counts a successful turn, and its metadata.degraded steps."""
    try:
        deg = resp.json().get("metadata", {}).get("degraded")
    except (ValueError, AttributeError):
        return
    DEGRADED["turns"] += 1
    if isinstance(deg, dict) and deg:
        DEGRADED["degraded"] += 1
        for stage, step in deg.items():
            key = f"{stage}:{step}"
            DEGRADED["steps"][key] = DEGRADED["steps"].get(key, 0) + 1


@events.test_stop.add_listener
def _write_degraded(**_kwargs):
    if DEGRADED_FILE:
        with open(DEGRADED_FILE, "w", encoding="ascii") as f:
            json.dump(DEGRADED, f)


class GlassesUser(HttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self):
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY
        if CA_FILE:
            self.client.verify = CA_FILE
        elif INSECURE:
            self.client.verify = False
        self.session_id = None
        self.images = itertools.cycle(random.sample(IMAGES, len(IMAGES)))
        self._create_session()

    def _create_session(self):
        with self.client.post("/sessions", json={}, name="/sessions",
                              catch_response=True) as r:
            if r.status_code == 0:
                r.failure(f"no HTTP answer: {r.error!r}"[:300])
                return
            if r.status_code not in (200, 201):
                r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
                return
            try:
                sid = r.json().get("session_id")
            except (ValueError, AttributeError):
                sid = None
            if not isinstance(sid, str) or not sid:
                r.failure("no session_id in the answer")
                return
            self.session_id = sid
            r.success()
            if SESSIONS_FILE:
                with open(SESSIONS_FILE, "a", encoding="ascii") as f:
                    f.write(f"{sid}\t{time.time():.3f}\n")

    def _turn(self, route, body, want_visual):
        if self.session_id is None:
            self._create_session()
            if self.session_id is None:
                return
        sid = self.session_id
        with self.client.post(f"/sessions/{sid}/{route}", data=json.dumps(body),
                              headers={"Content-Type": "application/json"},
                              name=f"/sessions/[id]/{route}", catch_response=True) as r:
            problem = _check_turn(r, sid, want_visual)
            if problem:
                r.failure(problem)
            else:
                r.success()
                if DEGRADED_FILE:
                    _tally_degraded(r)

    @task(3)
    def text_query(self):
        self._turn("query", {"text_query": random.choice(TEXT_QUERIES)}, False)

    @task(1)
    def multimodal_query(self):
        self._turn("multimodal", {"text": random.choice(MULTIMODAL_QUERIES),
                                  "image": next(self.images)}, True)
