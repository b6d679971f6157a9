"""An HTTP server on a free loopback port, in a thread, for the stand-ins of the platforms (tests/hub_server.py,
tests/zerogpu_server.py)."""

import threading
from contextlib import contextmanager
from http.server import ThreadingHTTPServer


@contextmanager
def on_loopback(handler_class):
    """`handler_class` (a BaseHTTPRequestHandler) served on 127.0.0.1; yields the server's URL, shuts it down after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
