"""docker-compose.yaml runs the three services as the suite does: the images of this run, under the same CPU limit,
read-only, healthy, answering the same prediction. Runs under a unique project name on free host ports and always
takes the project down."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

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

from model_serving.docker.build import SERVICES
from model_serving.ports import free_ports

pytestmark = pytest.mark.integration

COMMAND = compose_command()
requires_compose = pytest.mark.skipif(
    COMMAND is None, reason="neither `docker compose` (v2 plugin) nor `docker-compose` is installed"
)
_JSON = {"content-type": "application/json"}
SERVICE_NAMES = tuple(SERVICES)


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
def composed(project, ports, progress) -> Iterator[dict[str, ComposedService]]:
    with compose_up(project, ports, progress=progress) as running:
        yield running


@requires_compose
def test_the_compose_file_is_valid(project):
    project.validate()


@requires_compose
def test_compose_runs_the_three_services_like_the_suite(composed, service_images, cpus, benchmark_body, progress):
    assert set(composed) == set(SERVICE_NAMES)
    predictions = {}
    for name, service in composed.items():
        response = httpx.post(f"{service.base_url}/predict/", content=benchmark_body, headers=_JSON, timeout=60)
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
        predictions[name] = response.json()["prediction"]
    progress(f"compose: predictions {predictions}")
    assert len(set(predictions.values())) == 1, predictions

    for name, service in composed.items():
        service.container.reload()
        host_config = service.container.attrs["HostConfig"]
        assert service.container.image.id == service_images[name].image_id, f"{name} does not run this run's image"
        assert host_config["NanoCpus"] == int(cpus * 1e9), f"{name}: NanoCpus {host_config['NanoCpus']}"
        assert host_config["ReadonlyRootfs"] is True, name
        assert service.container.attrs["Config"]["User"] == "10001:10001", name


@requires_compose
def test_every_compose_healthcheck_reports_healthy(composed, progress):
    # The first probe runs one interval (10 s) after start; the services already answer GET /.
    statuses = {name: wait_for_docker_health(s.container, 60, progress=progress) for name, s in composed.items()}
    assert statuses == dict.fromkeys(SERVICE_NAMES, "healthy")
