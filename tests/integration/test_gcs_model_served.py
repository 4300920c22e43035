"""A user's state dict in Cloud Storage (the emulator), exported, built and served by all three services.

The export from Cloud Storage is this module's own; the images that serve it are the session's set for the user's
model (tests/integration/conftest.py: ``user_model_images``), built from the same weights by a local export. The
two exports are checked byte for byte (every file the images hold but the manifest, whose source differs), so the
images serve exactly what the export from Cloud Storage made, and need not be rebuilt for every run's bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
import torch

from model_core.mobilenet import MobileNetV3Small
from model_serving.artifacts import Artifacts, ModelSource, export
from model_serving.checks import served_disagreements
from model_serving.cli import main
from model_serving.docker.build import MODEL_ID_LABEL
from model_serving.docker.containers import RunningService, run_service
from model_serving.services import SERVICE_NAMES, SERVICES

pytestmark = pytest.mark.integration

OBJECT_NAME = "training/run-7/weather_mobilenet_v3_small.pt"


@pytest.fixture(scope="module")
def gcs_uri(gcs_emulator, user_weights) -> str:
    bucket = gcs_emulator.create_bucket("weights")
    bucket.blob(OBJECT_NAME).upload_from_filename(str(user_weights.path))
    return f"gs://{bucket.name}/{OBJECT_NAME}"


@pytest.fixture(scope="module")
def gcs_artifacts(gcs_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    cache = tmp_path_factory.mktemp("gcs-cache")
    out = tmp_path_factory.mktemp("artifacts") / "user"
    export(out, ModelSource.from_uris(gcs_uri, cache_dir=cache))
    return Artifacts.open(out)


@pytest.fixture(scope="module")
def gcs_services(user_model_images: dict, cpus: float) -> Iterator[dict[str, RunningService]]:
    with ExitStack() as stack:
        running = {}
        for name in SERVICE_NAMES:
            image = user_model_images[name]
            assert image.tag.split(":")[0] == f"model-serving/{name}"
            running[name] = stack.enter_context(run_service(name, image.tag, cpus))
        yield running


def test_the_manifest_records_the_object_and_its_generation(gcs_artifacts, gcs_uri, gcs_emulator, user_weights):
    source = gcs_artifacts.manifest["source"]
    bucket_name, _, object_name = gcs_uri.removeprefix("gs://").partition("/")
    blob = gcs_emulator.client.bucket(bucket_name).get_blob(object_name)
    assert (source["kind"], source["location"], source["uri"]) == ("state_dict", "gcs", gcs_uri)
    assert source["generation"] == blob.generation
    assert gcs_artifacts.manifest["model_id"] == user_weights.model_id


def test_the_served_images_hold_what_the_export_from_cloud_storage_made(gcs_artifacts, user_artifacts):
    served_roles = {role for spec in SERVICES.values() for role in spec.model_roles}
    for role in sorted(served_roles):
        ours, theirs = gcs_artifacts.manifest["files"][role], user_artifacts.manifest["files"][role]
        assert (ours["path"], ours["sha256"]) == (theirs["path"], theirs["sha256"]), role
        assert gcs_artifacts.path(role).read_bytes() == user_artifacts.path(role).read_bytes(), role


def test_services_images_and_health_name_the_users_model(gcs_services, user_weights, default_artifacts):
    expected = user_weights.model_id
    assert expected != default_artifacts.manifest["model_id"]
    for name, running in gcs_services.items():
        assert httpx.get(f"{running.base_url}/", timeout=10).json()["model_id"] == expected, name
        labels = running.container.get_wrapped_container().image.labels
        assert labels[MODEL_ID_LABEL] == expected, name


def test_the_three_services_agree_on_the_users_model(gcs_services, gcs_artifacts, corpus):
    failures = served_disagreements(
        gcs_artifacts, {name: running.base_url for name, running in gcs_services.items()}, corpus
    )
    assert not failures, "\n".join(failures)


def test_a_state_dict_that_does_not_fit_is_refused_naming_the_object(gcs_emulator, tmp_path, capsys):
    state = MobileNetV3Small().state_dict()
    # A 10-class head, as a model trained for another label set would have.
    state["classifier.3.weight"] = state["classifier.3.weight"][:10]
    state["classifier.3.bias"] = state["classifier.3.bias"][:10]
    path = tmp_path / "ten_classes.pt"
    torch.save(state, path)
    bucket = gcs_emulator.create_bucket("weights")
    bucket.blob("ten_classes.pt").upload_from_filename(str(path))
    uri = f"gs://{bucket.name}/ten_classes.pt"
    code = main(["export", "--state-dict", uri, "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2
    assert f"model-serving: error: {uri} does not fit MobileNetV3-small with an 11-class head" in error
    assert "size mismatch for classifier.3.weight" in error
