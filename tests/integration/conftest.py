"""Integration fixtures shared by several modules, each started or built once per session: a Cloud Storage
emulator for gs:// model sources, a user's model and its service images, and the services read-only by worker
count."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from google.cloud import storage
from storage_emulator import StorageEmulator, run_storage_emulator

from model_core.errors import ModelError
from model_core.loading import load_state_dict_file, model_id
from model_serving.artifacts import Artifacts, ModelSource, export
from model_serving.docker.build import BuiltImage, build_service_images
from model_serving.docker.containers import RunningService, run_service
from model_serving.model.default import build_default_model
from model_serving.paths import ARTIFACTS_DIR
from model_serving.services import SERVICES
from model_serving.sources.credentials import ACCESS_TOKEN, EMULATOR_HOST, KEY_FILE

SERVICE_NAMES = tuple(SERVICES)
#: The user's model: weights unlike the default model's (another seed), so serving the default by mistake cannot pass.
USER_SEED = 4321
# In this checkout, at a fixed path: the same weights at the same path give the same manifest, so the same image
# tags, and a second run finds the images built by the first.
USER_MODEL_DIR = ARTIFACTS_DIR / "test-user-model"


@dataclass(frozen=True)
class GcsEmulator:
    """A running emulator: ``url`` (also in ``STORAGE_EMULATOR_HOST`` while the fixture lasts) and a client."""

    url: str
    client: storage.Client
    process: StorageEmulator

    def create_bucket(self, prefix: str = "models") -> storage.Bucket:
        """A new bucket with a unique name, so tests sharing the emulator do not see each other's objects."""
        return self.client.create_bucket(f"{prefix}-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[StorageEmulator]:
    """The emulator process, started once per session and always stopped."""
    with run_storage_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def gcs_emulator(storage_emulator: StorageEmulator) -> Iterator[GcsEmulator]:
    """The emulator, with ``STORAGE_EMULATOR_HOST`` pointing at it (and other Cloud Storage credentials unset)
    until the module's tests are done; the previous environment is restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(EMULATOR_HOST, storage_emulator.url)
        patch.delenv(ACCESS_TOKEN, raising=False)
        patch.delenv(KEY_FILE, raising=False)
        yield GcsEmulator(url=storage_emulator.url, client=storage_emulator.client(), process=storage_emulator)


@pytest.fixture
def gcs_bucket(gcs_emulator: GcsEmulator) -> storage.Bucket:
    """An empty bucket of its own in the emulator."""
    return gcs_emulator.create_bucket()


@dataclass(frozen=True)
class UserWeights:
    path: Path
    model_id: str  # from the weights themselves, not from an export


@pytest.fixture(scope="session")
def user_weights() -> UserWeights:
    """A user's state dict file (seed USER_SEED): made once (building a calibrated model takes half a minute here),
    then read back as a user's file is; its model_id from the weights read."""
    path = USER_MODEL_DIR / "weights" / "weather_mobilenet_v3_small.pt"
    try:
        model = load_state_dict_file(path)
    except ModelError:  # not made yet (or damaged): make it
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        torch.save(build_default_model(USER_SEED).state_dict(), partial)
        partial.replace(path)
        model = load_state_dict_file(path)
    return UserWeights(path, model_id(model.state_dict()))


@pytest.fixture(scope="session")
def user_artifacts(user_weights: UserWeights) -> Artifacts:
    """The user's model exported (reused while the weights and the recipe are unchanged)."""
    out = USER_MODEL_DIR / "export"
    export(out, ModelSource.from_uris(str(user_weights.path)))
    return Artifacts.open(out)


@pytest.fixture(scope="session")
def user_model_images(user_artifacts: Artifacts) -> dict[str, BuiltImage]:
    """The three service images of the user's model: the one set every test that serves a model other than the
    default uses. Built once, and kept like the default model's (found by tag next time); not tagged :latest,
    which is what docker-compose.yaml runs."""
    return build_service_images(SERVICE_NAMES, user_artifacts.directory, tag_latest=False)


@pytest.fixture(scope="session")
def read_only_services(service_images: dict, cpus: float) -> Iterator[Callable[[str, int], RunningService]]:
    """``(service, workers)`` → that service running with ``WORKERS`` on a read-only root filesystem (as
    docker-compose.yaml and k8s/ run it), started on first use and shared by the tests that ask for the same."""
    with ExitStack() as stack:
        running: dict[tuple[str, int], RunningService] = {}

        def service(name: str, workers: int) -> RunningService:
            if (name, workers) not in running:
                env = {"WORKERS": str(workers)}
                started = run_service(name, service_images[name].tag, cpus, env=env, read_only=True)
                running[name, workers] = stack.enter_context(started)
            return running[name, workers]

        yield service
