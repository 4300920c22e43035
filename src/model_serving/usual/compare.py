"""Each service beside the usual implementation of its strategy: same CPU limit, same payload, same ab run, in
interleaved rounds (the order rotates each round) so that the machine's drift falls on all.

The three containers (ours, the usual one as written, the usual one tuned) are started and warmed once and stay up
for all the rounds (model_serving.perf.rounds); ab loads one at a time while the others idle. So a round is three
ab runs back to back, seconds apart, not three container starts: a ratio pairs measurements of one moment, which
on this machine (its speed drifts within minutes) is what makes it hold from run to run.

The usual implementation runs twice: as written (its libraries' default threads: one per core the container sees,
which on a CPU limit below the core count oversubscribes) and with ``THREADS`` = the CPU limit, the one setting
anyone deploying it should make. A ratio is the geometric mean of the rounds' paired ratios (ours ÷ usual).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from model_serving.client import predict_probabilities
from model_serving.docker.build import BuiltImage
from model_serving.docker.containers import RunningService
from model_serving.perf.rounds import Target, run_rounds
from model_serving.stats import Interval, ratio_interval


@dataclass
class UsualComparison:
    image: BuiltImage  # the usual implementation's image (its name, e.g. "torch-usual", is image.service)
    description: str
    rounds: list[dict[str, float]] = field(default_factory=list)  # req/s per side (SIDES) per round
    # The two answers' probabilities on the benchmark payload: how far the usual implementation is from the contract.
    max_abs_dp: float | None = None
    same_prediction: bool | None = None
    failure: str | None = None

    @property
    def usual(self) -> str:
        return self.image.service

    def ratio(self, side: str = "usual") -> Interval | None:
        """Ours ÷ ``side`` over the paired rounds, with its 95 % interval; None after a failure."""
        if self.failure is not None or not self.rounds:
            return None
        return ratio_interval([(r["ours"], r[side]) for r in self.rounds])


#: ours; the usual implementation as written; the usual implementation with threads = the CPU limit.
SIDES = ("ours", "usual", "usual_tuned")


def compare_with_usual(
    service: str,
    ours_tag: str,
    usual: BuiltImage,
    description: str,
    cpus: float,
    jpeg: bytes,
    body_path: Path,
    requests: int,
    concurrency: int,
    rounds: int,
    warmup_requests: int,
) -> UsualComparison:
    """``rounds`` rounds of one ab run per side (SIDES), the three containers up throughout; a failed run ends it
    with ``failure`` set."""
    comparison = UsualComparison(usual, description)
    labels = dict(zip(SIDES, (service, comparison.usual, f"{comparison.usual} (THREADS=CPU limit)"), strict=True))
    targets = {
        labels["ours"]: Target(service, ours_tag),
        labels["usual"]: Target(service, usual.tag),
        labels["usual_tuned"]: Target(service, usual.tag, {"THREADS": str(max(1, round(cpus)))}),
    }
    answers: dict[str, np.ndarray] = {}

    def ask(label: str, running: RunningService) -> None:
        with httpx.Client() as client:
            answers[label] = predict_probabilities(running.base_url, jpeg, client)

    measured = run_rounds(targets, cpus, body_path, requests, concurrency, rounds, warmup_requests, ask)
    if measured.failures:
        comparison.failure = "; ".join(f"{label}: {failure}" for label, failure in measured.failures.items())
        return comparison
    comparison.rounds = [{side: measured.reports[labels[side]][index].rps for side in SIDES} for index in range(rounds)]
    ours, usual_answer = answers[labels["ours"]], answers[labels["usual"]]
    comparison.max_abs_dp = round(float(np.abs(ours - usual_answer).max()), 6)
    comparison.same_prediction = bool(np.argmax(ours) == np.argmax(usual_answer))
    return comparison
