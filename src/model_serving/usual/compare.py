"""Each service beside the usual implementation of its strategy: same CPU limit, same payload, same ab run, one
container at a time, in interleaved rounds (the order rotates each round) so that the machine's drift falls on all.

The usual implementation runs twice: as written (its libraries' default threads: one per core the container sees,
which on a CPU limit below the core count oversubscribes) and with ``THREADS`` = the CPU limit, the one setting
anyone deploying it should make. A ratio is the geometric mean of the rounds' paired ratios (ours ÷ usual).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from model_serving.client import predict_probabilities
from model_serving.docker.build import BuiltImage
from model_serving.docker.containers import run_service
from model_serving.load.ab_runner import run_ab
from model_serving.perf.measure import warm_up, warm_up_at_concurrency
from model_serving.stats import Interval, ratio_interval

Progress = Callable[[str], None]


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


def round_order(index: int) -> tuple[str, ...]:
    """The order of the sides in round ``index``: rotated, so no side always has the fresher machine."""
    shift = index % len(SIDES)
    return SIDES[shift:] + SIDES[:shift]


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
    progress: Progress,
) -> UsualComparison:
    """``rounds`` paired ab runs of the two images; a failed run ends it with ``failure`` set."""
    comparison = UsualComparison(usual, description)
    tags = {"ours": ours_tag, "usual": usual.tag, "usual_tuned": usual.tag}
    environments = {"usual_tuned": {"THREADS": str(max(1, round(cpus)))}}
    body = body_path.read_bytes()
    answers: dict[str, np.ndarray] = {}
    for index in range(rounds):
        measured: dict[str, float] = {}
        for side in round_order(index):
            label = {"ours": service, "usual": comparison.usual}.get(side, f"{comparison.usual} (THREADS=CPU limit)")
            progress(f"{label}: round {index + 1}/{rounds}, ab -n {requests} -c {concurrency} at {cpus} CPU")
            with run_service(service, tags[side], cpus, environments.get(side)) as running:
                warm_up(running, body, warmup_requests)
                warm_up_at_concurrency(running, body_path, concurrency)
                if side not in answers:
                    with httpx.Client() as client:
                        answers[side] = predict_probabilities(running.base_url, jpeg, client)
                outcome = run_ab(f"{running.base_url}/predict/", body_path, requests, concurrency, label, progress)
            if not outcome.ok or outcome.report is None:
                comparison.failure = f"{label}: {outcome.failure}"
                return comparison
            measured[side] = outcome.report.rps
        comparison.rounds.append(measured)
        progress(
            f"{service}: {measured['ours']:.1f} req/s, {comparison.usual}: {measured['usual']:.1f} req/s as written, "
            f"{measured['usual_tuned']:.1f} req/s with THREADS = CPU limit"
        )
    ours, usual = answers["ours"], answers["usual"]
    comparison.max_abs_dp = round(float(np.abs(ours - usual).max()), 6)
    comparison.same_prediction = bool(np.argmax(ours) == np.argmax(usual))
    return comparison
