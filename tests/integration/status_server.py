"""A local HTTP server that answers every POST with 200 and a small JSON body, except every ``every``-th request,
which gets ``status`` instead (``every=0``: never). Used by ``test_locust.py`` and ``tests/data/locust/record.py``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = b'{"prediction": "rain"}'


def _handler(every: int, status: int) -> type[BaseHTTPRequestHandler]:
    counter = itertools.count(1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Locust's connections expect
        # Headers and body go out in separate writes: with Nagle's algorithm the body would wait ~40 ms for the
        # client's delayed ACK.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))  # drain the body for keep-alive
            with lock:
                number = next(counter)
            code = status if every and number % every == 0 else 200
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would drown the test output

    return Handler


@contextmanager
def status_server(every: int = 0, status: int = 503) -> Iterator[str]:
    """Serve on a free loopback port; yields the base URL (``http://127.0.0.1:PORT``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(every, status))
    server.daemon_threads = True
    # Polled every 50 ms: shutdown() waits up to one poll (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
