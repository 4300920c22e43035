"""Parsing a model URI: a local path, ``file:///absolute/path`` or ``gs://bucket/object``. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from model_serving.sources.errors import ModelSourceError

ACCEPTED = "a local path, file:///absolute/path or gs://bucket/path/to/object"

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
# A URI-looking prefix without the "//" (``gs:bucket/x``, ``file:/x``): a typo, not a file name.
_KNOWN_SCHEME_TYPO = re.compile(r"^(?:gs|file):", re.IGNORECASE)
# Cloud Storage bucket names: 3-63 characters per dot-separated part (222 in all), lowercase letters, digits,
# '-', '_' and '.', starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{1,220}[a-z0-9])$")
_MAX_OBJECT_NAME_BYTES = 1024


@dataclass(frozen=True)
class LocalUri:
    """A file on this machine (not checked to exist here)."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class GcsUri:
    """An object in Google Cloud Storage."""

    bucket: str
    name: str

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


ModelUri = LocalUri | GcsUri


def parse_model_uri(uri: str) -> ModelUri:
    """``uri`` as a :class:`LocalUri` or :class:`GcsUri`; :class:`ModelSourceError` for anything else."""
    text = uri.strip()
    if not text:
        raise ModelSourceError(f"empty model URI: give {ACCEPTED}")
    match = _SCHEME.match(text)
    if match is None:
        if _KNOWN_SCHEME_TYPO.match(text):
            raise ModelSourceError(f"malformed model URI {uri!r}: give {ACCEPTED}")
        return LocalUri(Path(text).expanduser())
    scheme = match["scheme"].lower()
    if scheme == "gs":
        return _parse_gcs(uri, text[match.end() :])
    if scheme == "file":
        return _parse_file(uri, text)
    raise ModelSourceError(f"unsupported scheme {scheme}:// in model URI {uri!r}: give {ACCEPTED}")


def _parse_gcs(uri: str, rest: str) -> GcsUri:
    bucket, slash, name = rest.partition("/")
    if not bucket:
        raise ModelSourceError(f"no bucket in {uri!r}: give gs://bucket/path/to/object")
    if not _BUCKET.match(bucket) or ".." in bucket or any(len(part) > 63 for part in bucket.split(".")):
        raise ModelSourceError(
            f"{bucket!r} in {uri!r} is not a Cloud Storage bucket name (3-63 lowercase letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit)"
        )
    if not slash or not name:
        raise ModelSourceError(f"no object in {uri!r}: give the state dict's object, gs://{bucket}/path/to/object")
    if name.endswith("/"):
        raise ModelSourceError(f"{uri!r} names a folder, not an object: give gs://{bucket}/path/to/object")
    if len(name.encode()) > _MAX_OBJECT_NAME_BYTES or any(character in name for character in "\r\n\0"):
        raise ModelSourceError(f"{uri!r} is not a valid object name (at most 1024 bytes, no line breaks)")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ModelSourceError(
            f"object names with empty, '.' or '..' path segments are not supported: {uri!r} (they cannot be "
            "cached under the same path)"
        )
    return GcsUri(bucket=bucket, name=name)


def _parse_file(uri: str, text: str) -> LocalUri:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise ModelSourceError(
            f"file URIs must be absolute, file:///absolute/path (three slashes), not {uri!r}; or give a plain path"
        )
    if parts.query or parts.fragment:
        raise ModelSourceError(f"file URIs take no query or fragment: {uri!r}")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ModelSourceError(f"file URIs must be absolute, file:///absolute/path, not {uri!r}")
    return LocalUri(Path(path))
