"""Model URIs: parsing, where gs:// credentials come from, and local resolution (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import google.auth
import google.auth.exceptions
import google.oauth2.credentials
import pytest
from google.auth.credentials import AnonymousCredentials

from model_core.errors import ModelError
from model_core.manifest import sha256_file
from model_serving.sources import (
    GcsUri,
    LocalUri,
    ModelSourceError,
    parse_model_uri,
    resolve_gcs_auth,
    resolve_model_uri,
)
from model_serving.sources.credentials import gcs_settings
from model_serving.sources.gcs import cache_path, fetch_gcs_object, make_client
from model_serving.sources.uri import ACCEPTED

pytestmark = pytest.mark.unit

VARIABLES = (
    "STORAGE_EMULATOR_HOST",
    "CLOUDSDK_AUTH_ACCESS_TOKEN",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "API_ENDPOINT_OVERRIDE",
)


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch) -> Path:
    """No credential variables in the environment, and a working directory without a .env file."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


@pytest.fixture
def no_default_credentials(monkeypatch) -> None:
    def no_credentials(**kwargs):
        raise google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)


# parsing


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://models/state_dict.pt", GcsUri("models", "state_dict.pt")),
        ("gs://my-bucket.example/weather/v1/state dict.pt", GcsUri("my-bucket.example", "weather/v1/state dict.pt")),
        ("GS://models/a/b.pt", GcsUri("models", "a/b.pt")),
        ("  gs://models/x.pt\n", GcsUri("models", "x.pt")),
        ("/data/weights.pt", LocalUri(Path("/data/weights.pt"))),
        ("weights/state_dict.pt", LocalUri(Path("weights/state_dict.pt"))),
        ("weights:v1.pt", LocalUri(Path("weights:v1.pt"))),
        ("file:///data/weights.pt", LocalUri(Path("/data/weights.pt"))),
        ("file://localhost/data/weights.pt", LocalUri(Path("/data/weights.pt"))),
        ("file:///data/my%20weights.pt", LocalUri(Path("/data/my weights.pt"))),
    ],
)
def test_parses(uri, expected):
    assert parse_model_uri(uri) == expected


def test_home_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_model_uri("~/weights.pt") == LocalUri(tmp_path / "weights.pt")


def test_gcs_uri_round_trips():
    uri = parse_model_uri("gs://models/weather/v1/state_dict.pt")
    assert str(uri) == "gs://models/weather/v1/state_dict.pt"
    assert isinstance(uri, GcsUri)
    assert uri.basename == "state_dict.pt"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://models", r"^no object in 'gs://models': give the state dict's object, gs://models/path/to/object$"),
        ("gs://models/", r"^no object in 'gs://models/'"),
        ("gs://", r"^no bucket in 'gs://'"),
        ("gs:///state_dict.pt", r"^no bucket in"),
        ("gs://Models/x.pt", r"^'Models' in 'gs://Models/x.pt' is not a Cloud Storage bucket name"),
        ("gs://ab/x.pt", r"is not a Cloud Storage bucket name"),
        ("gs://models/weights/", r"names a folder, not an object"),
        ("gs://models/a/../b.pt", r"'\.\.' path segments are not supported"),
        ("gs://models/a//b.pt", r"empty, '\.' or '\.\.' path segments"),
        ("gs:models/x.pt", r"^malformed model URI 'gs:models/x.pt'"),
        ("file:/data/x.pt", r"^malformed model URI"),
        ("file://data/x.pt", r"^file URIs must be absolute, file:///absolute/path \(three slashes\)"),
        ("s3://models/x.pt", r"^unsupported scheme s3:// in model URI 's3://models/x.pt'"),
        ("http://example.com/x.pt", r"^unsupported scheme http://"),
        ("https://storage.googleapis.com/models/x.pt", r"^unsupported scheme https://"),
        ("", r"^empty model URI"),
    ],
)
def test_rejects(uri, message):
    with pytest.raises(ModelSourceError, match=message):
        parse_model_uri(uri)


@pytest.mark.parametrize("uri", ["s3://models/x.pt", "http://example.com/x.pt", "gs:x", ""])
def test_rejections_say_what_is_accepted(uri):
    with pytest.raises(ModelSourceError) as caught:
        parse_model_uri(uri)
    assert str(caught.value).endswith(f"give {ACCEPTED}")
    assert ACCEPTED == "a local path, file:///absolute/path or gs://bucket/path/to/object"


def test_source_errors_are_model_errors():
    """So the command line reports them with exit code 2, like other unusable models."""
    assert issubclass(ModelSourceError, ModelError)


# credentials


def test_no_credentials(no_default_credentials):
    with pytest.raises(ModelSourceError) as caught:
        resolve_gcs_auth()
    message = str(caught.value)
    assert message.startswith("no Google Cloud credentials for gs:// model URIs: ")
    assert "CLOUDSDK_AUTH_ACCESS_TOKEN=$(gcloud auth print-access-token)" in message
    assert "GOOGLE_CLOUD_PROJECT" in message
    assert "`gcloud auth application-default login`" in message
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message


def test_emulator_gets_anonymous_credentials(monkeypatch, no_default_credentials):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "localhost:9023")
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.token")  # the emulator comes first
    auth = resolve_gcs_auth()
    assert auth.kind == "emulator"
    assert isinstance(auth.credentials, AnonymousCredentials)
    assert auth.endpoint == "http://localhost:9023"
    assert make_client(auth).api_endpoint == "http://localhost:9023"


def test_emulator_url_is_kept(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "https://emulator.test:8443/")
    assert resolve_gcs_auth().endpoint == "https://emulator.test:8443"


def test_access_token_and_project_from_the_environment(monkeypatch, no_default_credentials):
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.token")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "weather-project")
    auth = resolve_gcs_auth()
    assert auth.kind == "token"
    assert isinstance(auth.credentials, google.oauth2.credentials.Credentials)
    assert auth.credentials.token == "ya29.token"
    assert auth.project == "weather-project"
    assert auth.endpoint is None
    assert auth.source == "the access token in CLOUDSDK_AUTH_ACCESS_TOKEN from the environment"
    client = make_client(auth)
    assert client.project == "weather-project"
    assert client.api_endpoint == "https://storage.googleapis.com"


def test_access_token_and_project_from_dotenv(clean_environment, no_default_credentials):
    dotenv = clean_environment / ".env"
    dotenv.write_text(
        "# upstream's .env\nCLOUDSDK_AUTH_ACCESS_TOKEN=ya29.from-file\nexport GOOGLE_CLOUD_PROJECT='file-project'\n"
    )
    auth = resolve_gcs_auth()
    assert auth.kind == "token"
    assert auth.credentials.token == "ya29.from-file"
    assert auth.project == "file-project"
    assert auth.source == f"the access token in CLOUDSDK_AUTH_ACCESS_TOKEN from {dotenv}"


def test_the_environment_wins_over_dotenv(clean_environment, monkeypatch):
    (clean_environment / ".env").write_text(
        "CLOUDSDK_AUTH_ACCESS_TOKEN=ya29.from-file\nGOOGLE_CLOUD_PROJECT=file-project\n"
    )
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.from-env")
    auth = resolve_gcs_auth()
    assert auth.credentials.token == "ya29.from-env"
    assert auth.project == "file-project"  # not set in the environment, so still from .env


def test_empty_variables_count_as_unset(clean_environment, monkeypatch):
    (clean_environment / ".env").write_text("CLOUDSDK_AUTH_ACCESS_TOKEN=ya29.from-file\nGOOGLE_CLOUD_PROJECT=\n")
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN", "")
    settings = gcs_settings()
    assert settings["CLOUDSDK_AUTH_ACCESS_TOKEN"].value == "ya29.from-file"
    assert "GOOGLE_CLOUD_PROJECT" not in settings


def test_emulator_in_dotenv_wins_over_a_token_in_the_environment(clean_environment, monkeypatch):
    (clean_environment / ".env").write_text("STORAGE_EMULATOR_HOST=http://127.0.0.1:9023\n")
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN", "ya29.from-env")
    auth = resolve_gcs_auth()
    assert auth.kind == "emulator"
    assert auth.endpoint == "http://127.0.0.1:9023"


def test_dotenv_elsewhere_is_ignored(tmp_path, no_default_credentials):
    (tmp_path / ".env").write_text("CLOUDSDK_AUTH_ACCESS_TOKEN=ya29.parent\n")  # the parent of the working directory
    with pytest.raises(ModelSourceError, match="no Google Cloud credentials"):
        resolve_gcs_auth()


def test_application_default_credentials(monkeypatch):
    credentials = google.oauth2.credentials.Credentials("ya29.adc")
    calls = []

    def default(**kwargs):
        calls.append(kwargs)
        return credentials, "adc-project"

    monkeypatch.setattr(google.auth, "default", default)
    auth = resolve_gcs_auth()
    assert (auth.kind, auth.credentials, auth.project, auth.endpoint) == ("adc", credentials, "adc-project", None)
    assert calls == [{"scopes": ["https://www.googleapis.com/auth/devstorage.read_only"]}]

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "chosen-project")
    assert resolve_gcs_auth().project == "chosen-project"


def test_key_file_named_in_dotenv(clean_environment, tmp_path, no_default_credentials):
    key = tmp_path / "user.json"
    key.write_text(
        json.dumps({"type": "authorized_user", "client_id": "id", "client_secret": "secret", "refresh_token": "r"})
    )
    (clean_environment / ".env").write_text(f"GOOGLE_APPLICATION_CREDENTIALS={key}\n")
    auth = resolve_gcs_auth()
    assert auth.kind == "key_file"
    assert isinstance(auth.credentials, google.oauth2.credentials.Credentials)
    assert auth.credentials.refresh_token == "r"
    assert str(key) in auth.source


def test_service_account_key_named_in_dotenv(clean_environment, tmp_path, no_default_credentials):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = tmp_path / "service-account.json"
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "key-project",
                "private_key_id": "1",
                "private_key": private_key.decode(),
                "client_email": "reader@key-project.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    (clean_environment / ".env").write_text(f"GOOGLE_APPLICATION_CREDENTIALS={key}\n")
    auth = resolve_gcs_auth()
    assert auth.kind == "key_file"
    assert auth.credentials.service_account_email == "reader@key-project.iam.gserviceaccount.com"
    assert auth.project == "key-project"


def test_other_key_file_types_are_not_read_from_dotenv(clean_environment, tmp_path):
    key = tmp_path / "external.json"
    key.write_text(json.dumps({"type": "external_account", "credential_source": {"executable": {"command": "x"}}}))
    (clean_environment / ".env").write_text(f"GOOGLE_APPLICATION_CREDENTIALS={key}\n")
    with pytest.raises(ModelSourceError, match="credentials of type 'external_account'"):
        resolve_gcs_auth()


def test_unusable_key_file(monkeypatch, tmp_path):
    key = tmp_path / "missing.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    with pytest.raises(ModelSourceError, match=rf"^GOOGLE_APPLICATION_CREDENTIALS from the environment names {key}, "):
        resolve_gcs_auth()


# local sources and the cache layout


def test_local_file(tmp_path):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"weights")
    for uri in (str(weights), f"file://{weights}"):
        resolved = resolve_model_uri(uri)
        assert resolved.path == weights
        assert resolved.describe() == {
            "kind": "local",
            "uri": str(weights),
            "path": str(weights),
            "sha256": sha256_file(weights),
        }


def test_relative_local_file_is_made_absolute(clean_environment):
    (clean_environment / "weights.pt").write_bytes(b"weights")
    assert resolve_model_uri("weights.pt").path == clean_environment / "weights.pt"


def test_missing_local_file(tmp_path):
    with pytest.raises(ModelSourceError, match=rf"^model file not found: {tmp_path / 'nope.pt'}$"):
        resolve_model_uri(str(tmp_path / "nope.pt"))


def test_local_folder_is_not_a_state_dict(tmp_path):
    with pytest.raises(ModelSourceError, match="is not a file"):
        resolve_model_uri(f"file://{tmp_path}")


@pytest.mark.parametrize(("bucket", "name"), [("models", "../../etc/passwd"), ("models", "a//b.pt"), ("../x", "a.pt")])
def test_fetch_checks_names_before_using_them_as_paths(tmp_path, monkeypatch, bucket, name):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9")  # never reached
    with pytest.raises(ModelSourceError, match=r"is not a Cloud Storage bucket name|path segments are not supported"):
        fetch_gcs_object(bucket, name, tmp_path, retry_deadline=0.5, timeout=1)
    assert list(tmp_path.iterdir()) == [tmp_path / "cwd"]


def test_gcs_cache_layout(tmp_path):
    assert cache_path(tmp_path, "models", "weather/v1/state_dict.pt", 1234) == (
        tmp_path / "gcs" / "models" / "weather" / "v1" / "state_dict.pt" / "1234" / "state_dict.pt"
    )


def test_gcs_default_cache_is_the_project_cache(monkeypatch, tmp_path):
    """Without ``cache_dir``, objects go under the cache root the rest of the suite uses."""
    seen = {}

    def fetch(bucket, name, cache_dir):
        seen["cache_dir"] = cache_dir
        raise ModelSourceError("stop here")

    monkeypatch.setenv("MODEL_SERVING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("model_serving.sources.resolve.fetch_gcs_object", fetch)
    with pytest.raises(ModelSourceError, match="stop here"):
        resolve_model_uri("gs://models/x.pt")
    assert seen["cache_dir"] == tmp_path / "cache"
