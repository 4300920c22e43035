"""What a benchmark run does: profiles, options and the ratio thresholds (configuration, not code)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from model_serving.docker.build import SERVICES as SERVICE_SPECS

SERVICES = tuple(SERVICE_SPECS)  # in the order reports show them


@dataclass(frozen=True)
class Profile:
    name: str
    requests: int  # ab -n
    concurrency: int  # ab -c
    startup_runs: int
    cpus: float
    in_process_seconds: float
    warmup_requests: int = 20
    # "Load held": a second ab run at high concurrency that must finish with no failed or non-2xx request.
    held_concurrency: int = 200
    # "Memory over requests": a long run in batches, memory read at rest after each; a leak shows as growth
    # after the first batch (which allocates the working set).
    memory_requests: int = 2500
    memory_batches: int = 5
    # "Where the time goes" at c=1: no queueing, so the stages add up to the service time.
    requests_c1: int = 100
    # "Against the usual implementation": paired ab runs, each service beside the usual way of writing its strategy.
    usual_rounds: int = 2
    usual_requests: int = 1000


PROFILES = {
    # CI: proves the machinery end to end in minutes; the figures are indicative only.
    "smoke": Profile(
        "smoke",
        requests=300,
        concurrency=50,
        startup_runs=3,
        cpus=1.0,
        in_process_seconds=3.0,
        memory_requests=500,
        requests_c1=30,
        usual_rounds=1,
        usual_requests=200,
    ),
    # The README's main job: 11–16 minutes on a 2-core machine (11:19 in a fast hour, 15:36 in a slow one),
    # figures worth comparing.
    "default": Profile("default", requests=2000, concurrency=50, startup_runs=5, cpus=1.0, in_process_seconds=10.0),
    # Upstream's setup (N=40000, C=50, 15 start-ups, 4 CPUs), for bigger machines.
    "upstream": Profile(
        "upstream",
        requests=40000,
        concurrency=50,
        startup_runs=15,
        cpus=4.0,
        in_process_seconds=20.0,
        memory_requests=10000,
    ),
}


@dataclass(frozen=True)
class RunConfig:
    profile: Profile
    services: tuple[str, ...]
    payload: Path
    thresholds: dict[str, float]

    def describe(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "requests": self.profile.requests,
            "concurrency": self.profile.concurrency,
            "startup_runs": self.profile.startup_runs,
            "cpus": self.profile.cpus,
            "in_process_seconds": self.profile.in_process_seconds,
            "warmup_requests": self.profile.warmup_requests,
            "held_concurrency": self.profile.held_concurrency,
            "memory_requests": self.profile.memory_requests,
            "memory_batches": self.profile.memory_batches,
            "requests_c1": self.profile.requests_c1,
            "usual_rounds": self.profile.usual_rounds,
            "usual_requests": self.profile.usual_requests,
            "services": list(self.services),
            "payload": str(self.payload),
            "thresholds": self.thresholds,
        }


def profile_with(
    name: str,
    requests: int | None = None,
    concurrency: int | None = None,
    cpus: float | None = None,
    startup_runs: int | None = None,
    memory_requests: int | None = None,
) -> Profile:
    """A named profile with any of its numbers overridden."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    overrides = {
        "requests": requests,
        "concurrency": concurrency,
        "cpus": cpus,
        "startup_runs": startup_runs,
        "memory_requests": memory_requests,
    }
    return replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})


def load_thresholds(pyproject: Path, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """``[tool.model-serving.thresholds]`` from pyproject.toml, then command-line overrides."""
    thresholds: dict[str, float] = {}
    if pyproject.is_file():
        table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("model-serving", {}).get("thresholds", {})
        thresholds.update({str(k): float(v) for k, v in table.items()})
    thresholds.update(overrides or {})
    return thresholds


def parse_threshold_option(text: str) -> tuple[str, float]:
    """``name=value`` from ``--threshold``."""
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"--threshold takes name=value, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError as error:
        raise ValueError(f"--threshold {name}: {value!r} is not a number") from error
