"""A user's state dict in Cloud Storage (the emulator), exported, built and served by all three services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import torch

from model_core.loading import model_id
from model_core.mobilenet import MobileNetV3Small
from model_serving.artifacts import Artifacts, ModelSource, export
from model_serving.checks import served_disagreements
from model_serving.cli import main
from model_serving.docker.build import MODEL_ID_LABEL, build_service_image, remove_image
from model_serving.docker.containers import RunningService, run_service
from model_serving.model.default import build_default_model
from model_serving.services import SERVICE_NAMES

pytestmark = pytest.mark.integration

# Weights unlike the default model's (another seed), so serving the default by mistake cannot pass.
USER_SEED = 4321
OBJECT_NAME = "training/run-7/weather_mobilenet_v3_small.pt"


@pytest.fixture(scope="module")
def user_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A trained-looking state dict file and its model_id."""
    state = build_default_model(USER_SEED).state_dict()
    path = tmp_path_factory.mktemp("weights") / "weather.pt"
    torch.save(state, path)
    return path, model_id(state)


@pytest.fixture(scope="module")
def gcs_uri(gcs_emulator, user_weights: tuple[Path, str]) -> str:
    bucket = gcs_emulator.create_bucket("weights")
    bucket.blob(OBJECT_NAME).upload_from_filename(str(user_weights[0]))
    return f"gs://{bucket.name}/{OBJECT_NAME}"


@pytest.fixture(scope="module")
def gcs_artifacts(gcs_uri: str, tmp_path_factory: pytest.TempPathFactory, progress: Callable[[str], None]) -> Artifacts:
    cache = tmp_path_factory.mktemp("gcs-cache")
    out = tmp_path_factory.mktemp("artifacts") / "user"
    export(out, ModelSource.from_uris(gcs_uri, progress=progress, cache_dir=cache), progress=progress)
    return Artifacts.open(out)


@pytest.fixture(scope="module")
def gcs_services(
    gcs_artifacts: Artifacts, cpus: float, progress: Callable[[str], None]
) -> Iterator[dict[str, RunningService]]:
    with ExitStack() as stack:
        running = {}
        for name in SERVICE_NAMES:
            # Not :latest: that is for docker-compose.yaml, and this model is a throwaway (its manifest names a
            # random bucket, so every run builds new images): they are removed afterwards.
            image = build_service_image(name, gcs_artifacts.directory, progress, tag_latest=False)
            stack.callback(remove_image, image.tag)
            assert image.tag.split(":")[0] == f"model-serving/{name}"
            running[name] = stack.enter_context(run_service(name, image.tag, cpus))
        yield running


def test_the_manifest_records_the_object_and_its_generation(gcs_artifacts, gcs_uri, gcs_emulator, user_weights):
    source = gcs_artifacts.manifest["source"]
    bucket_name, _, object_name = gcs_uri.removeprefix("gs://").partition("/")
    blob = gcs_emulator.client.bucket(bucket_name).get_blob(object_name)
    assert (source["kind"], source["location"], source["uri"]) == ("state_dict", "gcs", gcs_uri)
    assert source["generation"] == blob.generation
    assert gcs_artifacts.manifest["model_id"] == user_weights[1]


def test_services_images_and_health_name_the_users_model(gcs_services, user_weights, default_artifacts):
    expected = user_weights[1]
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
