"""Perf wiring: one PerfRun per session, configured from the command line; thin over model_serving.perf."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_serving.artifacts import Artifacts, ModelSource, export
from model_serving.corpus import benchmark_payload_paths, request_body
from model_serving.paths import ROOT, USER_MODEL_DIR
from model_serving.perf.config import (
    PROFILES,
    RunConfig,
    check_ratio_bound,
    load_thresholds,
    parse_services,
    parse_threshold_option,
    profile_with,
)
from model_serving.perf.rounds import rotated
from model_serving.perf.session import PerfRun
from model_serving.perf.sizes import parse_sizes
from model_serving.perf.target import TargetError, TargetService, check_targets, parse_targets
from model_serving.services import SERVICE_NAMES

log = logging.getLogger(__name__)

REPORT_FOLDER = pytest.StashKey[Path]()
TARGETS = pytest.StashKey[dict[str, TargetService]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """--target is checked before any test runs: a wrong name, or a URL that does not answer healthy as the service
    named, ends the session with the reason (exit code 4)."""
    session.config.stash[TARGETS] = _targets(session.config.option)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """After a perf run: the summary table and where the report is."""
    folder = config.stash.get(REPORT_FOLDER, None)
    if folder is None:
        return
    terminalreporter.section("model-serving benchmark summary")
    terminalreporter.write((folder / "summary.md").read_text())
    terminalreporter.write_line(f"report: {folder}  (also {folder.parent / 'latest'})")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The load rounds as (round, service) tests, round by round, the services' order rotating each round."""
    if "round_index" not in metafunc.fixturenames:
        return
    profile = PROFILES.get(metafunc.config.getoption("profile"), PROFILES["default"])
    rounds = metafunc.config.getoption("rounds") or profile.rounds
    cases = [(index, name) for index in range(rounds) for name in rotated(SERVICE_NAMES, index)]
    metafunc.parametrize(("round_index", "name"), cases, ids=[f"{i + 1}-{name}" for i, name in cases])


def _payload(option: Path | None, folder: Path) -> tuple[Path, Path]:
    if option is None:
        return benchmark_payload_paths()
    if not option.is_file():
        raise pytest.UsageError(f"--payload {option}: no such file")
    body = folder / "custom_payload.json"
    body.write_bytes(request_body(option.read_bytes()))
    return option, body


def _targets(options: Any) -> dict[str, TargetService]:
    """--target: the services to measure where they already run, each checked healthy; none without it."""
    if not options.target:
        return {}
    if options.services:
        raise pytest.UsageError("--services and --target: --target names the services to measure")
    if options.state_dict or options.onnx_model:
        raise pytest.UsageError("--target measures the model the services serve: drop --state-dict / --onnx-model")
    try:
        return check_targets(parse_targets(options.target, SERVICE_NAMES))
    except (ValueError, TargetError) as error:
        raise pytest.UsageError(str(error)) from error


@pytest.fixture(scope="session")
def benchmarked_artifacts(request: pytest.FixtureRequest) -> Artifacts:
    """The default model, or the user's (--state-dict / TORCH_MODEL_URI, --onnx-model / ONNX_MODEL_URI)."""
    options = request.config.option
    if not options.state_dict and not options.onnx_model:
        return request.getfixturevalue("default_artifacts")
    source = ModelSource.from_uris(options.state_dict, options.onnx_model)
    export(USER_MODEL_DIR, source)
    return Artifacts.open(USER_MODEL_DIR)


@pytest.fixture(scope="session")
def perf(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PerfRun]:
    options = request.config.option
    try:
        profile = profile_with(
            options.profile,
            options.requests,
            options.concurrency,
            options.cpus,
            options.startup_runs,
            options.memory_requests,
            options.rounds,
            parse_sizes(options.payload_sizes) if options.payload_sizes else None,
            options.slo_ms,
        )
        ratio_bound = check_ratio_bound(options.ratio_bound)
        services = parse_services(options.services)
        overrides = dict(parse_threshold_option(text) for text in options.threshold)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from error
    targets = request.config.stash.get(TARGETS, {})
    # With --target the services serve their own model: nothing to export or build.
    model_dir = None if targets else request.getfixturevalue("benchmarked_artifacts").directory
    jpeg, body = _payload(options.payload, tmp_path_factory.mktemp("payload"))
    config = RunConfig(
        profile,
        tuple(targets) or services,
        jpeg,
        load_thresholds(ROOT / "pyproject.toml", overrides),
        ratio_bound,
        {name: target.base_url for name, target in targets.items()} or None,
    )
    reports_dir = options.reports_dir or ROOT / "reports"
    run = PerfRun(config, model_dir, reports_dir, jpeg, body, targets=targets)
    if targets:
        where = ", ".join(f"{name} at {target.base_url}" for name, target in targets.items())
        log.info(f"profile {profile.name}: --target {where} (nothing built or started)")
    else:
        log.info(f"profile {profile.name}: {', '.join(config.services)}; {profile.cpus} CPU each")
    yield run
    # The report is written here only, once, after the last test (test_ratio_thresholds builds it, unwritten).
    if run.results:
        run.write_report()
        request.config.stash[REPORT_FOLDER] = run.report_folder


@pytest.fixture
def selected(perf: PerfRun, request: pytest.FixtureRequest) -> str:
    name = request.node.callspec.params["name"]
    if name not in perf.config.services:
        pytest.skip(f"{name} not in {'--target' if perf.targets else '--services'}")
    return name
