"""gs:// model sources against a Cloud Storage emulator: download, cache by generation, and clear errors."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from logged import model_serving_messages
from storage_emulator import StorageEmulator, run_storage_emulator

from model_core.errors import ModelError
from model_core.loading import load_state_dict_file, model_id
from model_core.manifest import sha256_file
from model_core.mobilenet import MobileNetV3Small
from model_serving.ports import free_ports
from model_serving.sources import ModelSourceError, fetch_gcs_object, resolve_gcs_auth, resolve_model_uri

pytestmark = pytest.mark.integration

OBJECT = "weather/v1/state_dict.pt"
STATUS_TEXT = {
    401: "HTTP 401 Unauthorized: wrong or expired credentials",
    403: "HTTP 403 Forbidden: expired credentials",
}


@pytest.fixture(scope="module")
def state_dict_file(tmp_path_factory) -> Path:
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("weights") / "state_dict.pt"
    torch.save(MobileNetV3Small().state_dict(), path)
    return path


@pytest.fixture
def uploaded(gcs_bucket, state_dict_file):
    blob = gcs_bucket.blob(OBJECT)
    blob.upload_from_filename(str(state_dict_file))
    blob.reload()
    return blob


@pytest.fixture
def no_dotenv(tmp_path, monkeypatch) -> None:
    """A working directory without a .env file."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


@dataclass
class RefusingServer:
    url: str
    status: int
    authorization_headers: list[str | None] = field(default_factory=list)


@pytest.fixture(params=[401, 403])
def refusing_server(request) -> Iterator[RefusingServer]:
    """A loopback HTTP server that answers every request with 401 (or 403) and a Cloud Storage style error."""
    status = request.param
    seen: list[str | None] = []

    class Refuse(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps({"error": {"code": status, "message": "Invalid Credentials"}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _refuse

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    # Polled every 50 ms: shutdown() waits up to one poll (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield RefusingServer(
            url=f"http://127.0.0.1:{server.server_address[1]}", status=status, authorization_headers=seen
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_downloads_the_state_dict(gcs_bucket, uploaded, state_dict_file, tmp_path, no_dotenv, caplog):
    with model_serving_messages(caplog) as messages:
        resolved = resolve_model_uri(f"gs://{gcs_bucket.name}/{OBJECT}", cache_dir=tmp_path / "cache")

    assert (
        resolved.path
        == tmp_path / "cache" / "gcs" / gcs_bucket.name / OBJECT / str(uploaded.generation) / "state_dict.pt"
    )
    assert resolved.path.read_bytes() == state_dict_file.read_bytes()
    assert resolved.describe() == {
        "kind": "gcs",
        "uri": f"gs://{gcs_bucket.name}/{OBJECT}",
        "generation": uploaded.generation,
        "sha256": sha256_file(state_dict_file),
    }
    assert messages[0].startswith(f"downloading gs://{gcs_bucket.name}/{OBJECT} (generation {uploaded.generation}, ")
    assert messages[0].endswith(" MB)")
    assert not list(resolved.path.parent.glob("*.partial"))
    expected = torch.load(state_dict_file, weights_only=True)
    assert model_id(load_state_dict_file(resolved.path).state_dict()) == model_id(expected)


def test_second_fetch_uses_the_cache(gcs_bucket, uploaded, tmp_path, no_dotenv, caplog):
    uri = f"gs://{gcs_bucket.name}/{OBJECT}"
    first = resolve_model_uri(uri, cache_dir=tmp_path)
    before = first.path.stat()
    with model_serving_messages(caplog) as messages:
        second = resolve_model_uri(uri, cache_dir=tmp_path)

    assert second.path == first.path
    after = second.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not replaced by a download
    assert len(messages) == 1
    assert messages[0].startswith(f"using cached {uri} (generation {uploaded.generation}, ")


def test_fetch_reports_whether_it_downloaded(gcs_bucket, uploaded, tmp_path, no_dotenv):
    first = fetch_gcs_object(gcs_bucket.name, OBJECT, tmp_path)
    second = fetch_gcs_object(gcs_bucket.name, OBJECT, tmp_path)
    assert (first.downloaded, second.downloaded) == (True, False)
    assert first.generation == second.generation == uploaded.generation
    assert first.size == second.size == uploaded.size
    assert first.crc32c == uploaded.crc32c


def test_a_new_generation_is_downloaded_afresh(gcs_bucket, uploaded, tmp_path, no_dotenv, caplog):
    uri = f"gs://{gcs_bucket.name}/{OBJECT}"
    old = resolve_model_uri(uri, cache_dir=tmp_path)
    torch.manual_seed(8)
    replacement = tmp_path / "replacement.pt"
    torch.save(MobileNetV3Small().state_dict(), replacement)
    blob = gcs_bucket.blob(OBJECT)
    blob.upload_from_filename(str(replacement))
    blob.reload()

    with model_serving_messages(caplog) as messages:
        new = resolve_model_uri(uri, cache_dir=tmp_path)

    assert new.generation == blob.generation != old.generation
    assert new.path != old.path
    assert new.path.read_bytes() == replacement.read_bytes()
    assert new.describe()["sha256"] == sha256_file(replacement) != old.describe()["sha256"]
    assert messages[0].startswith(f"downloading {uri} (generation {blob.generation}, ")


def test_a_corrupt_cached_file_is_downloaded_again(gcs_bucket, uploaded, state_dict_file, tmp_path, no_dotenv, caplog):
    uri = f"gs://{gcs_bucket.name}/{OBJECT}"
    cached = resolve_model_uri(uri, cache_dir=tmp_path).path
    cached.write_bytes(b"\0" * cached.stat().st_size)  # same size, wrong bytes

    with model_serving_messages(caplog) as messages:
        again = resolve_model_uri(uri, cache_dir=tmp_path)

    assert again.path == cached
    assert cached.read_bytes() == state_dict_file.read_bytes()
    assert messages[0].startswith("downloading ")


def test_an_emulator_named_in_dotenv_is_used(
    gcs_emulator, gcs_bucket, uploaded, state_dict_file, tmp_path, monkeypatch
):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"STORAGE_EMULATOR_HOST={gcs_emulator.url}\n")

    resolved = resolve_model_uri(f"gs://{gcs_bucket.name}/{OBJECT}", cache_dir=tmp_path / "cache")

    assert resolved.path.read_bytes() == state_dict_file.read_bytes()


def test_missing_bucket(gcs_emulator, tmp_path, no_dotenv):
    with pytest.raises(ModelSourceError, match=r"^bucket gs://no-such-bucket-4821 does not exist") as caught:
        resolve_model_uri("gs://no-such-bucket-4821/state_dict.pt", cache_dir=tmp_path)
    assert isinstance(caught.value, ModelError)  # the command line maps it to exit code 2
    assert not (tmp_path / "gcs").exists()


def test_missing_object(gcs_bucket, uploaded, tmp_path, no_dotenv):
    uri = f"gs://{gcs_bucket.name}/weather/v2/state_dict.pt"
    with pytest.raises(ModelSourceError) as caught:
        resolve_model_uri(uri, cache_dir=tmp_path)
    assert str(caught.value).startswith(
        f"{uri} not found: bucket gs://{gcs_bucket.name} exists but has no object named 'weather/v2/state_dict.pt'"
    )


def test_refused_credentials_via_the_emulator_host(refusing_server, gcs_emulator, tmp_path, monkeypatch, no_dotenv):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", refusing_server.url)
    with pytest.raises(ModelSourceError) as caught:
        resolve_model_uri("gs://models/state_dict.pt", cache_dir=tmp_path)
    message = str(caught.value)
    host = refusing_server.url.removeprefix("http://")
    assert message.startswith(f"{host} refused anonymous access to the storage emulator at {refusing_server.url}")
    assert f"({STATUS_TEXT[refusing_server.status]}" in message
    assert "check that STORAGE_EMULATOR_HOST points at one" in message
    assert refusing_server.authorization_headers  # the request did reach the server


def test_refused_access_token(refusing_server, gcs_emulator, tmp_path, monkeypatch, no_dotenv):
    """The real token path: the bearer token goes to the server, whose 401/403 becomes advice to renew it."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.expired")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "weather-project")
    monkeypatch.setenv("API_ENDPOINT_OVERRIDE", refusing_server.url)  # the client library's own endpoint switch

    with pytest.raises(ModelSourceError) as caught:
        resolve_model_uri("gs://models/state_dict.pt", cache_dir=tmp_path)

    message = str(caught.value)
    expected = (
        "refused the access token in CLOUDSDK_AUTH_ACCESS_TOKEN from the environment for gs://models/state_dict.pt"
    )
    assert f"{expected} ({STATUS_TEXT[refusing_server.status]}" in message
    assert "CLOUDSDK_AUTH_ACCESS_TOKEN=$(gcloud auth print-access-token)" in message
    assert refusing_server.authorization_headers[0] == "Bearer ya29.expired"


def test_unreachable_host(tmp_path, monkeypatch, no_dotenv):
    port = free_ports()[0]  # nothing listens there
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"127.0.0.1:{port}")
    with pytest.raises(ModelSourceError, match=rf"^cannot reach 127\.0\.0\.1:{port} to read gs://models/x\.pt \("):
        fetch_gcs_object("models", "x.pt", tmp_path, auth=resolve_gcs_auth(), retry_deadline=1.0, timeout=2.0)


def _start_emulator_then_fail(started: list[StorageEmulator]) -> None:
    with run_storage_emulator() as emulator:
        started.append(emulator)
        with urllib.request.urlopen(f"{emulator.url}/", timeout=5) as response:
            assert response.read() == b"OK"
        raise RuntimeError("body failed")


def test_emulator_stops_when_the_body_raises():
    started: list[StorageEmulator] = []
    with pytest.raises(RuntimeError, match="body failed"):
        _start_emulator_then_fail(started)
    [emulator] = started
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{emulator.url}/", timeout=5)
    with pytest.raises(ProcessLookupError):
        os.kill(emulator.pid, 0)
