"""A remote engine, for real: a few integration tests run in a pytest subprocess whose only way to the engine is
``DOCKER_HOST=tcp://127.0.0.1:<port>``, a socat forwarder to the local socket (see ``remote_engine.py``).

They build an image (the context goes through the API), start the services and predict (their ports are found on
the engine's host, which ``engine_host()`` takes from DOCKER_HOST), copy model files into a created container
(``put_archive``), and put a short load of the benchmark payload on a service. Meanwhile this process watches, over
the local socket, every container the subprocess creates: none may bind-mount a path of this machine, which a
remote engine could not see. Where the machine allows a mount namespace, the subprocess runs with the local socket
hidden (``/dev/null`` in its place), so a client falling back to it fails instead of passing unnoticed; in all
cases socat's log must show that the traffic went through the forwarder.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import uuid
import warnings

import pytest
from remote_engine import (
    ForwarderError,
    engine_socket,
    forwarded_engine,
    remote_environment,
    remove_containers,
    socket_hiding_prefix,
    watch_containers,
)

from model_serving.docker.build import image_from_context, remove_image, staged_context
from model_serving.docker.containers import LABEL, OWNER, OWNER_LABEL
from model_serving.docker.engine import client
from model_serving.services import REPOSITORY_ROOT

pytestmark = pytest.mark.integration

#: Set in the subprocess, so that it does not start another one.
INSIDE = "MODEL_SERVING_REMOTE_ENGINE_RUN"
#: The tests run against the forwarded engine: what each exercises is in the module docstring.
SELECTION = (
    # a build context assembled here, sent through the API
    "tests/integration/test_remote_engine.py::test_a_build_context_reaches_the_engine_through_its_api",
    # the three services started (the `services` fixture) and reached on the engine's host
    "tests/integration/test_services.py::test_prediction_on_the_benchmark_payload",
    # a short load: 50 concurrent requests of the benchmark payload
    "tests/integration/test_services.py::test_50_concurrent_requests_all_succeed[rust-onnx-serving]",
    # model files copied into a created container (put_archive), then started and watched to its exit
    "tests/integration/test_bad_models.py::test_bad_model_exits_non_zero_within_5_s_naming_the_problem"
    "[rust-onnx-serving-corrupt]",
    # a service that cannot start: its logs, and its container removed
    "tests/integration/test_container_lifecycle.py::test_missing_model_fails_fast_with_the_logs[rust-onnx-serving]",
    # the engine's view of a container's file system (diff)
    "tests/integration/test_hardening.py::test_the_service_writes_no_file[rust-onnx-serving]",
)
RUN_TIMEOUT_S = 300.0
_SINGULAR = {"warnings": "warning", "errors": "error"}
_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)")


def test_a_build_context_reaches_the_engine_through_its_api():
    """A one-file image built from a context staged here: the engine must get the file's bytes from the request."""
    token = uuid.uuid4().hex  # new content, so a new tag: always a real build
    engine = client()
    with staged_context("build-probe") as context:
        (context / "Dockerfile").write_text("FROM scratch\nCOPY probe.txt /probe.txt\n")
        (context / "probe.txt").write_text(token)
        image = image_from_context(engine, context, "build-probe", "scratch", {}, "none")
    try:
        assert image.built
        # Scratch has no command; a created container is enough to read the file back out through the API.
        container = engine.containers.create(
            image.tag, command=["/probe"], labels={LABEL: "build-probe", OWNER_LABEL: OWNER}
        )
        try:
            chunks, _ = container.get_archive("/probe.txt")
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
                member = archive.extractfile("probe.txt")
                assert member is not None
                assert member.read().decode() == token
        finally:
            container.remove(force=True, v=True)
    finally:
        remove_image(image.tag)


def _counts(output: str) -> dict[str, int]:
    """pytest's final summary line (``5 passed, 1 warning in 3.2s``) as {outcome: count}."""
    lines = [line for line in output.splitlines() if line.strip()]
    summary = lines[-1] if lines else ""
    return {_SINGULAR.get(outcome, outcome): int(n) for n, outcome in _COUNTS.findall(summary)}


def test_integration_tests_pass_against_a_remote_engine(tmp_path):
    if os.environ.get(INSIDE):
        pytest.skip("already inside the remote-engine run")
    socket_path = engine_socket()
    if socket_path is None:
        pytest.skip("the engine is not behind a local unix socket here (DOCKER_HOST is remote already)")
    local = client()  # this process: the local socket
    docker_config = tmp_path / "docker-config"  # empty: no CLI context to fall back on
    docker_config.mkdir()
    hide = socket_hiding_prefix(socket_path)
    command = [
        *(hide or []),
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--basetemp={tmp_path / 'basetemp'}",
        *SELECTION,
    ]
    started = time.monotonic()
    try:
        with forwarded_engine(socket_path, tmp_path / "socat.log") as forwarder:
            environment = remote_environment(os.environ, forwarder.url, docker_config)
            environment[INSIDE] = "1"
            connections_before = forwarder.connections()
            since = time.time() - 1
            process = subprocess.Popen(
                command,
                cwd=REPOSITORY_ROOT,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            # The subprocess's containers carry its owner label (run_service, created_container): pytest was exec'd
            # in place by the hiding prefix, so its process id is the one Popen reports.
            owner = f"{OWNER_LABEL}={socket.gethostname()}:{process.pid}"
            try:
                with watch_containers(local, owner, since) as watch:
                    try:
                        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, 9)
                        output, _ = process.communicate()
                        pytest.fail(
                            f"the remote-engine run took over {RUN_TIMEOUT_S:.0f} s:\n{output.decode()[-6000:]}"
                        )
                created = watch.creations(until=time.time())
            finally:
                left = remove_containers(local, owner)
            connections = forwarder.connections() - connections_before
    except ForwarderError as error:
        pytest.fail(str(error))
    text = output.decode(errors="replace")
    elapsed = time.monotonic() - started
    counts = _counts(text)
    seen = watch.created
    print(
        f"\nremote engine {forwarder.url} → {socket_path}: {counts} in {elapsed:.0f} s; {connections} connections "
        f"through socat; {len(seen)} containers created; local socket "
        + ("hidden from the run" if hide else "NOT hidden (no mount namespace here)")
    )
    if hide is None:
        warnings.warn(
            "no mount namespace here (unshare): the remote-engine run could still reach the local socket; only "
            "the forwarder's connection count shows it used DOCKER_HOST",
            stacklevel=1,
        )
    tail = text[-6000:]
    assert process.returncode == 0, f"the remote-engine run failed (exit {process.returncode}):\n{tail}"
    assert set(counts) <= {"passed", "warning"}, f"not every selected test passed: {counts}\n{tail}"
    assert counts.get("passed", 0) >= len(SELECTION), f"the selection ran too few tests: {counts}\n{tail}"
    assert not left, f"the run left containers behind: {left}"
    assert connections > 0, "no connection went through the forwarder: the run did not use DOCKER_HOST"
    # Every container the run created was seen, and inspected while it existed.
    assert created, "the run created no container (the owner label was not found)"
    assert set(seen) == created, f"created {sorted(created)}, watched {sorted(seen)}"
    uninspected = [c.name for c in seen.values() if not c.inspected]
    assert not uninspected, f"containers gone before they could be inspected: {uninspected}"
    with_binds = {c.name: c.bind_mounts for c in seen.values() if c.bind_mounts}
    assert not with_binds, f"containers bind-mount paths a remote engine cannot see: {with_binds}"
