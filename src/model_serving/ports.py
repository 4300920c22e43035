"""Free TCP ports on this machine, for processes the suite starts (an emulator, a compose project)."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int = 1, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` now (held open together so that they differ).

    A guess, not a reservation: another process may take one before it is used. For a remote engine's
    published ports this machine's view is only a best guess too.
    """
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
