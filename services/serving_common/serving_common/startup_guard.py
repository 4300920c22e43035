"""An ASGI middleware that turns a failed start-up into one line naming the problem, without a traceback.

The app loads its model in its lifespan start-up. When that fails, Starlette tells the server
``lifespan.startup.failed`` with the traceback as the message (uvicorn logs it) and re-raises. This middleware
holds that message back until the exception arrives, prints ``<service>: cannot start: <what is wrong>`` on stderr,
and passes the failure on, without the traceback when the error is a :class:`ModelError` (it is all said in the
line; anything else keeps its traceback). The server still sees a failed start-up: uvicorn's worker exits with
code 3, gunicorn's "worker failed to boot", which stops gunicorn with code 3 too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from model_core.errors import ModelError

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

STARTUP_FAILED = "lifespan.startup.failed"


class StartupGuard:
    """``app`` unchanged, but for how a failed lifespan start-up is reported (see the module doc)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: Message | None = None

        async def hold_startup_failure(message: Message) -> None:
            nonlocal held
            if message["type"] == STARTUP_FAILED:
                held = message  # passed on below, once the exception says what failed
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold_startup_failure)
        except Exception as error:
            if held is None:  # not a start-up failure (e.g. at shutdown): the server reports it
                raise
            if isinstance(error, ModelError):
                detail, held = str(error), {**held, "message": ""}
            else:
                detail = f"{type(error).__name__}: {error}"
            # One write of the whole line: with WORKERS > 1 every worker fails at once, and print's separate
            # write of the newline let two workers' lines run together.
            os.write(sys.stderr.fileno(), f"{self.service}: cannot start: {detail}\n".encode())
            await send(held)
        else:
            if held is not None:  # reported without raising: pass it on as it was
                await send(held)
