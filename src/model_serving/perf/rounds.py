"""Interleaved rounds: several containers started and warmed once, then R rounds of one ab run each, the order
rotating from round to round, so that a slow minute of this machine falls on every target and not on one.

Targets are what is compared: the three services (the load rounds), or one service beside the usual
implementation of its strategy (model_serving.usual.compare). The containers idle while another is loaded: each
has its own CPU limit, and an idle service takes next to no CPU, so the measured one is not disturbed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from model_serving.docker.containers import RunningService, run_service
from model_serving.load.ab_parser import AbReport, LoadOutcome
from model_serving.load.ab_runner import run_ab
from model_serving.metrics.thread_cpu import ROLES, ThreadCpu
from model_serving.perf.endpoint import Endpoint
from model_serving.perf.measure import warm_up, warm_up_at_concurrency

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """A container to load: the service whose API and port it has, its image, and environment overrides."""

    service: str
    image: str
    env: Mapping[str, str] | None = None


@dataclass
class Rounds:
    """ab's report of each completed round per target; a target whose run failed is measured no further.

    ``limits``: where measured, the target's in-process req/s taken in its container right after each kept round,
    in the same order as ``reports`` (None where that bench failed), so that efficiency pairs two figures of one
    moment and one container. ``thread_cpu``: where the threads could be read, CPU per request by thread of each
    kept round.
    """

    reports: dict[str, list[AbReport]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    limits: dict[str, list[float | None]] = field(default_factory=dict)
    thread_cpu: dict[str, list[ThreadCpu]] = field(default_factory=dict)

    def record(self, label: str, outcome: LoadOutcome, index: int) -> None:
        """Keep round ``index``'s run of ``label``: its report, or why it failed (the target is measured no further)."""
        if outcome.ok and outcome.report is not None:
            self.reports.setdefault(label, []).append(outcome.report)
        else:
            self.reports.setdefault(label, [])
            self.failures[label] = f"round {index + 1}: {outcome.failure}"

    def record_limit(self, label: str, rps: float | None) -> None:
        """The in-process req/s measured right after ``label``'s last kept round (None: the bench failed)."""
        limits = self.limits.setdefault(label, [])
        if len(limits) != len(self.reports.get(label, [])) - 1:
            raise ValueError(f"{label}: an in-process rate for a round that was not kept")
        limits.append(rps)

    def mean_thread_cpu(self, label: str) -> dict[str, float | int] | None:
        """CPU ms per request by role, the mean over the rounds whose threads were read, and how many they were."""
        measured = self.thread_cpu.get(label, [])
        if not measured:
            return None
        by_role = [run.by_role() for run in measured]
        means: dict[str, float | int] = {role: round(sum(r[role] for r in by_role) / len(by_role), 4) for role in ROLES}
        means["total"] = round(sum(float(means[role]) for role in ROLES), 4)
        means["rounds"] = len(measured)
        return means

    def with_limits(self, label: str) -> list[tuple[float, float]]:
        """req/s and the in-process req/s of the same round, for the rounds that have both."""
        rates = zip(self.reports.get(label, []), self.limits.get(label, []), strict=False)
        return [(report.rps, limit) for report, limit in rates if limit is not None]

    def paired(self, first: str, second: str) -> list[tuple[float, float]]:
        """req/s of ``first`` and ``second`` in the rounds both completed (a round's two runs are minutes apart at
        most, so their ratio is of one moment)."""
        return [(a.rps, b.rps) for a, b in zip(self.reports.get(first, []), self.reports.get(second, []), strict=False)]


def rotated(items: Sequence[T], index: int) -> tuple[T, ...]:
    """``items`` in round ``index``'s order: rotated by one each round, so no target always has the fresher
    machine or always follows the same one."""
    if not items:
        return ()
    shift = index % len(items)
    return (*items[shift:], *items[:shift])


@contextmanager
def side_by_side(
    targets: Mapping[str, Target],
    cpus: float,
    body_path: Path,
    concurrency: int,
    warmup_requests: int,
    on_ready: Callable[[str, RunningService], None] | None = None,
) -> Iterator[dict[str, RunningService]]:
    """Every target started under ``cpus`` and warmed up (``on_ready`` sees each once it is warm); all
    containers are removed in all cases."""
    body = body_path.read_bytes()
    with ExitStack() as stack:
        running: dict[str, RunningService] = {}
        for label, target in targets.items():
            log.info(f"{label}: starting and warming up at {cpus} CPU")
            running[label] = stack.enter_context(run_service(target.service, target.image, cpus, target.env))
            warm_up(running[label], body, warmup_requests)
            warm_up_at_concurrency(running[label], body_path, concurrency)
            if on_ready is not None:
                on_ready(label, running[label])
        yield running


def run_rounds(
    targets: Mapping[str, Target],
    cpus: float,
    body_path: Path,
    requests: int,
    concurrency: int,
    rounds: int,
    warmup_requests: int,
    on_ready: Callable[[str, RunningService], None] | None = None,
) -> Rounds:
    """The targets side by side, then ``rounds`` rounds of ``ab -n requests -c concurrency`` against each."""
    with side_by_side(targets, cpus, body_path, concurrency, warmup_requests, on_ready) as running:
        return rounds_on(running, body_path, requests, concurrency, rounds)


def load_round(
    measured: Rounds,
    running: Mapping[str, Endpoint],
    label: str,
    body_path: Path,
    requests: int,
    concurrency: int,
    index: int,
    rounds: int,
) -> LoadOutcome:
    """Round ``index`` (of ``rounds``) for one target: ab against it, kept in ``measured``."""
    log.info(f"{label}: round {index + 1}/{rounds}, ab -n {requests} -c {concurrency}")
    outcome = run_ab(f"{running[label].base_url}/predict/", body_path, requests, concurrency, label)
    measured.record(label, outcome, index)
    return outcome


def rounds_on(
    running: Mapping[str, Endpoint],
    body_path: Path,
    requests: int,
    concurrency: int,
    rounds: int,
) -> Rounds:
    """``rounds`` rounds of ``ab -n requests -c concurrency`` against each of the ``running`` services in turn."""
    measured = Rounds({label: [] for label in running})
    for index in range(rounds):
        for label in rotated(list(running), index):
            if label in measured.failures:
                continue
            load_round(measured, running, label, body_path, requests, concurrency, index, rounds)
        log.info(
            f"round {index + 1}/{rounds}: "
            + ", ".join(
                f"{label} {measured.reports[label][-1].rps:.1f} req/s"
                for label in running
                if label not in measured.failures
            )
        )
    return measured
