import os
from pathlib import Path

import pytest

from serving_common.config import Settings, cpu_limit

pytestmark = pytest.mark.unit


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota(tmp_path):
    _write(tmp_path, "cpu.max", "150000 100000\n")
    assert cpu_limit(tmp_path) == pytest.approx(min(1.5, cpu_limit(tmp_path / "none")))


def test_cgroup_v1_quota(tmp_path):
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "50000\n")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert cpu_limit(tmp_path) == pytest.approx(0.5)


def test_no_quota_means_the_cpus_we_may_run_on(tmp_path):
    _write(tmp_path, "cpu.max", "max 100000\n")
    assert cpu_limit(tmp_path) >= 1


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("WORKERS", "3")
    monkeypatch.setenv("THREADS", "2")
    monkeypatch.setenv("MODEL_DIR", "/m")
    settings = Settings.from_env(default_port=8080)
    assert (settings.workers, settings.threads, settings.port, settings.model_dir) == (3, 2, 8080, Path("/m"))
    assert settings.describe()["model_dir"] == "/m"


@pytest.mark.parametrize("value", ["zero", "0", "-1"])
def test_bad_worker_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("WORKERS", value)
    with pytest.raises(ValueError, match="WORKERS"):
        Settings.from_env(default_port=8080)


def test_the_launcher_prepares_the_metrics_folder_of_workers_or_refuses_to_start(monkeypatch, tmp_path, capsys):
    from serving_common import launch

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"stale")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.setenv("WORKERS", "2")  # one worker has no use for the folder
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    # It goes on to the model (missing here: exit 3) with the folder emptied of an earlier run's files.
    assert launch.main("svc", "x:app", 9999, ("onnx_optimized",)) == launch.STARTUP_FAILURE
    assert list(folder.iterdir()) == []
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(a_file / "metrics"))
    assert launch.main("svc", "x:app", 9999, ("onnx_optimized",)) == launch.CONFIG_ERROR
    assert "set PROMETHEUS_MULTIPROC_DIR to a writable folder" in capsys.readouterr().err


def test_one_worker_keeps_its_metrics_in_memory(monkeypatch, tmp_path):
    from serving_common import launch

    folder = tmp_path / "metrics"
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.setenv("WORKERS", "1")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    assert launch.main("svc", "x:app", 9999, ("onnx_optimized",)) == launch.STARTUP_FAILURE
    assert not folder.exists()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
