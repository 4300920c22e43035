"""`model-serving bench`: the pytest command line it runs for --target, the profile and pytest's own options."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_serving import cli

pytestmark = pytest.mark.unit

TARGET = "onnx-serving=http://127.0.0.1:8080,rust-onnx-serving=http://127.0.0.1:8082"


def _argv(*words: str) -> list[str]:
    args = cli.build_parser().parse_args(["bench", *words])
    return cli.bench_argv(args.target, args.profile, args.reports_dir, args.pytest_args, Path("/repo"), "py")


def test_bench_runs_the_perf_suite_against_the_targets_with_pytests_options():
    assert _argv("--target", TARGET, "--profile", "smoke", "--", "--rounds", "1", "-k", "sweep") == [
        "py",
        "-m",
        "pytest",
        "-m",
        "perf",
        "/repo/tests/perf",
        "--profile",
        "smoke",
        f"--target={TARGET}",
        "--rounds",
        "1",
        "-k",
        "sweep",
    ]


def test_bench_without_targets_is_the_default_benchmark():
    assert _argv() == ["py", "-m", "pytest", "-m", "perf", "/repo/tests/perf", "--profile", "default"]
    assert _argv("--target", "a=http://h:1", "--target", "b=http://h:2", "--reports-dir", "/r")[-4:] == [
        "--target=a=http://h:1",
        "--target=b=http://h:2",
        "--reports-dir",
        "/r",
    ]


def test_bench_returns_pytests_exit_code(monkeypatch, tmp_path):
    (tmp_path / "tests" / "perf").mkdir(parents=True)
    calls = []

    def call(argv: list[str], cwd: Path) -> int:
        calls.append((argv, cwd))
        return 4

    monkeypatch.setattr("model_serving.paths.ROOT", tmp_path)
    monkeypatch.setattr("subprocess.call", call)
    assert cli.main(["bench", "--target", TARGET, "--profile", "smoke"]) == 4
    assert calls[0][1] == tmp_path
    assert f"--target={TARGET}" in calls[0][0]
    monkeypatch.setattr("model_serving.paths.ROOT", tmp_path / "elsewhere")
    assert cli.main(["bench"]) == 2
