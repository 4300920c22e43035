"""Running a service image: start under a CPU limit, wait until healthy, always remove.

testcontainers starts the containers; its Ryuk reaper cannot be pulled here, so it is disabled and every
container is removed by this module (``finally``), and labelled so a sweep can find leftovers.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import docker

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer

from model_serving.docker.engine import client, engine_host

LABEL = "org.model-serving.role"
SERVICE_PORTS = {"onnx-serving": 8080, "torch-serving": 8081, "rust-onnx-serving": 8082}


class ServiceStartError(Exception):
    """A service did not become healthy; the message carries the container's logs."""


@dataclass
class RunningService:
    service: str
    image: str
    container: DockerContainer
    host: str
    port: int
    cpus: float
    startup_s: float

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def container_id(self) -> str:
        wrapped = self.container.get_wrapped_container()
        return str(wrapped.id)

    def logs(self) -> str:
        return _logs(self.container)


def _logs(container: DockerContainer) -> str:
    try:
        stdout, stderr = container.get_logs()
    except Exception as error:  # the container may already be gone
        return f"(logs unavailable: {error})"
    return (stdout + stderr).decode(errors="replace")


def _health(url: str, timeout: float) -> dict[str, Any] | None:
    """The JSON of a 200 on ``GET /``, or None while the service is not answering yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status == 200:
                body: dict[str, Any] = json.loads(response.read())
                return body
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError, OSError):
        return None
    return None


def wait_until_healthy(
    url: str, timeout_s: float, is_running: Callable[[], bool], poll_s: float = 0.02
) -> dict[str, Any] | None:
    """Poll ``GET url`` until a 200 (returns its JSON), the process dies or the time is up (returns None)."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        body = _health(url, timeout=1.0)
        if body is not None:
            return body
        if not is_running():
            return None
        time.sleep(poll_s)
    return None


def _is_running(container: DockerContainer) -> Callable[[], bool]:
    def check() -> bool:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        return bool(wrapped.status in ("created", "running"))

    return check


@contextmanager
def run_service(
    service: str,
    image: str,
    cpus: float,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
    **docker_kwargs: Any,
) -> Iterator[RunningService]:
    """Start ``image`` with ``cpus`` CPUs; yield once ``GET /`` answers 200; remove the container in all cases.

    ``startup_s`` is measured from the start call to the first 200.
    """
    port = SERVICE_PORTS[service]
    container = (
        DockerContainer(image, docker_client_kw={"timeout": 120})
        .with_exposed_ports(port)
        .with_kwargs(nano_cpus=int(cpus * 1e9), labels={LABEL: service}, **docker_kwargs)
    )
    for key, value in (env or {}).items():
        container.with_env(key, value)
    try:
        started = time.perf_counter()
        container.start()
        host_port = int(container.get_exposed_port(port))
        url = f"http://{engine_host()}:{host_port}/"
        healthy = wait_until_healthy(url, timeout_s, _is_running(container))
        startup = time.perf_counter() - started
        if healthy is None:
            raise ServiceStartError(
                f"{service} ({image}) did not answer 200 on GET / within {timeout_s:.0f} s. Container logs:\n"
                + _logs(container)
            )
        yield RunningService(service, image, container, engine_host(), host_port, cpus, startup)
    finally:
        _remove(container)


def _remove(container: DockerContainer) -> None:
    wrapped = getattr(container, "_container", None)
    if wrapped is not None:
        with suppress(docker.errors.NotFound):  # already gone
            wrapped.remove(force=True, v=True)


def remove_leftovers() -> list[str]:
    """Remove every container this suite labelled (e.g. after a run that was killed); return their names."""
    leftovers = client().containers.list(all=True, filters={"label": LABEL})
    for container in leftovers:
        container.remove(force=True, v=True)
    return [c.name for c in leftovers]
