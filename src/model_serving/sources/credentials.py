"""Which credentials a ``gs://`` model source uses, found the way upstream users had them.

In order:

1. ``STORAGE_EMULATOR_HOST`` set: anonymous access to that storage emulator;
2. ``CLOUDSDK_AUTH_ACCESS_TOKEN`` set: that bearer token (``gcloud auth print-access-token``), with the project
   ``GOOGLE_CLOUD_PROJECT``;
3. ``GOOGLE_APPLICATION_CREDENTIALS`` set: that key (or credentials) file;
4. Application Default Credentials (``gcloud auth application-default login``, or the metadata server).

Each variable is read from the process environment, else from a ``.env`` file in the working directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import google.auth
import google.auth.exceptions
import google.oauth2.credentials
import google.oauth2.service_account
from dotenv import dotenv_values
from google.auth.credentials import AnonymousCredentials, Credentials

from model_serving.sources.errors import ModelSourceError

EMULATOR_HOST = "STORAGE_EMULATOR_HOST"
ACCESS_TOKEN = "CLOUDSDK_AUTH_ACCESS_TOKEN"
PROJECT = "GOOGLE_CLOUD_PROJECT"
KEY_FILE = "GOOGLE_APPLICATION_CREDENTIALS"
VARIABLES = (EMULATOR_HOST, ACCESS_TOKEN, PROJECT, KEY_FILE)
DOTENV_NAME = ".env"
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"

HOW_TO_AUTHENTICATE = (
    f"set {ACCESS_TOKEN}=$(gcloud auth print-access-token) and {PROJECT}=<your project> (in the environment or in "
    f"./{DOTENV_NAME}), or run `gcloud auth application-default login`, or set {KEY_FILE}=<service account key file>"
)

AuthKind = Literal["emulator", "token", "key_file", "adc"]


@dataclass(frozen=True)
class Setting:
    """One variable's value and where it came from: ``environment`` or the path of a ``.env`` file."""

    value: str
    origin: str

    def describe(self, name: str) -> str:
        return f"{name} from the {self.origin}" if self.origin == "environment" else f"{name} from {self.origin}"


@dataclass(frozen=True)
class GcsAuth:
    """How to reach Cloud Storage: the credentials, the project, the endpoint (None: the real service) and a
    sentence saying where the credentials came from, for messages."""

    kind: AuthKind
    credentials: Credentials
    project: str | None
    endpoint: str | None
    source: str


def gcs_settings(environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None) -> dict[str, Setting]:
    """The non-empty credential variables, from ``environ`` (default: the process environment) or, for those
    not set there, from ``dotenv_path`` (default: ``./.env``)."""
    environ = os.environ if environ is None else environ
    dotenv_path = Path.cwd() / DOTENV_NAME if dotenv_path is None else dotenv_path
    from_file: dict[str, str | None] = dotenv_values(dotenv_path) if dotenv_path.is_file() else {}
    settings: dict[str, Setting] = {}
    for name in VARIABLES:
        if environ.get(name, "").strip():
            settings[name] = Setting(environ[name].strip(), "environment")
        elif (from_file.get(name) or "").strip():
            settings[name] = Setting(str(from_file[name]).strip(), str(dotenv_path))
    return settings


def emulator_endpoint(host: str) -> str:
    """``STORAGE_EMULATOR_HOST`` as a base URL: the client libraries accept ``host:port`` as well as a URL."""
    host = host.rstrip("/")
    return host if "://" in host else f"http://{host}"


def resolve_gcs_auth(environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None) -> GcsAuth:
    """The credentials for ``gs://`` URIs (see the module docstring for the order); :class:`ModelSourceError`
    saying what to set when there are none."""
    settings = gcs_settings(environ, dotenv_path)
    project = settings[PROJECT].value if PROJECT in settings else None
    if EMULATOR_HOST in settings:
        endpoint = emulator_endpoint(settings[EMULATOR_HOST].value)
        where = settings[EMULATOR_HOST].describe(EMULATOR_HOST)
        return GcsAuth(
            kind="emulator",
            credentials=AnonymousCredentials(),
            project=project,
            endpoint=endpoint,
            source=f"anonymous access to the storage emulator at {endpoint} ({where})",
        )
    if ACCESS_TOKEN in settings:
        token = settings[ACCESS_TOKEN]
        return GcsAuth(
            kind="token",
            credentials=google.oauth2.credentials.Credentials(token.value),
            project=project,
            endpoint=None,
            source=f"the access token in {token.describe(ACCESS_TOKEN)}",
        )
    if KEY_FILE in settings:
        return _key_file_auth(settings[KEY_FILE], project)
    return _default_auth(project)


def _key_file_auth(key_file: Setting, project: str | None) -> GcsAuth:
    where = key_file.describe(KEY_FILE)
    path = Path(key_file.value).expanduser()
    try:
        if key_file.origin == "environment":
            credentials, file_project = google.auth.default(scopes=[READ_ONLY_SCOPE])  # reads the variable itself
        else:
            credentials, file_project = _load_key_file(path)
    except (google.auth.exceptions.DefaultCredentialsError, OSError, ValueError, KeyError) as error:
        raise ModelSourceError(
            f"{where} names {path}, which is not a usable credentials file ({error}); point it at a service "
            "account key, or unset it and run `gcloud auth application-default login`"
        ) from error
    return GcsAuth(
        kind="key_file",
        credentials=credentials,
        project=project or file_project,
        endpoint=None,
        source=f"the credentials file {path} named by {where}",
    )


def _load_key_file(path: Path) -> tuple[Credentials, str | None]:
    """A service account key or ``gcloud`` user credentials file, loaded by type (no other types: a file named
    in ``.env`` should not make this process run arbitrary credential programs)."""
    info = json.loads(path.read_text())
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        account = google.oauth2.service_account.Credentials.from_service_account_info(info, scopes=[READ_ONLY_SCOPE])
        return account, info.get("project_id")
    if kind == "authorized_user":
        user = google.oauth2.credentials.Credentials.from_authorized_user_info(info, scopes=[READ_ONLY_SCOPE])
        return user, info.get("quota_project_id")
    raise ValueError(
        f"credentials of type {kind!r}; from .env only 'service_account' and 'authorized_user' files are read, "
        "set other kinds in the environment"
    )


def _default_auth(project: str | None) -> GcsAuth:
    try:
        credentials, default_project = google.auth.default(scopes=[READ_ONLY_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError as error:
        raise ModelSourceError(f"no Google Cloud credentials for gs:// model URIs: {HOW_TO_AUTHENTICATE}") from error
    return GcsAuth(
        kind="adc",
        credentials=credentials,
        project=project or default_project,
        endpoint=None,
        source="the application default credentials",
    )
