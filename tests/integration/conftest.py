"""Integration fixtures: a Cloud Storage emulator for gs:// model sources (thin wrappers over the library)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from google.cloud import storage
from storage_emulator import StorageEmulator, run_storage_emulator

from model_serving.sources.credentials import ACCESS_TOKEN, EMULATOR_HOST, KEY_FILE


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
