"""The launcher end to end, in a subprocess on this host: gunicorn's exit codes and the one-line start-up failure.

A tiny FastAPI app stands in for a service (``TEST_STARTUP_FAILURE`` makes its lifespan fail), so these run in
seconds without an image or a model; the containers' own tests (tests/integration/test_bad_models.py,
test_shutdown.py) check the real services.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

APP = """
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

from model_core.errors import ModelError


@asynccontextmanager
async def lifespan(_):
    failure = os.environ.get("TEST_STARTUP_FAILURE")
    if failure == "model":
        raise ModelError("the model is bad")
    if failure == "other":
        raise RuntimeError("something unforeseen")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def health():
    return {"pid": os.getpid()}
"""
LAUNCH = "from serving_common.launch import main; raise SystemExit(main('svc', 'stand_in:app', 1, ()))"
EXIT_WITHIN_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(tmp_path: Path, workers: int, failure: str | None = None) -> tuple[subprocess.Popen[str], int]:
    (tmp_path / "stand_in.py").write_text(APP)
    model_dir = tmp_path / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "manifest.json").write_text(json.dumps({"files": {}}))
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "MODEL_DIR": str(model_dir),
        "PORT": str(port),
        "WORKERS": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    if failure:
        env["TEST_STARTUP_FAILURE"] = failure
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return process, port


def test_a_model_error_at_start_up_is_one_line_and_exit_code_3_with_two_workers(tmp_path):
    process, _ = _start(tmp_path, 2, failure="model")
    _, err = process.communicate(timeout=EXIT_WITHIN_S)
    assert process.returncode == 3, err
    lines = [line for line in err.splitlines() if line.startswith("svc: cannot start: ")]
    assert lines, err
    assert set(lines) == {"svc: cannot start: the model is bad"}, err
    assert "Traceback" not in err, err


def test_an_unforeseen_error_at_start_up_keeps_its_traceback(tmp_path):
    process, _ = _start(tmp_path, 1, failure="other")
    _, err = process.communicate(timeout=EXIT_WITHIN_S)
    assert process.returncode == 3, err
    assert "svc: cannot start: RuntimeError: something unforeseen" in err
    assert "Traceback" in err, err


def test_sigterm_after_serving_exits_0_with_two_workers(tmp_path):
    process, port = _start(tmp_path, 2)
    try:
        deadline = time.monotonic() + EXIT_WITHIN_S
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "not serving"
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=EXIT_WITHIN_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
