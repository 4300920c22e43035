"""CPU per request by thread: which of a service's threads spent what over a load run.

Pure, over the texts of Linux's ``/proc/<pid>/task/<tid>/{comm,schedstat}`` (recorded in tests); reading them for a
container is load/thread_sampler. Each thread has a role:

- ``server``: what speaks HTTP. The Python services' event loop (a process's main thread) and actix-web's threads.
- ``worker``: the one thread a worker process decodes and infers on. ``predict`` in the Python services (they name
  it), ``inference-<n>`` in rust-onnx-serving.
- ``other``: the rest (start-up, thread pools the runtimes keep, a supervisor).

A service's in-process bench runs the worker's path alone, so in-process ÷ the total here is about its efficiency:
the server's CPU and the worker's excess over the bench are where a served request costs more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ROLES = ("server", "worker", "other")
_WORKER_NAMES = ("predict", "inference")  # serving_common.app's executor; rust_onnx_serving/src/inference.rs
_SERVER_NAMES = ("actix",)  # actix-rt|system…, actix-server …: the kernel keeps 15 bytes of a name


@dataclass(frozen=True)
class ThreadTime:
    """One thread and its time on a CPU so far (ns)."""

    pid: int
    tid: int
    name: str
    cpu_ns: int

    @property
    def role(self) -> str:
        if self.name.startswith(_WORKER_NAMES):
            return "worker"
        if self.name.startswith(_SERVER_NAMES) or (self.tid == self.pid and self.name.startswith("python")):
            return "server"
        return "other"


def parse_schedstat(text: str) -> int:
    """``/proc/.../schedstat``: "<ns on a CPU> <ns waiting for one> <time slices>"; the first field."""
    fields = text.split()
    if len(fields) != 3 or not all(field.isdigit() for field in fields):
        raise ValueError(f"not a schedstat line: {text!r}")
    return int(fields[0])


@dataclass(frozen=True)
class ThreadCpu:
    """CPU ms per request over ``requests``, by thread (in the order of most CPU) and by role."""

    requests: int
    threads: tuple[tuple[str, str, float], ...]  # (name, role, ms per request)

    def by_role(self) -> dict[str, float]:
        totals = dict.fromkeys(ROLES, 0.0)
        for _, role, ms in self.threads:
            totals[role] += ms
        return {role: round(ms, 4) for role, ms in totals.items()}

    def as_dict(self) -> dict[str, object]:
        by_role = self.by_role()
        return {
            "requests": self.requests,
            "ms_per_request": {**by_role, "total": round(sum(by_role.values()), 4)},
            "threads": [{"name": name, "role": role, "ms_per_request": ms} for name, role, ms in self.threads],
        }


def cpu_per_request(before: Mapping[int, ThreadTime], after: Mapping[int, ThreadTime], requests: int) -> ThreadCpu:
    """Each thread's CPU between two readings (by tid) ÷ ``requests``.

    A thread that started between them counts from zero; one that ended is gone from ``after`` with its time, so
    a service whose threads come and go is under-counted (none of the three does).
    """
    if requests <= 0:
        raise ValueError(f"requests must be positive, got {requests}")
    rows = []
    for tid, thread in after.items():
        earlier = before.get(tid)
        start = earlier.cpu_ns if earlier is not None and earlier.name == thread.name else 0
        rows.append((thread.name, thread.role, round((thread.cpu_ns - start) / 1e6 / requests, 4)))
    rows.sort(key=lambda row: -row[2])
    return ThreadCpu(requests, tuple(rows))
