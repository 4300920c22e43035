"""Running a service image: start under a CPU limit, wait until healthy, always remove.

testcontainers starts the containers; its Ryuk reaper cannot be pulled here, so it is disabled and every
container is removed by this module (``finally``), and labelled so a sweep can find leftovers.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker
from docker.models.containers import Container

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer

from model_serving.docker.engine import client, engine_host
from model_serving.services import SERVICES

LABEL = "org.model-serving.role"
# Which process started a container: the sweep removes only its own and those of processes that are gone, so
# two test sessions on one engine do not remove each other's containers.
OWNER_LABEL = "org.model-serving.owner"
OWNER = f"{socket.gethostname()}:{os.getpid()}"


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

    @property
    def docker_container(self) -> Container:
        """The Docker SDK's handle on the container (to signal it, wait for it, inspect it)."""
        wrapped: Container = self.container.get_wrapped_container()
        return wrapped


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
    port = SERVICES[service].port
    container = (
        DockerContainer(image, docker_client_kw={"timeout": 120})
        .with_exposed_ports(port)
        .with_kwargs(nano_cpus=int(cpus * 1e9), labels={LABEL: service, OWNER_LABEL: OWNER}, **docker_kwargs)
    )
    for key, value in (env or {}).items():
        container.with_env(key, value)
    try:
        started = time.perf_counter()
        container.start()
        try:
            host_port = int(container.get_exposed_port(port))
        except (ConnectionError, TimeoutError) as error:
            # A service that exits at once (e.g. on a bad model) has no port mapping left to read: testcontainers
            # says so with a ConnectionError, or, once it saw the container exited, "did not become running".
            raise ServiceStartError(
                f"{service} ({image}) exited before its port could be read ({error}). Container logs:\n"
                + _logs(container)
            ) from error
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


def _owner_gone(owner: str) -> bool:
    host, _, pid = owner.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's session: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return int(pid) == os.getpid()


def remove_leftovers() -> list[str]:
    """Remove containers this process labelled, and those of sessions that died (e.g. a killed run)."""
    removed = []
    for container in client().containers.list(all=True, filters={"label": LABEL}):
        owner = container.labels.get(OWNER_LABEL, "")
        if owner == OWNER or _owner_gone(owner):
            with suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True, v=True)
                removed.append(container.name)
    return removed


@contextmanager
def created_container(
    service: str, image: str, cpus: float, env: Mapping[str, str] | None = None, **docker_kwargs: Any
) -> Iterator[Container]:
    """Create ``image`` as :func:`run_service` would (labelled, ``cpus`` CPUs, its port published on a port the
    engine picks) but do not start it, so a test can copy files in (``put_archive``) first, then start it and watch
    it without waiting for health; removed in all cases."""
    port = SERVICES[service].port
    container = client().containers.create(
        image,
        environment=dict(env or {}),
        nano_cpus=int(cpus * 1e9),
        labels={LABEL: service, OWNER_LABEL: OWNER},
        ports={f"{port}/tcp": None},
        **docker_kwargs,
    )
    try:
        yield container
    finally:
        with suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)


def wait_for_exit(container: Container, timeout_s: float, poll_s: float = 0.02) -> int | None:
    """The container's exit code once it has stopped, or None if it is still running after ``timeout_s``."""
    deadline = time.perf_counter() + timeout_s
    while True:
        container.reload()
        if container.status in ("exited", "dead"):
            return int(container.attrs["State"]["ExitCode"])
        if time.perf_counter() >= deadline:
            return None
        time.sleep(poll_s)


def run_time_s(container: Container) -> float | None:
    """How long the stopped container's process ran, start to exit, by the engine's own clock."""
    container.reload()
    state = container.attrs["State"]
    if container.status not in ("exited", "dead"):
        return None
    return max(0.0, (_engine_time(state["FinishedAt"]) - _engine_time(state["StartedAt"])).total_seconds())


def _engine_time(stamp: str) -> datetime:
    """Docker's RFC 3339 time with nanoseconds → datetime (microseconds)."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction or '0')[:6]:0<6}+00:00")
