"""Reading the threads of a container's processes from the engine host's ``/proc``, for CPU per thread.

Only where the engine runs on this machine: a container's processes are the host's, so ``/proc/<pid>`` (the pid
the engine reports) is readable here when the suite runs as a user allowed to (root, or the containers' own). With
a remote engine (``DOCKER_HOST=tcp://…``) that pid means nothing here: :func:`container_threads` checks that the
process's cgroup names the container and says why not otherwise.
"""

from __future__ import annotations

from pathlib import Path

from docker.models.containers import Container

from model_serving.metrics.thread_cpu import ThreadTime, parse_schedstat

PROC = Path("/proc")


class ThreadsUnavailable(Exception):
    """The container's threads cannot be read from here; the message says why."""


def container_threads(container: Container, proc: Path = PROC) -> dict[int, ThreadTime]:
    """Every thread of the container's main process and its descendants, by tid."""
    container.reload()
    pid = int(container.attrs.get("State", {}).get("Pid") or 0)
    if pid <= 0:
        raise ThreadsUnavailable(f"the engine reports no process for container {container.short_id}")
    try:
        cgroup = (proc / str(pid) / "cgroup").read_text()
    except OSError as error:
        raise ThreadsUnavailable(
            f"the container's process {pid} is not readable here ({error}): remote engine?"
        ) from None
    if container.id not in cgroup:
        raise ThreadsUnavailable(
            f"process {pid} here is not the container's (its cgroup does not name {container.short_id}): remote engine?"
        )
    threads: dict[int, ThreadTime] = {}
    pending = [pid]
    while pending:
        process = pending.pop()
        try:
            tasks = sorted((proc / str(process) / "task").iterdir())
        except OSError:  # the process ended while it was read
            continue
        for task in tasks:
            try:
                name = (task / "comm").read_text().strip()
                cpu_ns = parse_schedstat((task / "schedstat").read_text())
            except OSError:  # the thread ended while it was read
                continue
            threads[int(task.name)] = ThreadTime(process, int(task.name), name, cpu_ns)
            pending += _children(task)
    return threads


def _children(task: Path) -> list[int]:
    """The processes this thread started (the uvicorn supervisor's workers); none where the kernel does not say."""
    try:
        return [int(child) for child in (task / "children").read_text().split()]
    except OSError:
        return []
