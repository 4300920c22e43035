"""The local Docker engine seen as a remote one: a TCP forwarder to its socket, a way to run a command that can
reach the engine only through that forwarder, and a watch on the containers the command creates.

Used by ``test_remote_engine.py``. ``socat`` (Debian package ``socat``, installed by ``scripts/system-deps.sh``)
listens on a loopback port and forwards every connection to the engine's unix socket, so
``DOCKER_HOST=tcp://127.0.0.1:<port>`` behaves like an engine on another machine that happens to publish its
ports on 127.0.0.1: it sees no file of this machine except what is sent through its API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
from docker.context import ContextAPI

from model_serving.ports import free_ports

#: What the Docker SDK and CLI use when neither DOCKER_HOST nor a context says otherwise.
DEFAULT_SOCKET = "/var/run/docker.sock"
#: Variables that could lead a client to an engine other than DOCKER_HOST, or to another host for its ports.
ENGINE_VARIABLES = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONFIG",
    "MODEL_SERVING_ENGINE_HOST",
    "TC_HOST",
    "TESTCONTAINERS_HOST_OVERRIDE",
    "TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE",
    "TESTCONTAINERS_CONNECTION_MODE",
)


class ForwarderError(Exception):
    """The forwarder could not be started or never answered."""


def engine_socket() -> Path | None:
    """The unix socket of the engine this process uses (``DOCKER_HOST``, else the current Docker context, else
    the default path), resolved through symbolic links; None when the engine is not behind a local socket."""
    host = os.environ.get("DOCKER_HOST")
    if not host:
        with suppress(Exception):  # an unreadable CLI configuration means the default context
            context = ContextAPI.get_current_context()
            host = context.Host if context is not None else None
    parsed = urlparse(host or f"unix://{DEFAULT_SOCKET}")
    if parsed.scheme not in ("unix", "http+unix"):
        return None
    path = Path(parsed.path or DEFAULT_SOCKET)
    return path.resolve() if path.exists() else None


@dataclass
class Forwarder:
    """A running socat: ``url`` is what DOCKER_HOST should say; ``log`` is socat's own (``-d -d``) log."""

    port: int
    socket_path: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def connections(self) -> int:
        """Connections socat has accepted so far (one ``accepting connection from`` line each)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return sum("accepting connection from" in line for line in text.splitlines())


@contextmanager
def forwarded_engine(socket_path: Path, log: Path, timeout_s: float = 15.0) -> Iterator[Forwarder]:
    """socat from a free loopback port to ``socket_path``, yielded once the engine answers a ping through it;
    killed (and waited for) in all cases."""
    socat = shutil.which("socat")
    if socat is None:
        raise ForwarderError("socat is not installed: `apt-get install socat` (scripts/system-deps.sh does it)")
    (port,) = free_ports(1)
    command = [
        socat,
        "-d",
        "-d",
        "-lf",
        str(log),
        f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
        f"UNIX-CONNECT:{socket_path}",
    ]
    # Its own process group, so that the children it forks per connection go with it.
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        forwarder = Forwarder(port, socket_path, log, process)
        _wait_until_answering(forwarder, timeout_s)
        yield forwarder
    finally:
        _stop(process)


def _wait_until_answering(forwarder: Forwarder, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if forwarder.process.poll() is not None:
            log = forwarder.log.read_text(errors="replace") if forwarder.log.exists() else ""
            raise ForwarderError(f"socat exited with {forwarder.process.returncode}:\n{log}")
        try:
            remote = docker.DockerClient(base_url=forwarder.url, timeout=5)  # asks the engine's version
            answered = remote.ping()
            remote.close()
            if answered:
                return
        except (docker.errors.DockerException, OSError) as error:
            last_error = error
        time.sleep(0.1)
    raise ForwarderError(f"the engine did not answer through {forwarder.url} within {timeout_s:.0f} s: {last_error}")


def _stop(process: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait()


def remote_environment(base: Mapping[str, str], engine_url: str, docker_config: Path) -> dict[str, str]:
    """``base`` with the engine reachable only as ``engine_url``: every other way to name an engine removed, and
    ``DOCKER_CONFIG`` pointing at an empty folder (no CLI context, no ``currentContext``)."""
    environment = {key: value for key, value in base.items() if key not in ENGINE_VARIABLES}
    environment["DOCKER_HOST"] = engine_url
    environment["DOCKER_CONFIG"] = str(docker_config)
    return environment


def socket_hiding_prefix(socket_path: Path) -> list[str] | None:
    """A command prefix that runs what follows in a private mount namespace where ``socket_path`` (and so
    ``/var/run/docker.sock`` when it links there) is ``/dev/null``: nothing in it can reach the engine but through
    DOCKER_HOST. None when this machine does not allow it (neither root nor unprivileged user namespaces).

    The command is exec'd in place (no fork), so its process id is the one ``Popen`` reports.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    namespace = [unshare, "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        # A user namespace of its own, as root there (mount refuses anyone else); outside it is still this user.
        namespace[1:1] = ["--user", "--map-root-user"]
    prefix = [*namespace, "sh", "-c", 'mount --bind /dev/null "$0" && exec "$@"', str(socket_path)]
    probe = subprocess.run(
        [*prefix, "sh", "-c", 'test -c "$0"', str(socket_path)], capture_output=True, timeout=30, check=False
    )
    return prefix if probe.returncode == 0 else None


@dataclass
class CreatedContainer:
    """A container the watched process created, as the engine described it right after its creation."""

    id: str
    name: str
    binds: list[str]
    mounts: list[dict[str, Any]]
    inspected: bool

    @property
    def bind_mounts(self) -> list[str]:
        """Every host path the container would see, as ``source:destination``: ``HostConfig.Binds``, and mounts of
        type ``bind`` (the engine lists a bind in both)."""
        binds = {":".join(bind.split(":")[:2]) for bind in self.binds}
        binds |= {
            f"{m.get('Source')}:{m.get('Destination') or m.get('Target')}"
            for m in self.mounts
            if m.get("Type") == "bind"
        }
        return sorted(binds)


@dataclass
class ContainerWatch:
    """Containers created with ``label`` (``key=value``), each inspected as soon as its ``create`` event comes."""

    engine: docker.DockerClient
    label: str
    since: float
    created: dict[str, CreatedContainer] = field(default_factory=dict)

    def creations(self, until: float) -> set[str]:
        """The ids of every matching ``create`` event between ``since`` and ``until`` (a closed query, for a
        cross-check of what the live watch saw)."""
        events = self.engine.api.events(
            since=int(self.since), until=int(until) + 1, filters=self.filters(), decode=True
        )
        return {str(event["id"]) for event in events}

    def filters(self) -> dict[str, Any]:
        return {"type": "container", "event": "create", "label": self.label}

    def record(self, container_id: str, name: str) -> None:
        try:
            attributes = self.engine.api.inspect_container(container_id)
        except docker.errors.NotFound:
            self.created[container_id] = CreatedContainer(container_id, name, [], [], inspected=False)
            return
        binds = list((attributes.get("HostConfig") or {}).get("Binds") or [])
        mounts = list(attributes.get("Mounts") or []) + list((attributes.get("HostConfig") or {}).get("Mounts") or [])
        self.created[container_id] = CreatedContainer(container_id, name, binds, mounts, inspected=True)


@contextmanager
def watch_containers(engine: docker.DockerClient, label: str, since: float) -> Iterator[ContainerWatch]:
    """Watch ``create`` events (from ``since``, a Unix time) of containers labelled ``label`` in a thread; the
    stream is closed and the thread joined on exit."""
    watch = ContainerWatch(engine, label, since)
    stream = engine.api.events(since=int(since), filters=watch.filters(), decode=True)

    def follow() -> None:
        for event in stream:
            attributes = (event.get("Actor") or {}).get("Attributes") or {}
            watch.record(str(event["id"]), str(attributes.get("name", "")))

    thread = threading.Thread(target=follow, name="container-watch", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        time.sleep(0.5)  # the last events may still be on their way
        stream.close()
        thread.join(timeout=10)


def remove_containers(engine: docker.DockerClient, label: str) -> list[str]:
    """Remove every container labelled ``label`` (``key=value``); their names."""
    removed = []
    for container in engine.containers.list(all=True, filters={"label": label}):
        with suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True, v=True)
            removed.append(str(container.name))
    return removed
