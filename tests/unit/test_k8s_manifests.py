"""The Kubernetes manifests in k8s/: every service of the suite, sized and secured as the suite runs it."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from model_serving.perf.config import PROFILES
from model_serving.services import REPOSITORY_ROOT, SERVICES

pytestmark = pytest.mark.unit

K8S = REPOSITORY_ROOT / "k8s"


@functools.cache
def _documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _kustomization() -> dict[str, Any]:
    return _documents(K8S / "kustomization.yaml")[0]


def _resources() -> list[dict[str, Any]]:
    return [document for name in _kustomization()["resources"] for document in _documents(K8S / name)]


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _resources() if doc["kind"] == kind}


def test_kustomization_lists_every_service_once_and_nothing_unlisted():
    listed = _kustomization()["resources"]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(path.name for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
    assert set(_of_kind("Deployment")) == set(SERVICES)
    assert set(_of_kind("Service")) == set(SERVICES)
    assert {image["name"] for image in _kustomization()["images"]} == {f"model-serving/{name}" for name in SERVICES}


@pytest.mark.parametrize("name", list(SERVICES))
def test_cpu_requests_equal_limits_equal_the_suites(name):
    container = _of_kind("Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
    resources = container["resources"]
    assert float(resources["requests"]["cpu"]) == float(resources["limits"]["cpu"]) == PROFILES["default"].cpus
    assert resources["requests"]["memory"] == resources["limits"]["memory"]


@pytest.mark.parametrize("name", list(SERVICES))
def test_readiness_on_get_root_and_the_services_port(name):
    deployment = _of_kind("Deployment")[name]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port = SERVICES[name].port
    assert container["image"] == f"model-serving/{name}:latest"
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert {"name": "PORT", "value": str(port)} in container["env"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    service = _of_kind("Service")[name]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]


@pytest.mark.parametrize("name", list(SERVICES))
def test_prometheus_scrapes_metrics(name):
    annotations = _of_kind("Deployment")[name]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVICES[name].port),
        "prometheus.io/path": "/metrics",
    }


@pytest.mark.parametrize("name", list(SERVICES))
def test_non_root_and_read_only(name):
    pod = _of_kind("Deployment")[name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the images' user
    container = pod["containers"][0]["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    # The only writable place: the Python services' metric files in memory, as Docker's /dev/shm.
    for volume in pod.get("volumes", []):
        assert volume["emptyDir"]["medium"] == "Memory"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_three_deployments_in_one_namespace():
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True).stdout
    documents = [document for document in yaml.safe_load_all(rendered) if document]
    deployments = {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == "Deployment"}
    assert set(deployments) == set(SERVICES)
    assert {doc["metadata"].get("namespace") for doc in documents if doc["kind"] != "Namespace"} == {"model-serving"}
