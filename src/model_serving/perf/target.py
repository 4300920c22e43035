"""Measuring services already running (``--target name=url,...``): which services answer where, a check that each
is the service named and healthy, and the figures that need the suite's own containers, so are not taken.

In this mode nothing is built or started: the side-by-side measurements (load rounds, sweep, open loop, capacity,
payload sizes) and the load run with its stages from ``/metrics`` go to the given URLs; the figures below are
recorded per service as not available, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from model_serving.perf.measure import warm_up, warm_up_at_concurrency

log = logging.getLogger(__name__)

_NOT_STARTED = "--target: the service was not started by the suite"
#: The service section's fields a ``--target`` run cannot fill, and why (report.json ``services.<name>.unavailable``).
UNAVAILABLE: dict[str, str] = {
    "image": f"{_NOT_STARTED}: its image and image size are unknown to it",
    "startup_s": f"{_NOT_STARTED}: start-up is timed from the container's start call",
    "memory_mb": f"{_NOT_STARTED}: container memory comes from the Docker engine's stats of its own container",
    "cpu_percent": f"{_NOT_STARTED}: container CPU comes from the Docker engine's stats of its own container",
    "in_process_rps": f"{_NOT_STARTED}: the in-process bench runs inside its own container",
    "in_process_stages_ms": f"{_NOT_STARTED}: the in-process bench runs inside its own container",
    "efficiency": f"{_NOT_STARTED}: efficiency needs the in-process req/s",
    "thread_cpu": f"{_NOT_STARTED}: CPU per thread is read from its container's processes on the engine's host",
    "memory_over_requests": f"{_NOT_STARTED}: memory over requests needs a fresh container and its memory at rest",
    "against_usual": f"{_NOT_STARTED}: the usual implementations run beside it in containers the suite starts",
}
_EXAMPLE = "onnx-serving=http://127.0.0.1:8080"


class TargetError(Exception):
    """A ``--target`` URL does not answer as the service named: the message says what it answered."""


class Unavailable(Exception):
    """A measurement that needs the suite's own containers, asked for in a ``--target`` run; the message says why."""


@dataclass(frozen=True)
class TargetService:
    """A service already running at ``base_url`` (an perf.endpoint.Endpoint), with what its ``GET /`` answered."""

    service: str
    base_url: str
    health: Mapping[str, Any] = field(default_factory=dict)


def parse_targets(texts: Iterable[str], services: Sequence[str]) -> dict[str, str]:
    """``name=url,name=url`` (one or more option values) → base URL by service, in the order of ``services``.

    :class:`ValueError` for a part that is not ``name=url``, a name not in ``services``, a name given twice, or a URL
    that is not http(s)://host[:port][/path].
    """
    targets: dict[str, str] = {}
    for part in (p.strip() for text in texts for p in text.split(",")):
        if not part:
            continue
        name, sep, url = (s.strip() for s in part.partition("="))
        if not sep or not name or not url:
            raise ValueError(f"--target: {part!r} is not name=url (e.g. {_EXAMPLE})")
        if name not in services:
            raise ValueError(f"--target: unknown service {name!r}; choose from {', '.join(services)}")
        if name in targets:
            raise ValueError(f"--target: {name} is given twice")
        targets[name] = _base_url(name, url)
    if not targets:
        raise ValueError(f"--target: no service given (e.g. {_EXAMPLE})")
    return {name: targets[name] for name in services if name in targets}


def _base_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.query or parts.fragment:
        raise ValueError(f"--target {name}: {url!r} is not an http:// or https:// URL of a service (e.g. {_EXAMPLE})")
    return url.rstrip("/")


def check_target(service: str, base_url: str, timeout_s: float = 10.0) -> TargetService:
    """The service at ``base_url`` once its ``GET /`` answered 200 ``{"status": "healthy"}`` as ``service``;
    :class:`TargetError` otherwise."""
    where = f"--target {service}={base_url}"
    try:
        response = httpx.get(f"{base_url}/", timeout=timeout_s)
    except httpx.HTTPError as error:
        raise TargetError(f"{where}: GET {base_url}/ failed: {error.__class__.__name__}: {error}") from error
    if response.status_code != 200:
        raise TargetError(f"{where}: GET / answered {response.status_code}: {response.text[:200]!r}")
    try:
        health = response.json()
    except ValueError as error:
        raise TargetError(f"{where}: GET / answered 200 but not JSON: {response.text[:200]!r}") from error
    if not isinstance(health, dict) or health.get("status") != "healthy":
        raise TargetError(f'{where}: GET / answered 200 but not {{"status": "healthy"}}: {response.text[:200]!r}')
    if health.get("service", service) != service:
        raise TargetError(f"{where}: that URL serves {health['service']}, not {service}")
    return TargetService(service, base_url, health)


def check_targets(urls: Mapping[str, str], timeout_s: float = 10.0) -> dict[str, TargetService]:
    """Every target checked (:func:`check_target`), in the order given."""
    return {name: check_target(name, url, timeout_s) for name, url in urls.items()}


def common_model_id(targets: Mapping[str, TargetService]) -> str | None:
    """The model every target says it serves, or None when they do not all name the same one."""
    ids = {target.health.get("model_id") for target in targets.values()}
    only = ids.pop() if len(ids) == 1 else None
    return only if isinstance(only, str) else None


def warmed_up(
    targets: Mapping[str, TargetService], body_path: Path, concurrency: int, warmup_requests: int
) -> dict[str, TargetService]:
    """The targets, each warmed up as the suite warms its own containers (requests one at a time, then 2 × c at c),
    for the measurements that interleave them."""
    body = body_path.read_bytes()
    for name, target in targets.items():
        log.info(f"{name}: warming up at {target.base_url} (--target: as found, not started by the suite)")
        warm_up(target, body, warmup_requests)
        warm_up_at_concurrency(target, body_path, concurrency)
    return dict(targets)
