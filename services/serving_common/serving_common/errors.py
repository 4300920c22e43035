"""The error contract: a status code and ``{"detail": "..."}`` for every bad request, never a 5xx for bad input."""

from __future__ import annotations


class ApiError(Exception):
    """A request the service refuses; ``status`` is a 4xx (or 504 on a timeout), ``detail`` says what is wrong."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def bad_request(detail: str) -> ApiError:
    return ApiError(400, detail)


def unsupported_media_type(detail: str) -> ApiError:
    return ApiError(415, detail)


def too_large(detail: str) -> ApiError:
    return ApiError(413, detail)


def unprocessable(detail: str) -> ApiError:
    return ApiError(422, detail)


def gateway_timeout(detail: str) -> ApiError:
    """504: the request's processing took longer than ``REQUEST_TIMEOUT_S`` (not the client's fault)."""
    return ApiError(504, detail)
