"""docker-compose.yaml runs the three services as the suite does: the images of this run, under the same CPU limit,
read-only, healthy, answering the same prediction. Runs under a unique project name on free host ports and always
takes the project down.

The same project is then measured where it runs: `pytest -m perf --target ...`, in a pytest subprocess with a small
profile, measures the compose services and builds and starts nothing (its Docker engine is unreachable: any build or
container start would fail the run). The written report.json holds the load, stage, rounds, sweep, open-loop and
capacity figures of all three and names the figures it could not take. (One project for both: brought up once.)"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from compose_project import (
    ComposedService,
    ComposeProject,
    compose_command,
    compose_environment,
    compose_up,
    wait_for_docker_health,
)

from model_serving.perf.target import UNAVAILABLE
from model_serving.ports import free_ports
from model_serving.report.schema import validate_report
from model_serving.services import REPOSITORY_ROOT, SERVICE_NAMES

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

COMMAND = compose_command()
requires_compose = pytest.mark.skipif(
    COMMAND is None, reason="neither `docker compose` (v2 plugin) nor `docker-compose` is installed"
)
_JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return dict(zip(SERVICE_NAMES, free_ports(len(SERVICE_NAMES), host=""), strict=True))


@pytest.fixture(scope="module")
def project(service_images, cpus, ports) -> ComposeProject:
    assert COMMAND is not None
    images = {name: image.tag for name, image in service_images.items()}
    env = compose_environment(images, ports, cpus)
    return ComposeProject(f"model-serving-compose-{secrets.token_hex(4)}", env, COMMAND)


@pytest.fixture(scope="module")
def composed(project, ports) -> Iterator[dict[str, ComposedService]]:
    with compose_up(project, ports) as running:
        yield running


@requires_compose
def test_the_compose_file_is_valid(project):
    project.validate()


@requires_compose
def test_compose_runs_the_three_services_like_the_suite(composed, service_images, cpus, benchmark_body):
    assert set(composed) == set(SERVICE_NAMES)
    predictions = {}
    for name, service in composed.items():
        response = httpx.post(f"{service.base_url}/predict/", content=benchmark_body, headers=_JSON, timeout=60)
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
        predictions[name] = response.json()["prediction"]
    log.info(f"compose: predictions {predictions}")
    assert len(set(predictions.values())) == 1, predictions

    for name, service in composed.items():
        service.container.reload()
        host_config = service.container.attrs["HostConfig"]
        assert service.container.image.id == service_images[name].image_id, f"{name} does not run this run's image"
        assert host_config["NanoCpus"] == int(cpus * 1e9), f"{name}: NanoCpus {host_config['NanoCpus']}"
        assert host_config["ReadonlyRootfs"] is True, name
        assert service.container.attrs["Config"]["User"] == "10001:10001", name


@requires_compose
def test_every_compose_healthcheck_reports_healthy(composed):
    # The first probe runs one interval (10 s) after start; the services already answer GET /.
    statuses = {name: wait_for_docker_health(s.container, 60) for name, s in composed.items()}
    assert statuses == dict.fromkeys(SERVICE_NAMES, "healthy")


# --- pytest -m perf --target, against the compose services ------------------------------------------------------

# The check profile: every figure from a few requests (about a minute for the three on 2 cores).
PERF_ARGS = (
    "--profile",
    "check",
    "--benchmark-disable",  # nothing saved to .benchmarks
    "-p",
    "no:cacheprovider",
)
PERF_TIMEOUT_S = 420
# The measurements that need the suite's own containers: skipped, with the reason, in a --target run.
CONTAINER_TESTS = ("test_startup", "test_memory_over_requests", "test_against_usual_implementation")


@pytest.fixture(scope="module")
def target_run(composed, tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The perf suite against the compose services, as a user runs it, with no Docker engine within its reach."""
    folder = tmp_path_factory.mktemp("target-run")
    target = ",".join(f"{name}={service.base_url}" for name, service in composed.items())
    argv = [sys.executable, "-m", "pytest", "-m", "perf", "tests/perf", "--target", target, *PERF_ARGS]
    argv += ["--reports-dir", str(folder / "reports"), f"--junitxml={folder / 'junit.xml'}"]
    env = {**os.environ, "DOCKER_HOST": f"unix://{folder / 'no-engine.sock'}"}
    env.pop("MODEL_SERVING_ENGINE_HOST", None)
    log.info(f"target run: pytest -m perf --target {target} {' '.join(PERF_ARGS)}")
    started = time.monotonic()
    result = subprocess.run(
        argv, cwd=REPOSITORY_ROOT, env=env, capture_output=True, text=True, timeout=PERF_TIMEOUT_S, check=False
    )
    log.info(f"target run: exit {result.returncode} after {time.monotonic() - started:.0f} s")
    return result, folder


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Test id → (passed / failed / error / skipped, message) from pytest's JUnit XML."""
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        state, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            if (element := case.find(kind)) is not None:
                state, message = kind.replace("failure", "failed"), element.get("message", "")
        outcomes[case.get("name", "")] = (state, message)
    return outcomes


def _report(folder: Path) -> dict:
    return json.loads((folder / "reports" / "latest" / "report.json").read_text())


@requires_compose
def test_a_target_run_measures_the_compose_services_and_starts_nothing(target_run):
    result, folder = target_run
    tail = (result.stdout + result.stderr)[-4000:]
    assert (folder / "junit.xml").is_file(), f"pytest did not run (exit {result.returncode}):\n{tail}"
    outcomes = _outcomes(folder / "junit.xml")
    assert outcomes, tail
    # Whether the measured ratios meet pyproject's thresholds is the machine's business, not this test's.
    broken = {
        name: outcome
        for name, outcome in outcomes.items()
        if outcome[0] in ("failed", "error") and name != "test_ratio_thresholds"
    }
    assert not broken, f"{broken}\n{tail}"
    for name, (state, message) in outcomes.items():
        if name.startswith(CONTAINER_TESTS):
            assert state == "skipped", (name, state, message)
            assert "--target: the service was not started by the suite" in message, (name, message)
        elif name != "test_ratio_thresholds":
            assert state == "passed", (name, state, message, tail)
    assert outcomes["test_ratio_thresholds"][0] in ("skipped", "failed"), outcomes["test_ratio_thresholds"]
    if outcomes["test_ratio_thresholds"][0] == "skipped":
        assert "not measured by this run's choice (why: summary.md): " in outcomes["test_ratio_thresholds"][1]


@requires_compose
def test_the_report_has_every_load_figure_of_the_three(target_run, composed):
    _, folder = target_run
    report = _report(folder)
    validate_report(report)
    assert report["config"]["targets"] == {name: s.base_url for name, s in composed.items()}
    assert list(report["services"]) == list(SERVICE_NAMES)
    for name, section in report["services"].items():
        assert section["load"]["failure"] is None, (name, section["load"])
        assert section["load"]["rps"] > 0, name
        # Stages from /metrics over exactly the run's requests, and at c=1 what they explain of the latency.
        assert section["metrics_responses"] == {"200": section["load"]["requests"]}, name
        assert {"queue", "parse", "decode", "total"} <= set(section["stages_ms"]), name
        assert section["at_c1"]["coverage"] > 0, name
        assert section["model_id"] == report["model"]["model_id"], name
        assert section["rounds"]["rps"]["centre"] > 0, name
        assert section["sweep"]["best_rps"] > 0, name
        assert [p["fraction_of_best"] for p in section["open_loop"]] == report["config"]["open_loop_fractions"]
        assert all(p["latency_corrected"] and p["achieved_rps"] > 0 for p in section["open_loop"]), name
        assert section["capacity"]["probes"], name
        assert all({"decode", "total"} <= set(p["stages_ms"]) for p in section["sizes"]), name


@requires_compose
def test_the_report_says_what_is_not_available_and_built_nothing(target_run):
    _, folder = target_run
    report = _report(folder)
    assert report["environment"]["docker_engine"] is None
    assert report["environment"]["images"] == {}
    for name, section in report["services"].items():
        assert section["unavailable"] == UNAVAILABLE, name
        assert not {"image", "startup_s", "memory_over_requests", "against_usual"} & set(section), name
        assert section["memory_mb"]["peak"] is None, name
        assert section["in_process_rps"] is None, name
    assertions = {a["name"]: a for a in report["assertions"]}
    for name in ("image_size_mb.rust_over_onnx.max", "startup_s.onnx_over_torch.max", "memory_mb.rust_over_onnx.max"):
        assert assertions[name]["passed"] is None, assertions[name]
        assert "--target: the service was not started by the suite" in assertions[name]["not_measured"]
    assert assertions["rps.rust_over_onnx.min"]["measured"] is not None
    summary = (folder / "reports" / "latest" / "summary.md").read_text()
    assert "## Not available" in summary
    assert "against services already running (--target: " in summary
