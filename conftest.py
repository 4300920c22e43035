"""Shared pytest wiring: thin fixtures over the library."""

from __future__ import annotations

import logging
import os

# The onnxruntime wheel records telemetry (files under ~/.cache/Microsoft) unless told not to.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from model_serving.artifacts import Artifacts, ModelSource, export
from model_serving.corpus import benchmark_payload_paths, corpus_paths
from model_serving.paths import DEFAULT_MODEL_DIR
from model_serving.services import SERVICE_NAMES
from model_serving.sources.options import add_model_uri_options

log = logging.getLogger(__name__)

# Progress goes through logging, shown live by pytest (log_cli in pyproject.toml). INFO is shown from the suite's
# own code only: testcontainers, docker, urllib3, httpx (a line per request), locust and torch log at INFO too.
_OWN_LOGGER = "model_serving"
_OWN_FILES = (str(Path(__file__).parent / "tests"), __file__)


def _shown_live(record: logging.LogRecord) -> bool:
    """WARNING and above from everyone; INFO from model_serving's loggers and from the tests."""
    if record.levelno >= logging.WARNING:
        return True
    return record.name.split(".")[0] == _OWN_LOGGER or record.pathname.startswith(_OWN_FILES)


def pytest_sessionstart(session: pytest.Session) -> None:
    # The logging plugin registers itself after conftest's pytest_configure; by session start its handler exists.
    plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    if plugin is not None:
        plugin.log_cli_handler.addFilter(_shown_live)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("model-serving")
    group.addoption(
        "--cpus", type=float, default=None, help="CPU limit of every service container (default: 1, or the profile's)"
    )
    # Benchmarks (`pytest -m perf`); see tests/perf.
    group.addoption(
        "--profile",
        default="default",
        help="perf profile: check (tests of the suite), smoke, default, sizes (default over five payload sizes) "
        "or upstream (default: default)",
    )
    group.addoption("--requests", type=int, help="ab -n (default: the profile's)")
    group.addoption("--concurrency", type=int, help="ab -c (default: the profile's)")
    group.addoption("--startup-runs", type=int, help="start-ups per service (default: the profile's)")
    group.addoption(
        "--memory-requests", type=int, help="requests of the memory-over-requests run (default: the profile's)"
    )
    group.addoption("--rounds", type=int, help="interleaved load rounds per service (default: the profile's)")
    group.addoption(
        "--ratio-bound",
        default="centre",
        help="check ratio thresholds against a ratio's centre (default) or its 95 %% interval's end: interval",
    )
    group.addoption("--payload-sizes", help="payload sizes to load, e.g. 320x240,1920x1080 (default: the profile's)")
    group.addoption("--slo-ms", type=float, help="the p99 bound of the capacity search, ms (default: 1000)")
    group.addoption("--services", help="comma-separated services to measure (default: all three)")
    group.addoption(
        "--target",
        action="append",
        default=[],
        metavar="NAME=URL,...",
        help="measure services already running at these URLs, e.g. onnx-serving=http://127.0.0.1:8080 (only those; "
        "nothing is built or started; figures that need the suite's own containers are reported as not available)",
    )
    add_model_uri_options(group.addoption)
    group.addoption("--payload", type=Path, help="a JPEG or PNG to send instead of the generated 1200x727 JPEG")
    group.addoption(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a ratio threshold of [tool.model-serving.thresholds], e.g. rps.onnx_over_torch.min=1.2",
    )
    group.addoption("--reports-dir", type=Path, help="where reports go (default: reports/ under the project)")


@pytest.fixture(scope="session")
def default_artifacts() -> Artifacts:
    """The default model's artifacts, exported once (and reused across runs while the recipe is unchanged)."""
    export(DEFAULT_MODEL_DIR, ModelSource())
    return Artifacts.open(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="session")
def corpus() -> list[Path]:
    return corpus_paths()


@pytest.fixture(scope="session")
def benchmark_jpeg() -> Path:
    return benchmark_payload_paths()[0]


@pytest.fixture(scope="session")
def benchmark_body() -> bytes:
    return benchmark_payload_paths()[1].read_bytes()


@pytest.fixture(scope="session")
def cpus(request: pytest.FixtureRequest) -> float:
    return float(request.config.getoption("--cpus") or 1.0)


@pytest.fixture(scope="session")
def service_images(default_artifacts: Artifacts) -> Iterator[dict]:
    """Every service image, built once per session (or reused when its content hash is unchanged)."""
    from model_serving.docker.build import build_service_images
    from model_serving.docker.containers import remove_leftovers

    images = build_service_images(SERVICE_NAMES, default_artifacts.directory)
    yield images
    # Belt and braces: every fixture removes its own container; this catches anything a crash left behind.
    left = remove_leftovers()
    if left:
        log.info(f"removed leftover containers: {', '.join(left)}")


@pytest.fixture(scope="session")
def services(service_images: dict, cpus: float) -> Iterator[dict]:
    """All services running side by side for the whole session; every container removed at the end."""
    from model_serving.docker.containers import run_service

    with ExitStack() as stack:
        running = {}
        for name, image in service_images.items():
            running[name] = stack.enter_context(run_service(name, image.tag, cpus))
            log.info(f"{name} healthy at {running[name].base_url} after {running[name].startup_s:.2f} s")
        yield running
