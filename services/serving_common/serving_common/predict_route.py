"""``POST /predict/`` (and ``POST /predict``, the same endpoint) as a plain ASGI app, reached ahead of FastAPI's
middleware, router and parameter handling.

Why: that stack costs more than everything else the event loop does for a request. onnx-serving, A/B in one run
(8 interleaved rounds of ``ab -n 300 -c 50``, 1 CPU, 2026-12-05): event loop 1.16–1.23 → 0.85–0.91 ms of CPU a
request, x1.032 [1.009, 1.056] and x1.064 [1.025, 1.106] req/s in two runs. A FastAPI route with this same handler
(no parameter handling, still the stack) saved a third of that.

What a request must be is ``docs/contract.md`` §1: the checks run in its order (the query, the content type, the
body's size, then the body); :class:`serving_common.app.ServiceApp` answers the path and the method.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from serving_common.errors import ApiError, too_large, unprocessable, unsupported_media_type
from serving_common.metrics import STAGES_KEY

if TYPE_CHECKING:
    from serving_common.app import Service

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREDICT_PATH = "/predict/"
#: The same endpoint as :data:`PREDICT_PATH`, answered as it is (no redirect).
PREDICT_PATHS = frozenset({PREDICT_PATH, PREDICT_PATH.rstrip("/")})
#: ``?probabilities=`` spellings (``docs/contract.md`` §1), matched ASCII case-insensitively.
_BOOLEANS = {
    **dict.fromkeys(("true", "1", "yes", "on", "t", "y"), True),
    **dict.fromkeys(("false", "0", "no", "off", "f", "n"), False),
}


class ClientGone(Exception):
    """The client disconnected before its body was complete: nobody is left to answer."""


def probabilities_wanted(query_string: bytes) -> bool:
    """``?probabilities=…`` read from an ``application/x-www-form-urlencoded`` query (``parse_qsl``: ``+`` is a
    space, percent-escapes are UTF-8), the last occurrence counting; absent is False, a value not in the
    contract's spellings is a 422."""
    values = [
        value
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if name == "probabilities"
    ]
    if not values:
        return False
    value = values[-1]
    wanted = _BOOLEANS.get(value.lower()) if value.isascii() else None
    if wanted is None:
        raise unprocessable(
            "query parameter 'probabilities' must be a boolean "
            f"(true/false, 1/0, yes/no, on/off, t/f, y/n), got {value!r}"
        )
    return wanted


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header, as Starlette's ``Headers.get`` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def require_json(scope: Scope) -> None:
    """The media type, before any parameters, is ``application/json`` in any ASCII case; around it only HTTP's
    optional whitespace (space, tab), not all that ``str.strip`` takes (such as ``\xa0``)."""
    media_type = (_header(scope, b"content-type") or "").split(";")[0].strip(" \t").lower()
    if media_type != "application/json":
        raise unsupported_media_type(f"content type must be application/json, got {media_type or 'none'}")


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large(f"request body exceeds the limit of {limit} bytes")
        if not message.get("more_body", False):
            return b"".join(chunks)  # one copy of the body (the join of a lone chunk is that chunk)


async def send_json(send: Send, status: int, content: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """As Starlette's ``JSONResponse``: ``headers`` (if any), then ``content-length`` and ``content-type`` of compact
    UTF-8 JSON."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()
    headers = [*(headers or []), (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class PredictRoute:
    """The ASGI app of ``POST /predict/``: the service's answer, or ``{"detail": …}`` with the error's status."""

    def __init__(self, service: Callable[[], Service]) -> None:
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with_probabilities = probabilities_wanted(scope["query_string"])
            service = self._service()
            require_json(scope)
            body = await read_body(scope, receive, service.settings.max_body_bytes)
            index, probabilities = await service.predict_within_timeout(body, scope.get(STAGES_KEY))
        except ApiError as error:
            await send_json(send, error.status, {"detail": error.detail})
            return
        except ClientGone:
            return
        response: dict[str, Any] = {"prediction": service.manifest["classes"][index]}
        if with_probabilities:
            response["probabilities"] = [float(p) for p in probabilities]
        await send_json(send, 200, response)
