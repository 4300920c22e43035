"""What a benchmark run does: profiles, options and the ratio thresholds (configuration, not code)."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from model_serving.services import SERVICE_NAMES


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
    # Rounds are cheap (the containers stay up), and more short rounds beat fewer long ones on a drifting machine:
    # two default runs at 3 × 500 (2026-12-02) gave half-widths of 3–13 % (torch-usual tuned: 8 % and 24 %);
    # t(5)/√6 ÷ t(2)/√3 = 0.42 for the same requests. At 6 × 250 one run still gave ± 9.0 % for onnx-usual tuned
    # (its own req/s moved 54–68 between rounds while ours held 80–87); 10 rounds shrink an interval by
    # t(9)/√10 ÷ t(5)/√6 = 0.68 for a third more requests.
    usual_rounds: int = 10
    usual_requests: int = 200
    # "Load rounds": the services up side by side, R rounds of ab -n round_requests, interleaved (perf/rounds): the
    # req/s and latency intervals and the paired ratios the rps assertions use. Two default runs at 5 × 1000
    # (2026-12-02) gave paired half-widths of 4–7 % and 4–8 %, onnx/torch ± 8.4 % in the second: 8 rounds shrink an
    # interval by t(7)/√8 ÷ t(4)/√5 = 0.67. At 8 × 800 they came out at ± 1.9–2.8 % (2026-12-02): 500 requests a
    # round keep them well inside ± 8 % and pay for the usual comparison's extra rounds.
    rounds: int = 8
    round_requests: int = 500
    # After each load round, the in-process bench in the same container for this long, so that the rounds'
    # efficiency divides two figures of one moment and one container (0: not measured; efficiency then divides the
    # rounds by the one in-process rate of the load test, taken minutes apart in another container, where two
    # containers of one image differed by up to 15 % and the in-process rate moved ±5 % from run to run).
    round_in_process_seconds: float = 3.0
    # Concurrency sweep (closed loop, ab), beside the rounds: requests per level (at least 4 × c).
    sweep_concurrency: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    sweep_requests: int = 200
    # Open loop (oha, latency corrected): fixed arrival rates as fractions of each service's best sweep req/s.
    open_loop_fractions: tuple[float, ...] = (0.5, 0.8, 0.95)
    open_loop_seconds: float = 10.0
    open_loop_connections: int = 100
    # Capacity under a latency bound: the highest arrival rate whose corrected p99 ≤ slo_ms, by bisection over
    # [0.3, 1.2] × best req/s in capacity_steps open-loop runs of open_loop_seconds; a run is carried when the service
    # keeps up with it (answers ≥ 95 % of the rate) within the bound (curves.meets_bound).
    slo_ms: float = 1000.0
    capacity_steps: int = 5
    # Payload sizes: the same closed-loop load at photo-like JPEGs of these sizes (width, height).
    payload_sizes: tuple[tuple[int, int], ...] = ((320, 240), (1200, 727), (1920, 1080))
    size_requests: int = 300


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
        usual_rounds=3,
        usual_requests=150,
        rounds=2,
        round_requests=150,
        round_in_process_seconds=1.0,
        sweep_concurrency=(1, 8, 32),
        sweep_requests=40,
        open_loop_fractions=(0.5, 0.9),
        open_loop_seconds=3.0,
        capacity_steps=3,
        payload_sizes=((320, 240), (1200, 727)),
        size_requests=60,
    ),
    # Tests of the suite itself: every figure taken, each from a few requests, in about a minute for the three on
    # 2 cores. The numbers mean nothing; that the report holds them all is what a test run checks.
    "check": Profile(
        "check",
        requests=60,
        concurrency=8,
        startup_runs=2,
        cpus=1.0,
        in_process_seconds=1.0,
        warmup_requests=5,
        held_concurrency=32,
        memory_requests=60,
        memory_batches=2,
        requests_c1=10,
        usual_rounds=2,
        usual_requests=30,
        rounds=1,
        round_requests=40,
        round_in_process_seconds=0.5,
        sweep_concurrency=(1, 4),
        sweep_requests=16,
        open_loop_fractions=(0.5,),
        open_loop_seconds=1.0,
        capacity_steps=2,
        payload_sizes=((320, 240),),
        size_requests=16,
    ),
    # The README's main job, figures worth comparing: 18–29 minutes on a 2-core machine from cached images, as fast
    # as the machine is at the time (fresh clones: 23:44 at 6 usual rounds of 250 and 8 load rounds of 800; 21:02 and
    # 17:42 at these on 2026-12-02, 27:38 and 28:20 on 2026-12-04 with torch-serving ~30 % slower).
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
# The default profile over the full range of payload sizes (`--profile sizes`).
PROFILES["sizes"] = replace(
    PROFILES["default"],
    name="sizes",
    payload_sizes=((320, 240), (640, 480), (1200, 727), (1920, 1080), (4000, 3000)),
)


@dataclass(frozen=True)
class RunConfig:
    profile: Profile
    services: tuple[str, ...]
    payload: Path
    thresholds: dict[str, float]
    # Which figure of a ratio with an interval a threshold is checked against: its centre, or the interval's end
    # on the threshold's side (a .min against the low end, a .max against the high end).
    ratio_bound: str = "centre"
    # --target: the services are measured where they already run (name → base URL, perf/target); None: the suite
    # builds and starts them.
    targets: dict[str, str] | None = None

    def describe(self) -> dict[str, Any]:
        """The run's settings as the report records them: the profile's every field, then the run's own."""
        settings = asdict(self.profile)
        return {
            "profile": settings.pop("name"),
            **settings,
            "services": list(self.services),
            "payload": str(self.payload),
            "thresholds": self.thresholds,
            "ratio_bound": self.ratio_bound,
            "targets": dict(self.targets) if self.targets else None,
        }


def profile_with(
    name: str,
    requests: int | None = None,
    concurrency: int | None = None,
    cpus: float | None = None,
    startup_runs: int | None = None,
    memory_requests: int | None = None,
    rounds: int | None = None,
    payload_sizes: tuple[tuple[int, int], ...] | None = None,
    slo_ms: float | None = None,
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
        "rounds": rounds,
        "payload_sizes": payload_sizes,
        "slo_ms": slo_ms,
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


RATIO_BOUNDS = ("centre", "interval")


def check_ratio_bound(value: str) -> str:
    if value not in RATIO_BOUNDS:
        raise ValueError(f"--ratio-bound {value!r}: choose {' or '.join(RATIO_BOUNDS)}")
    return value


def parse_threshold_option(text: str) -> tuple[str, float]:
    """``name=value`` from ``--threshold``."""
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"--threshold takes name=value, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError as error:
        raise ValueError(f"--threshold {name}: {value!r} is not a number") from error


def parse_services(text: str | None) -> tuple[str, ...]:
    """``--services a,b`` (of ``pytest -m perf`` and ``model-serving build``) → the services named, in the order
    given; every service when ``text`` is empty. :class:`ValueError` names any unknown one."""
    if not text:
        return SERVICE_NAMES
    chosen = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in chosen if name not in SERVICE_NAMES]
    if unknown or not chosen:
        raise ValueError(
            f"--services: unknown {', '.join(unknown) or repr(text)}; choose from {', '.join(SERVICE_NAMES)}"
        )
    return chosen
