"""Hardening: non-root, a read-only root filesystem, no file written, no secrets in any layer, history or config.

Read-only root: the services are run with ``read_only=True`` and no tmpfs at all (not even ``/tmp``): they write no
file, which ``test_the_service_writes_no_file`` checks on a writable container with ``docker diff`` after a
prediction. (Docker still mounts its own ``/dev/shm`` tmpfs, where the Python services keep, when ``WORKERS`` > 1,
prometheus_client's multiprocess files, in ``/dev/shm/model-serving-metrics``, and their worker supervisor its locks;
the test lists it.)

Secrets: the image's history (``created_by``) and config environment are checked for credential-like assignments
and token shapes, and every layer of ``docker save`` (so a file deleted by a later layer still counts) is read as a
stream: files with credential names anywhere, and the text of files under /app, /opt, /root, /home and /etc (the
first ``MAX_TEXT_BYTES`` of each, binaries skipped) for private keys and token shapes. The scanner is checked
against a synthetic image with planted secrets, so this test can fail.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from model_serving.docker.archive import tar_bytes
from model_serving.docker.engine import client
from model_serving.docker.wheels import cache_dir
from model_serving.services import SERVICE_NAMES

_JSON = {"content-type": "application/json"}

# --- the scanner ---------------------------------------------------------------------------------------------

#: Files that hold credentials by their nature, flagged wherever they are.
SECRET_FILE_NAMES = frozenset(
    {
        ".env",
        ".netrc",
        "_netrc",
        ".pypirc",
        ".git-credentials",
        ".npmrc",
        ".boto",
        ".s3cfg",
        ".dockercfg",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "credentials.json",
        "service-account.json",
    }
)
SECRET_PATH_SUFFIXES = (".aws/credentials", ".docker/config.json", ".kube/config", ".config/gcloud/credentials.db")
#: Package-manager configuration: flagged only when it carries credentials.
CREDENTIAL_CONFIG_NAMES = frozenset({"pip.conf", "pip.ini", ".pip.conf", ".condarc", ".yarnrc"})
CREDENTIAL_IN_CONFIG = re.compile(rb"(?i)(?:password|passwd|token|_auth)\s*[=:]|://[^/\s:@]+:[^/\s@]+@")
#: Where file contents are read.
TEXT_ROOTS = ("app/", "opt/", "root/", "home/", "etc/")
MAX_TEXT_BYTES = 2 << 20
#: Secret shapes in text (and in history and environment values).
TOKEN_PATTERNS = {
    "private key": re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "GitHub token": re.compile(rb"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})"),
    "AWS access key id": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key": re.compile(rb"(?i)aws_secret_access_key\s*[=:]\s*\S"),
    "Slack token": re.compile(rb"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Hugging Face token": re.compile(rb"\bhf_[A-Za-z0-9]{34}\b"),
    "Google API key": re.compile(rb"\bAIza[0-9A-Za-z_-]{35}\b"),
}
#: Environment variable names (in the config, or assigned in history) that hold credentials.
SECRET_VARIABLE = re.compile(
    r"(?i)^(?:[\w.-]*(?:token|secret|passw(?:or)?d|key|credential)[\w.-]*|(?:AWS|GOOGLE|CLOUDSDK|AZURE)_\w+)$"
)
#: Names that match but are public: the official python images' ``GPG_KEY`` is the release-signing key's fingerprint.
PUBLIC_VARIABLES = frozenset({"GPG_KEY"})
_ASSIGNMENT = re.compile(r"(?:^|[\s|;&])(?:--build-arg\s+|--env\s+|-e\s+)?([A-Za-z_][\w.-]*)=(\S*)")
_CREDENTIAL_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@dataclass(frozen=True)
class Finding:
    where: str
    what: str


@dataclass
class ScanStats:
    layers: int = 0
    files: int = 0
    text_files: int = 0
    text_bytes: int = 0
    findings: list[Finding] = field(default_factory=list)


def _tokens(data: bytes) -> list[str]:
    return [name for name, pattern in TOKEN_PATTERNS.items() if pattern.search(data)]


def scan_metadata(history: Iterable[str], env: Iterable[str]) -> list[Finding]:
    """Credential-like assignments and token shapes in history ``created_by`` lines and config ``KEY=VALUE``s."""
    findings = []
    for line in history:
        for name, value in _ASSIGNMENT.findall(line):
            if SECRET_VARIABLE.match(name) and name not in PUBLIC_VARIABLES and value:
                findings.append(Finding("history", f"{name}= in {line[:160]!r}"))
        if _CREDENTIAL_URL.search(line):
            findings.append(Finding("history", f"a URL with credentials in {line[:160]!r}"))
        findings += [Finding("history", f"{kind} in {line[:160]!r}") for kind in _tokens(line.encode())]
    for item in env:
        name, _, value = item.partition("=")
        if SECRET_VARIABLE.match(name) and name not in PUBLIC_VARIABLES:
            findings.append(Finding("config env", f"variable {name}"))
        if _CREDENTIAL_URL.search(value):
            findings.append(Finding("config env", f"a URL with credentials in {name}"))
        findings += [Finding("config env", f"{kind} in {name}") for kind in _tokens(value.encode())]
    return findings


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: a stream whose first bytes were already read to sniff it."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self.head, self.stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _open_layer(head: bytes, stream: IO[bytes]) -> tarfile.TarFile | None:
    """A layer archive (plain or gzip tar) as a stream, or None for anything else (configs, manifests)."""
    if head[:2] == b"\x1f\x8b":
        return tarfile.open(fileobj=io.BufferedReader(_Prefixed(head, stream)), mode="r|gz")
    if head[257:262] == b"ustar":
        return tarfile.open(fileobj=io.BufferedReader(_Prefixed(head, stream)), mode="r|")
    return None


def _scan_layer(layer: tarfile.TarFile, name: str, stats: ScanStats) -> None:
    for member in layer:
        if not member.isfile():
            continue
        stats.files += 1
        path = member.name.removeprefix("./").lstrip("/")
        base = posixpath.basename(path)
        where = f"{name}: /{path}"
        if base.startswith(".wh."):  # a deletion marker: the deleted file is in an earlier layer, scanned there
            continue
        if base in SECRET_FILE_NAMES or path.endswith(SECRET_PATH_SUFFIXES):
            stats.findings.append(Finding(where, "a credentials file"))
        if not path.startswith(TEXT_ROOTS) and base not in CREDENTIAL_CONFIG_NAMES:
            continue
        handle = layer.extractfile(member)
        data = handle.read(MAX_TEXT_BYTES) if handle else b""
        if b"\0" in data[:8192]:
            continue  # binary
        stats.text_files += 1
        stats.text_bytes += len(data)
        if base in CREDENTIAL_CONFIG_NAMES and CREDENTIAL_IN_CONFIG.search(data):
            stats.findings.append(Finding(where, "credentials in a package-manager configuration"))
        stats.findings += [Finding(where, kind) for kind in _tokens(data)]


def scan_saved_image(stream: IO[bytes]) -> ScanStats:
    """Every layer of a ``docker save`` archive (legacy ``<id>/layer.tar`` or OCI ``blobs/``), as a stream."""
    stats = ScanStats()
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            head = handle.read(512)
            layer = _open_layer(head, handle)
            if layer is None:  # image config, manifest, index: JSON that may hold history and env too
                data = head + handle.read(MAX_TEXT_BYTES)
                stats.findings += [Finding(member.name, kind) for kind in _tokens(data)]
                continue
            stats.layers += 1
            with layer:
                _scan_layer(layer, member.name, stats)
    return stats


class _Chunks(io.RawIOBase):
    """An iterator of byte chunks (the Docker SDK's ``image.save()``) as a readable stream."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks: Iterator[bytes] = iter(chunks)
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self.pending:
            self.pending = next(self.chunks, b"")
            if not self.pending:
                return 0
        n = min(len(buffer), len(self.pending))
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        return n


# --- the scanner can fail --------------------------------------------------------------------------------------

# Assembled at run time, so that this file itself holds no token-shaped string.
_PLANTED_KEY = b"-----BEGIN " + b"PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END " + b"PRIVATE KEY-----\n"
_PLANTED_GITHUB = b"gh" + b"p_" + b"A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
_PLANTED_AWS = b"AK" + b"IA" + b"Q3EGRA5UXZNPCFTX"


def _layer(files: dict[str, bytes], compress: bool = False) -> bytes:
    archive = tar_bytes(files)
    return gzip.compress(archive) if compress else archive


def _saved_image(layers: dict[str, bytes]) -> io.BytesIO:
    """A ``docker save``-like archive: ``manifest.json``, a config, and the given layer archives."""
    members = {
        "manifest.json": json.dumps([{"Config": "config.json", "Layers": list(layers)}]).encode(),
        "config.json": json.dumps({"config": {"Env": ["PATH=/usr/bin"]}, "history": []}).encode(),
        **layers,
    }
    return io.BytesIO(tar_bytes(members))


_CLEAN_LAYER = {
    "app/service/main.py": b"import os\nKEY_NAMES = ['model_id']\n",
    "etc/hostname": b"localhost\n",
    "etc/ssl/certs/ca.pem": b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "opt/venv/lib/native.so": b"\x7fELF\0\0\0" + _PLANTED_AWS,  # binary: not read as text
    "home/app/.config/pip/pip.conf": b"[global]\nindex-url = https://pypi.org/simple\n",
    "usr/share/doc/readme.txt": _PLANTED_GITHUB,  # outside the text roots
}


@pytest.mark.unit
def test_the_scanner_passes_a_clean_image():
    stats = scan_saved_image(_saved_image({"l1/layer.tar": _layer(_CLEAN_LAYER)}))
    assert stats.findings == []
    assert (stats.layers, stats.files, stats.text_files) == (1, 6, 4)


@pytest.mark.unit
def test_the_scanner_flags_planted_secrets():
    planted = {
        "root/.netrc": b"machine example.com login me password hunter2\n",
        "app/settings.py": b"AWS_KEY = '" + _PLANTED_AWS + b"'\n",
        "opt/tls/server.pem": _PLANTED_KEY,
        "home/app/.config/pip/pip.conf": b"[global]\nindex-url = https://me:hunter2@pypi.example.com/simple\n",
        "etc/profile.d/token.sh": b"export GH=" + _PLANTED_GITHUB + b"\n",
        "home/app/.ssh/id_ed25519": b"anything",
    }
    deleted_later = {"root/.ssh/.wh.id_rsa": b""}
    stats = scan_saved_image(
        _saved_image(
            {
                "clean/layer.tar": _layer(_CLEAN_LAYER),
                "planted/layer.tar": _layer(planted),
                # OCI layout, gzip: a key added here and deleted by the next layer is still in the image.
                "blobs/sha256/0123": _layer({"root/.ssh/id_rsa": _PLANTED_KEY}, compress=True),
                "deleting/layer.tar": _layer(deleted_later),
            }
        )
    )
    found = {(f.where, f.what) for f in stats.findings}
    assert found == {
        ("planted/layer.tar: /root/.netrc", "a credentials file"),
        ("planted/layer.tar: /app/settings.py", "AWS access key id"),
        ("planted/layer.tar: /opt/tls/server.pem", "private key"),
        ("planted/layer.tar: /home/app/.config/pip/pip.conf", "credentials in a package-manager configuration"),
        ("planted/layer.tar: /etc/profile.d/token.sh", "GitHub token"),
        ("planted/layer.tar: /home/app/.ssh/id_ed25519", "a credentials file"),
        ("blobs/sha256/0123: /root/.ssh/id_rsa", "a credentials file"),
        ("blobs/sha256/0123: /root/.ssh/id_rsa", "private key"),
    }


@pytest.mark.unit
def test_the_metadata_scan_flags_credentials_in_history_and_env():
    clean_history = [
        "/bin/sh -c #(nop)  ENV PATH=/opt/venv/bin:/usr/bin PYTHONDONTWRITEBYTECODE=1 MODEL_DIR=/opt/model",
        "|1 BASE_IMAGE=python:3.11-slim-bookworm /bin/sh -c useradd --uid 10001 app",
        "/bin/sh -c #(nop)  LABEL org.model-serving.content-hash=0123abcd",
    ]
    clean_env = ["PATH=/usr/bin", "MODEL_DIR=/opt/model", "ORT_DISABLE_TELEMETRY=1", "GPG_KEY=A035C8C19219BA82"]
    assert scan_metadata([*clean_history, "/bin/sh -c #(nop)  ENV GPG_KEY=A035C8C19219BA82"], clean_env) == []
    findings = scan_metadata(
        [
            "|1 GITHUB_TOKEN=abc /bin/sh -c make",
            "/bin/sh -c pip install --index-url https://me:hunter2@pypi.example.com/simple x",
            "/bin/sh -c #(nop)  ENV API_KEY=abc",
            "/bin/sh -c echo " + _PLANTED_AWS.decode(),
        ],
        ["AWS_SECRET_ACCESS_KEY=abc", "HF_TOKEN=abc", "DB_PASSWORD=abc", "SOME_URL=https://u:p@host/"],
    )
    assert [f.where for f in findings].count("history") == 4
    assert {f.what for f in findings if f.where == "config env"} == {
        "variable AWS_SECRET_ACCESS_KEY",
        "variable HF_TOKEN",
        "variable DB_PASSWORD",
        "a URL with credentials in SOME_URL",
    }


# --- the images --------------------------------------------------------------------------------------------------


def _is_root(user: str) -> bool:
    name = user.split(":")[0]
    return name in ("", "root", "0")


def _process_uids(container) -> list[tuple[str, str]]:
    """(uid, command) of every process in the container, as the engine sees them (works for scratch images)."""
    top = container.top(ps_args="-o pid,uid,args")
    uid, args = top["Titles"].index("UID"), top["Titles"].index("COMMAND")
    return [(process[uid], process[args]) for process in top["Processes"]]


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_runs_as_non_root_on_a_read_only_root_filesystem(
    service_images, read_only_services, benchmark_body, name, workers
):
    image = client().images.get(service_images[name].tag)
    user = image.attrs["Config"].get("User", "")
    assert not _is_root(user), f"{name} image runs as {user!r}"
    # Healthy (run_service waits for 200 on GET /) with nothing writable but Docker's /dev/shm.
    service = read_only_services(name, workers)
    processes = _process_uids(service.docker_container)
    response = httpx.post(f"{service.base_url}/predict/", content=benchmark_body, headers=_JSON, timeout=60)
    metrics = httpx.get(f"{service.base_url}/metrics", timeout=30)
    shm = _files_in_dev_shm(service.docker_container) if name != "rust-onnx-serving" else []
    logs = service.logs()
    print(f"\n{name} WORKERS={workers}: image user {user}, processes {processes}")
    assert processes
    assert all(uid not in ("0", "root") for uid, _ in processes), processes
    assert response.status_code == 200, f"{response.text}\n{logs}"
    assert "prediction" in response.json()
    assert metrics.status_code == 200, f"{metrics.text}\n{logs}"
    # What the Python services write, they write here: the metrics files, and multiprocessing's semaphores.
    print(f"{name} WORKERS={workers}: /dev/shm holds {shm}")
    undeclared = [path for path in shm if not path.startswith(("model-serving-metrics", "sem."))]
    assert not undeclared, f"{name} wrote to /dev/shm outside its metrics folder: {undeclared}"
    if name != "rust-onnx-serving" and workers > 1:  # one worker keeps its metrics in memory
        assert any(path.startswith("model-serving-metrics/") and path.endswith(".db") for path in shm), shm


def _files_in_dev_shm(container) -> list[str]:
    """Every file under the container's /dev/shm, relative to it (by the service's own Python: no shell there)."""
    listing = (
        "import os; print('\\n'.join(os.path.relpath(os.path.join(d, f), '/dev/shm') "
        "for d, _, fs in os.walk('/dev/shm') for f in fs))"
    )
    result = container.exec_run(["python", "-c", listing])
    assert result.exit_code == 0, result.output
    return [line for line in result.output.decode().splitlines() if line]


@pytest.mark.integration
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_the_service_writes_no_file(services, benchmark_body, name):
    """On a writable root filesystem, a started service that answered a prediction has changed no file (the
    session's container: whatever the tests before asked of it, too)."""
    service = services[name]
    response = httpx.post(f"{service.base_url}/predict/", content=benchmark_body, headers=_JSON, timeout=60)
    changes = service.docker_container.diff() or []
    assert response.status_code == 200
    assert changes == [], f"{name} wrote to its filesystem: {changes}"


def _scan_image(image) -> ScanStats:  # type: ignore[no-untyped-def]
    """The scan of an image's layers, kept per (image id, this file's text): one image scanned by one scanner gives
    one answer, and the engine's ``docker save`` of the torch image alone takes ~12 s. A rebuilt image or an edited
    scanner is scanned afresh; delete the folder to force it."""
    scanner = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    kept = cache_dir() / "layer-scans" / f"{image.id.removeprefix('sha256:')}-{scanner}.json"
    if kept.is_file():
        saved = json.loads(kept.read_text())
        return ScanStats(**{**saved, "findings": [Finding(**f) for f in saved["findings"]]})
    stats = scan_saved_image(io.BufferedReader(_Chunks(image.save(chunk_size=1 << 20)), buffer_size=1 << 20))
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_suffix(f".{os.getpid()}.partial")  # renamed whole: a crash leaves no half-written scan
    partial.write_text(json.dumps(asdict(stats)))
    partial.replace(kept)
    return stats


@pytest.mark.integration
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_no_secrets_in_any_layer_history_or_config(service_images, name):
    image = client().images.get(service_images[name].tag)
    metadata = scan_metadata(
        [entry.get("CreatedBy", "") for entry in image.history()], image.attrs["Config"].get("Env") or []
    )
    stats = _scan_image(image)
    print(
        f"\n{name}: {stats.layers} layers, {stats.files} files, {stats.text_files} text files "
        f"({stats.text_bytes / 1e6:.1f} MB) scanned; {len(image.history())} history entries"
    )
    assert stats.layers > 0, "the scan saw no layer"
    assert stats.text_files > 0, "the scan read no text file"
    assert metadata == []
    assert stats.findings == []
