"""A stand-in for ZeroGPU's device API on 127.0.0.1 (what SPACES_ZERO_DEVICE_API_URL names on the platform), answering
as the `spaces` package's own client expects (spaces 0.51.3: zero/api.py, zero/client.py) and logging every request.

| route | its answer | when the package asks |
|---|---|---|
| POST /startup-report | 200 | at the app's first launch, after the weights are packed |
| POST /schedule?cgroupPath&taskId&enableQueue&tokenVersion&durationSeconds[&gpuSize][&token] | 200 JSON `{idle, nvidiaIndex, nvidiaUUID, allowToken}` | each call of a `spaces.GPU` function |
| the same, queued | 200 `text/event-stream`: one `succeeded` event carrying that JSON | when no GPU is free at once |
| the same, refused | 429 JSON `{left, wait}` (wait > 0: quota used up; wait < 0: a duration over the maximum); 503 (no GPU) | |
| POST /allow?allowToken&pid | 200 | in the forked worker, before it runs |
| POST /release?allowToken&fail | 200 | when the call ends (`fail=true` when it failed) |

`refuse` lists how the next /schedule requests are answered ("queue", "quota", "illegal-duration", "no-gpu"), one
each; after them every request gets a GPU at once. Every GPU is reported idle, so the package reuses its worker.
"""

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from tests.loopback import on_loopback

GPU = {"idle": True, "nvidiaIndex": 0, "nvidiaUUID": "GPU-stand-in-0000"}


class StandInDeviceApi:
    def __init__(self):
        self.requests: list = []  # (path, {parameter: value})
        self.refuse: list = []
        self.granted = 0  # /schedule requests answered with a GPU
        self.lock = threading.Lock()

    def schedules(self) -> list:
        """The durations (seconds) of the GPU requests made so far, in order."""
        return [int(params["durationSeconds"]) for path, params in self.requests if path == "/schedule"]

    def count(self, path: str) -> int:
        return sum(1 for logged, _ in self.requests if logged == path)

    def settled(self) -> bool:
        """Every GPU granted has been given back."""
        return self.count("/release") == self.granted

    def answer(self, path: str, params: dict) -> tuple:
        """(status, content type, body) for one request."""
        with self.lock:
            self.requests.append((path, params))
            how = self.refuse.pop(0) if path == "/schedule" and self.refuse else None
            token = f"allow-{len(self.requests)}"
            self.granted += path == "/schedule" and how in (None, "queue")
        if path != "/schedule":
            return 200, "application/json", b"{}"
        granted = json.dumps({**GPU, "allowToken": token})
        if how == "queue":
            return 200, "text/event-stream", f"event: succeeded\ndata: {granted}\n\n".encode()
        if how in ("quota", "illegal-duration"):
            wait = 3600 if how == "quota" else -1
            return 429, "application/json", json.dumps({"left": 0, "wait": wait}).encode()
        if how == "no-gpu":
            return 503, "application/json", b"{}"
        return 200, "application/json", granted.encode()


@contextmanager
def serving(api: StandInDeviceApi):
    """The stand-in on a free loopback port; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlparse(self.path)
            params = {name: values[0] for name, values in parse_qs(url.query).items()}
            status, content_type, body = api.answer(url.path, params)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args):
            pass

    with on_loopback(Handler) as url:
        yield url
