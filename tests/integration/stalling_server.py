"""A local HTTP server that answers in ~2 ms but freezes for a while once per period, like a GC pause.

Every request that arrives during a freeze is held until the freeze ends. A closed-loop client (or an open-loop
one that measures from the moment it actually sent) only has the few requests in flight at the freeze's start
to show for it; the requests it was scheduled to send meanwhile are sent late and look fast. That is the
coordinated omission oha's ``--latency-correction`` undoes. Used by ``test_oha.py`` and
``tests/data/oha/record.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = b'{"ok": true}'


@dataclass(frozen=True)
class Stalls:
    """Freeze for ``stall_s`` at the start of every ``period_s``; answer in ``answer_s`` otherwise."""

    period_s: float = 1.0
    stall_s: float = 0.5
    answer_s: float = 0.002


def _handler(stalls: Stalls, started: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as oha's connections expect
        # Headers and body go out in separate writes: with Nagle's algorithm the body waits for the client's
        # delayed ACK (~40 ms), which would hide the 2 ms answer.
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            phase = (time.monotonic() - started) % stalls.period_s
            if phase < stalls.stall_s:
                time.sleep(stalls.stall_s - phase)  # held until the freeze ends
            time.sleep(stalls.answer_s)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))  # drain the body for keep-alive
            self._answer()

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would drown the test output

    return Handler


@contextmanager
def stalling_server(stalls: Stalls = Stalls()) -> Iterator[str]:
    """Serve on 127.0.0.1 at an ephemeral port in a background thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stalls, time.monotonic()))
    server.daemon_threads = True
    # Polled every 50 ms: shutdown() waits up to one poll (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="stalling-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
