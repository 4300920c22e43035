"""Containers are removed whatever happens, and a service that cannot start says why."""

from __future__ import annotations

import pytest
from testcontainers.core.container import DockerContainer

from model_serving.docker.containers import ServiceStartError, run_service
from model_serving.docker.engine import client
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration


def _exists(container_id: str) -> bool:
    return any(c.id == container_id for c in client().containers.list(all=True))


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_container_is_removed_when_the_test_body_fails(service_images, cpus, name):
    image = service_images[name]
    seen: list[str] = []

    def failing_test_body() -> None:
        with run_service(name, image.tag, cpus) as service:
            seen.append(service.container_id)
            assert _exists(service.container_id)
            raise RuntimeError("deliberate failure inside a test")

    with pytest.raises(RuntimeError, match="deliberate"):
        failing_test_body()
    assert seen
    assert not _exists(seen[0])


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_missing_model_fails_fast_with_the_logs(service_images, cpus, name):
    image = service_images[name]
    before = {c.id for c in client().containers.list(all=True)}
    with (
        pytest.raises(ServiceStartError, match="cannot start") as caught,
        run_service(name, image.tag, cpus, env={"MODEL_DIR": "/nowhere"}, timeout_s=30),
    ):
        pass
    assert "no manifest.json in /nowhere" in str(caught.value)
    assert {c.id for c in client().containers.list(all=True)} == before


@pytest.mark.parametrize(
    "gone",
    [
        ConnectionError("the container has no port mapping left"),
        # testcontainers' own wording when it saw the container exit before it ran
        TimeoutError("container did not become running"),
    ],
)
def test_a_service_that_exits_before_its_port_is_read_fails_with_the_logs(service_images, cpus, monkeypatch, gone):
    # A service that fails at once (rust-onnx-serving on a bad model: under 60 ms) can be gone before testcontainers
    # reads its port; which of the two errors it then raises depends on when it looked, so both are forced here.
    name = "rust-onnx-serving"
    before = {c.id for c in client().containers.list(all=True)}

    def port_of_an_exited_container(self, port):
        raise gone

    monkeypatch.setattr(DockerContainer, "get_exposed_port", port_of_an_exited_container)
    with (
        pytest.raises(ServiceStartError, match="exited before its port could be read") as caught,
        run_service(name, service_images[name].tag, cpus, env={"MODEL_DIR": "/nowhere"}, timeout_s=30),
    ):
        pass
    assert str(gone) in str(caught.value)
    assert {c.id for c in client().containers.list(all=True)} == before
