"""Fetching one Cloud Storage object into a local cache keyed by its generation.

The cache layout is ``<cache_dir>/gcs/<bucket>/<object name>/<generation>/<basename>``: an object that is
replaced gets a new generation and so a new file, and a cached file is reused only while its size and checksum
match the object's metadata. Downloads go to a ``.partial`` file in the same folder, pinned to the generation
that was looked up (``if_generation_match``), and are renamed into place when complete.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import google.auth.exceptions
import google_crc32c
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

from model_serving.sources.credentials import ACCESS_TOKEN, HOW_TO_AUTHENTICATE, GcsAuth, resolve_gcs_auth
from model_serving.sources.errors import ModelSourceError
from model_serving.sources.uri import GcsUri, parse_model_uri

log = logging.getLogger(__name__)

DEFAULT_RETRY_DEADLINE_S = 60.0  # how long transient failures (connection refused, 5xx, 429) are retried
DEFAULT_TIMEOUT_S = 60.0  # per request (connect and read)
_ATTEMPTS = 3  # downloads restarted when the object is replaced while being downloaded
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchedObject:
    """A Cloud Storage object in the local cache."""

    path: Path
    uri: str
    bucket: str
    name: str
    generation: int
    size: int
    md5_hash: str | None  # base64, as Cloud Storage reports it; None for composite objects
    crc32c: str | None  # base64 big-endian CRC32C
    downloaded: bool  # False when the cached file was used


def make_client(auth: GcsAuth) -> storage.Client:
    """A client for ``auth``: its credentials and project, and its endpoint when it names one (an emulator)."""
    client_options = {"api_endpoint": auth.endpoint} if auth.endpoint else None
    return storage.Client(project=auth.project, credentials=auth.credentials, client_options=client_options)


def cache_path(cache_dir: Path, bucket: str, name: str, generation: int) -> Path:
    """Where generation ``generation`` of ``gs://bucket/name`` is cached."""
    return cache_dir.joinpath("gcs", bucket, *name.split("/"), str(generation), name.rsplit("/", 1)[-1])


def fetch_gcs_object(
    bucket: str,
    name: str,
    cache_dir: Path,
    *,
    auth: GcsAuth | None = None,
    retry_deadline: float = DEFAULT_RETRY_DEADLINE_S,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> FetchedObject:
    """The current generation of ``gs://bucket/name`` as a local file under ``cache_dir`` (downloaded unless
    already cached); :class:`ModelSourceError` with a clear message when it cannot be had.

    ``auth`` defaults to :func:`resolve_gcs_auth`.
    """
    auth = resolve_gcs_auth() if auth is None else auth
    gcs_uri = GcsUri(bucket, name)
    if parse_model_uri(str(gcs_uri)) != gcs_uri:  # the names become cache paths: the same rules as URIs
        raise ModelSourceError(f"not a valid bucket and object name: {bucket!r}, {name!r}")
    uri = str(gcs_uri)
    client = make_client(auth)
    retry = DEFAULT_RETRY.with_timeout(retry_deadline)
    for attempt in range(1, _ATTEMPTS + 1):
        with _mapped_errors(gcs_uri, auth, client):
            blob = client.bucket(bucket).get_blob(name, timeout=timeout, retry=retry)
            if blob is None:
                raise _not_found(client, bucket, name, timeout=timeout, retry=retry)
            fetched = FetchedObject(
                path=cache_path(cache_dir, bucket, name, int(blob.generation)),
                uri=uri,
                bucket=bucket,
                name=name,
                generation=int(blob.generation),
                size=int(blob.size),
                md5_hash=blob.md5_hash,
                crc32c=blob.crc32c,
                downloaded=False,
            )
            if _cached_file_matches(fetched):
                log.info(f"using cached {uri} (generation {fetched.generation}, {_size(fetched.size)}): {fetched.path}")
                return fetched
            log.info(f"downloading {uri} (generation {fetched.generation}, {_size(fetched.size)})")
            try:
                _download(blob, fetched, timeout=timeout, retry=retry)
            except api_exceptions.PreconditionFailed:
                if attempt == _ATTEMPTS:
                    raise ModelSourceError(
                        f"{uri} was replaced {_ATTEMPTS} times while being downloaded; try again when it is stable"
                    ) from None
                log.info(f"{uri} was replaced during the download; looking up its new generation")
                continue
            log.info(f"downloaded {uri} to {fetched.path}")
            return dataclasses.replace(fetched, downloaded=True)
    raise AssertionError("unreachable")  # pragma: no cover


def _size(size: int) -> str:
    if size >= 100_000:
        return f"{size / 1e6:.1f} MB"
    if size >= 1000:
        return f"{size / 1e3:.1f} kB"
    return f"{size} bytes"


def _download(blob: storage.Blob, fetched: FetchedObject, *, timeout: float, retry: Retry) -> None:
    folder = fetched.path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, partial_name = tempfile.mkstemp(dir=folder, prefix=f"{fetched.path.name}.", suffix=".partial")
        os.close(handle)
    except OSError as error:
        raise ModelSourceError(
            f"cannot write the download cache {folder} ({error.strerror or error}); set MODEL_SERVING_CACHE_DIR to "
            "a writable folder"
        ) from error
    partial = Path(partial_name)
    try:
        # checksum="auto": the library checks the bytes against the CRC32C or MD5 the server sends.
        blob.download_to_filename(
            str(partial), if_generation_match=fetched.generation, timeout=timeout, retry=retry, checksum="auto"
        )
        if partial.stat().st_size != fetched.size:
            raise ModelSourceError(
                f"download of {fetched.uri} is incomplete: {partial.stat().st_size} of {fetched.size} bytes"
            )
        if not _checksums_match(partial, fetched):
            raise ModelSourceError(f"download of {fetched.uri} does not match the checksum in its metadata; try again")
        os.replace(partial, fetched.path)
    finally:
        partial.unlink(missing_ok=True)


def _cached_file_matches(fetched: FetchedObject) -> bool:
    try:
        if not fetched.path.is_file() or fetched.path.stat().st_size != fetched.size:
            return False
    except OSError:
        return False
    return _checksums_match(fetched.path, fetched)


def _checksums_match(path: Path, fetched: FetchedObject) -> bool:
    """The file has the object's CRC32C (else MD5); True when the metadata has neither."""
    if fetched.crc32c:
        checksum = google_crc32c.Checksum()
        for chunk in _chunks(path):
            checksum.update(chunk)
        return base64.b64encode(checksum.digest()).decode() == fetched.crc32c
    if fetched.md5_hash:
        md5 = hashlib.md5(usedforsecurity=False)
        for chunk in _chunks(path):
            md5.update(chunk)
        return base64.b64encode(md5.digest()).decode() == fetched.md5_hash
    return True


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(_CHUNK), b"")


def _not_found(client: storage.Client, bucket: str, name: str, *, timeout: float, retry: Retry) -> ModelSourceError:
    """Why ``gs://bucket/name`` is not there: the bucket is missing, or only the object."""
    uri = str(GcsUri(bucket, name))
    try:
        bucket_exists = client.bucket(bucket).exists(timeout=timeout, retry=retry)
    except api_exceptions.Forbidden:
        return ModelSourceError(
            f"{uri} not found: no object {name!r} in bucket gs://{bucket} (or no permission to list it); check the "
            "object name"
        )
    if not bucket_exists:
        return ModelSourceError(f"bucket gs://{bucket} does not exist (looking for {uri}); check the bucket name")
    return ModelSourceError(
        f"{uri} not found: bucket gs://{bucket} exists but has no object named {name!r}; check the object name "
        f"(`gcloud storage ls gs://{bucket}/` lists them)"
    )


def _host(client: storage.Client) -> str:
    endpoint = client.api_endpoint or "https://storage.googleapis.com"
    return urlsplit(endpoint).netloc or endpoint


def _credentials_advice(auth: GcsAuth) -> str:
    if auth.kind == "emulator":
        return (
            "storage emulators take anonymous requests: check that STORAGE_EMULATOR_HOST points at one, or unset it "
            f"to use real credentials ({HOW_TO_AUTHENTICATE})"
        )
    if auth.kind == "token":
        return (
            f"access tokens expire after about an hour: set a fresh one, {ACCESS_TOKEN}=$(gcloud auth "
            "print-access-token)"
        )
    if auth.kind == "key_file":
        return "check that the key is valid and not revoked, or run `gcloud auth application-default login`"
    return "run `gcloud auth application-default login` again, or set GOOGLE_APPLICATION_CREDENTIALS to a valid key"


@contextlib.contextmanager
def _mapped_errors(uri: GcsUri, auth: GcsAuth, client: storage.Client) -> Iterator[None]:
    """Cloud Storage, google-auth and network errors as :class:`ModelSourceError` with what to do."""
    host = _host(client)
    try:
        yield
    except ModelSourceError:
        raise
    except api_exceptions.Unauthorized as error:
        raise _refused(uri, auth, host, "HTTP 401 Unauthorized: wrong or expired credentials") from error
    except google.auth.exceptions.TransportError as error:
        raise _unreachable(uri, host, error) from error
    except google.auth.exceptions.GoogleAuthError as error:
        # The server answered 401 and the credentials cannot be refreshed (a bare token, anonymous access).
        raise _refused(uri, auth, host, "HTTP 401 Unauthorized: wrong or expired credentials") from error
    except api_exceptions.Forbidden as error:
        raise ModelSourceError(
            f"{host} refused {auth.source} for {uri} (HTTP 403 Forbidden: expired credentials, or an account without "
            f"storage.objects.get on gs://{uri.bucket}, e.g. roles/storage.objectViewer); {_credentials_advice(auth)}"
            ", or use an account that may read the bucket"
        ) from error
    except api_exceptions.NotFound as error:
        raise ModelSourceError(
            f"{uri} disappeared while it was being read ({error.message}); check that it exists"
        ) from error
    except api_exceptions.RetryError as error:
        if _is_network_error(error.cause):
            raise _unreachable(uri, host, error.cause) from error
        raise ModelSourceError(f"reading {uri} from {host} kept failing: {error.cause or error}") from error
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError) as error:
        raise _unreachable(uri, host, error) from error
    except (DataCorruption, InvalidResponse) as error:
        raise ModelSourceError(f"the download of {uri} was corrupted or cut short ({error}); try again") from error
    except api_exceptions.GoogleAPICallError as error:
        raise ModelSourceError(f"{host} answered HTTP {error.code} for {uri}: {error.message}") from error


def _is_network_error(error: BaseException | None) -> bool:
    network = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        ConnectionError,
        TimeoutError,
        google.auth.exceptions.TransportError,
    )
    return isinstance(error, network)


def _network_reason(error: BaseException) -> str:
    """The operating system's words for a failed connection ("Connection refused", "Name or service not known"),
    dug out of the chain requests and urllib3 wrap around it."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return error.__class__.__name__


def _refused(uri: GcsUri, auth: GcsAuth, host: str, why: str) -> ModelSourceError:
    return ModelSourceError(f"{host} refused {auth.source} for {uri} ({why}); {_credentials_advice(auth)}")


def _unreachable(uri: GcsUri, host: str, error: BaseException) -> ModelSourceError:
    return ModelSourceError(
        f"cannot reach {host} to read {uri} ({_network_reason(error)}); check the network connection and any proxy "
        "settings (HTTPS_PROXY), or STORAGE_EMULATOR_HOST when using an emulator"
    )
