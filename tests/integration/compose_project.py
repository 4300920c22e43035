"""Running the repository's ``docker-compose.yaml``: find a compose command, bring a project up, wait until every
service answers, always take it down.

Either Compose works: the v2 plugin (``docker compose``) or the Python docker-compose 1.29 (``docker-compose``).
``MODEL_SERVING_COMPOSE`` names the command to use (e.g. ``docker-compose``), otherwise the plugin is preferred.
The file is configured only through environment variables (images, host ports, host address, CPU limit), which
:func:`compose_environment` spells out, so a run can use the images it built and ports that are free.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from docker.models.containers import Container

from model_serving.docker.containers import wait_until_healthy
from model_serving.docker.engine import client, engine_host
from model_serving.services import REPOSITORY_ROOT, SERVICES

log = logging.getLogger(__name__)

COMPOSE_FILE = REPOSITORY_ROOT / "docker-compose.yaml"
COMPOSE_ENV = "MODEL_SERVING_COMPOSE"
# The variables docker-compose.yaml reads, per service.
IMAGE_VARIABLES = {name: f"{name.upper().replace('-', '_')}_IMAGE" for name in SERVICES}
PORT_VARIABLES = {name: f"{name.upper().replace('-', '_')}_PORT" for name in SERVICES}
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_PROJECT_LABEL = "com.docker.compose.project"
_SERVICE_LABEL = "com.docker.compose.service"


class ComposeError(Exception):
    """A compose command failed, or a service did not become healthy; the message carries output and logs."""


def compose_command() -> tuple[str, ...] | None:
    """The compose command to run, or None when there is none: ``$MODEL_SERVING_COMPOSE``, else ``docker compose``
    (the v2 plugin) if it answers ``version``, else ``docker-compose`` if installed."""
    configured = os.environ.get(COMPOSE_ENV)
    if configured:
        return tuple(shlex.split(configured))
    if shutil.which("docker") and _answers(("docker", "compose", "version")):
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    return None


def _answers(command: tuple[str, ...]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def compose_environment(images: Mapping[str, str], ports: Mapping[str, int], cpus: float) -> dict[str, str]:
    """The variables of docker-compose.yaml for these image tags, host ports and CPU limit.

    Ports are published on loopback when the engine is local, on every interface when it is remote (its
    loopback would be out of reach from here).
    """
    host_ip = "127.0.0.1" if engine_host() in _LOOPBACK else "0.0.0.0"
    env = {"CPUS": f"{cpus:g}", "HOST_IP": host_ip}
    env.update({IMAGE_VARIABLES[name]: tag for name, tag in images.items()})
    env.update({PORT_VARIABLES[name]: str(port) for name, port in ports.items()})
    return env


@dataclass(frozen=True)
class ComposedService:
    service: str
    container: Container
    base_url: str


@dataclass(frozen=True)
class ComposeProject:
    """One compose project: the command, the file, a project name and the variables the file reads."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ("docker-compose",)
    file: Path = COMPOSE_FILE

    def run(self, *args: str, timeout_s: float = 300.0) -> str:
        """Run ``<compose> -f FILE -p NAME ARGS...``; its output, or :class:`ComposeError` with that output."""
        argv = [*self.command, "-f", str(self.file), "-p", self.name, *args]
        try:
            result = subprocess.run(
                argv,
                env={**os.environ, **self.env},
                cwd=self.file.parent,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise ComposeError(f"`{shlex.join(argv)}` did not finish within {timeout_s:.0f} s") from error
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise ComposeError(f"`{shlex.join(argv)}` exited {result.returncode}:\n{output}")
        return output

    def validate(self) -> None:
        self.run("config", "-q", timeout_s=60)

    def containers(self) -> dict[str, Container]:
        """The project's containers by service name (from the labels both Compose versions set)."""
        found = client().containers.list(all=True, filters={"label": f"{_PROJECT_LABEL}={self.name}"})
        return {container.labels[_SERVICE_LABEL]: container for container in found}

    def logs(self) -> str:
        try:
            return self.run("logs", "--no-color", timeout_s=60)
        except ComposeError as error:
            return f"(logs unavailable: {error})"

    def down(self) -> None:
        self.run("down", "--volumes", "--remove-orphans", timeout_s=180)


@contextmanager
def compose_up(
    project: ComposeProject, ports: Mapping[str, int], timeout_s: float = 180.0
) -> Iterator[dict[str, ComposedService]]:
    """``up -d``; yield every service once it answers 200 on ``GET /`` at its host port; ``down`` in all cases."""
    try:
        started = time.monotonic()
        log.info(f"compose: {project.name}: up -d ({shlex.join(project.command)})")
        project.run("up", "-d", timeout_s=timeout_s)
        containers = project.containers()
        if set(containers) != set(ports):
            raise ComposeError(f"{project.name}: expected services {sorted(ports)}, found {sorted(containers)}")
        running = {}
        deadline = started + timeout_s
        for name, port in ports.items():
            url = f"http://{engine_host()}:{port}"
            if wait_until_healthy(f"{url}/", deadline - time.monotonic(), _is_running(containers[name])) is None:
                raise ComposeError(
                    f"{project.name}: {name} did not answer 200 on GET {url}/ within {timeout_s:.0f} s of `up`."
                    f" Logs:\n{project.logs()}"
                )
            log.info(f"compose: {name} answers at {url} ({time.monotonic() - started:.1f} s after up)")
            running[name] = ComposedService(name, containers[name], url)
        yield running
    finally:
        log.info(f"compose: {project.name}: down --volumes --remove-orphans")
        project.down()


def _is_running(container: Container) -> Callable[[], bool]:
    def check() -> bool:
        container.reload()
        return bool(container.status in ("created", "running"))

    return check


def wait_for_docker_health(container: Container, timeout_s: float, poll_s: float = 0.5) -> str:
    """The container's Docker health status once it is no longer ``starting`` (or when the time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        container.reload()
        status = str(container.attrs["State"].get("Health", {}).get("Status", "none"))
        if status != "starting" or time.monotonic() >= deadline:
            log.info(f"compose: {container.name}: health {status}")
            return status
        time.sleep(poll_s)
