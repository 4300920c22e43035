"""Progress lines that reach the terminal while pytest captures test output.

pytest captures file descriptors 1 and 2 during a test, so even ``sys.__stderr__`` ends in the capture and a
long benchmark would look hung; writing with the capture suspended shows each line as it happens.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest


def terminal_progress(config: pytest.Config, label: str) -> Callable[[str], None]:
    """A ``progress(message)`` that prints ``[label] message`` to the terminal at once."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def progress(message: str) -> None:
        if capture is None:
            print(f"[{label}] {message}", file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            print(f"[{label}] {message}", file=sys.stderr, flush=True)

    return progress
