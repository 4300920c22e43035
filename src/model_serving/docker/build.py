"""Service images: assemble a build context from what is on this machine, tag it by a hash of its content, and
build only when that tag is not there yet.

The context holds everything that goes into the image: ``Dockerfile``, ``requirements.txt``, ``wheels/`` (the
cached wheel set), ``native/`` (stripped copies of the extension modules that ship symbols, see
:mod:`model_serving.docker.native`), ``app/`` (the service's Python packages, each copied whole, as
:mod:`model_serving.services` lists them) and ``model/`` (the manifest and the files the service reads). The tag
``model-serving/<service>:<12 hex>`` hashes the context's file names and bytes plus the base image id, so an
unchanged service is found by tag and not rebuilt; ``:latest`` follows the newest.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.models.images import Image

from model_core.manifest import read_manifest, verify_files
from model_serving.docker.base import ensure_base_image
from model_serving.docker.engine import client
from model_serving.docker.native import NATIVE_DIR, stripped_extension_modules
from model_serving.docker.rust_context import BINARY_NAME, copy_runtime_libraries, extract_ort_library, release_binary
from model_serving.docker.wheels import cache_dir, ensure_wheels
from model_serving.paths import DEFAULT_MODEL_DIR
from model_serving.services import SERVICES, Service

log = logging.getLogger(__name__)

REPOSITORY_PREFIX = "model-serving"
MODEL_ID_LABEL = "org.model-serving.model-id"
CONTENT_HASH_LABEL = "org.model-serving.content-hash"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.py[cod]", ".pytest_cache", ".mypy_cache", ".ruff_cache")
_LOG_TAIL = 40


class ImageBuildError(Exception):
    """An image could not be built; the message carries the end of the build log."""


# The ONNX Runtime build both ONNX services run: onnx-serving's wheel set holds it.
ORT_WHEEL_SOURCE = "onnx-serving"


@dataclass(frozen=True)
class BuiltImage:
    service: str
    tag: str
    image_id: str
    size_mb: float
    built: bool  # False when an image with this content hash already existed


def build_service_image(
    service: str,
    model_dir: Path = DEFAULT_MODEL_DIR,
    base_image: str | None = None,
    tag_latest: bool = True,
) -> BuiltImage:
    """The image of ``service`` for the artifacts in ``model_dir``, built unless its content hash is tagged.

    ``base_image`` defaults to :func:`ensure_base_image`'s choice; pass it to decide once for several builds.
    ``tag_latest`` moves ``:latest`` (what docker-compose.yaml runs) to it; tests of throwaway models do not.
    """
    spec = SERVICES.get(service)
    if spec is None:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    engine = client()
    if spec.kind == "python":
        base = base_image or ensure_base_image(engine)
        base_id, buildargs = engine.images.get(base).id, {"BASE_IMAGE": base}
        wheels = ensure_wheels(spec.directory / "requirements.txt")
    else:
        base_id, buildargs = "scratch", {}
        wheels = ensure_wheels(SERVICES[ORT_WHEEL_SOURCE].directory / "requirements.txt")
    with staged_context(spec.name) as context:
        if spec.kind == "python":
            model_id = assemble_context(spec, model_dir, wheels, context)
        else:
            model_id = assemble_rust_context(spec, model_dir, wheels, context)
        image = image_from_context(engine, context, spec.name, base_id, buildargs, model_id)
    if tag_latest:
        engine.images.get(image.tag).tag(f"{REPOSITORY_PREFIX}/{spec.name}", "latest")
    return image


def build_service_images(
    names: Iterable[str], model_dir: Path = DEFAULT_MODEL_DIR, tag_latest: bool = True
) -> dict[str, BuiltImage]:
    """The images of several services, keyed in ``names``' order, each as :func:`build_service_image` makes it.

    The Rust ones are built beside the Python ones: from nothing, cargo's release build (CPU) overlaps the engine
    installing wheels and committing layers (mostly disk), the longest part of a first run. Within a kind they go
    one after the other: the Python images share one base image, made once.
    """
    chosen = list(dict.fromkeys(names))
    if unknown := [name for name in chosen if name not in SERVICES]:
        raise ValueError(f"unknown service {', '.join(map(repr, unknown))}; known: {', '.join(SERVICES)}")
    groups: dict[str, list[str]] = {}
    for name in chosen:
        groups.setdefault(SERVICES[name].kind, []).append(name)

    def build_group(group: list[str]) -> list[BuiltImage]:
        return [build_service_image(name, model_dir, tag_latest=tag_latest) for name in group]

    with ThreadPoolExecutor(max_workers=max(len(groups), 1), thread_name_prefix="image-build") as pool:
        futures = [pool.submit(build_group, group) for group in groups.values()]
        built = {image.service: image for future in futures for image in future.result()}
    return {name: built[name] for name in chosen}


@contextlib.contextmanager
def staged_context(name: str) -> Iterator[Path]:
    """An empty build-context folder, removed afterwards. Inside the cache folder, so that wheels are hard-linked
    rather than copied (same file system)."""
    staging = cache_dir() / "contexts"
    staging.mkdir(parents=True, exist_ok=True)
    context = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=staging))
    try:
        yield context
    finally:
        shutil.rmtree(context, ignore_errors=True)


def image_from_context(
    engine: docker.DockerClient,
    context: Path,
    name: str,
    base_id: str,
    buildargs: dict[str, str],
    model_id: str,
) -> BuiltImage:
    """``model-serving/<name>:<content hash>`` for the assembled ``context``: found by tag, else built."""
    digest = content_hash(context, base_id)
    tag = f"{REPOSITORY_PREFIX}/{name}:{digest[:12]}"
    image = _existing(engine, tag)
    built = image is None
    if image is None:
        # Each label is a build step (seconds each on this engine): the repository already names the service.
        labels = {MODEL_ID_LABEL: model_id, CONTENT_HASH_LABEL: digest}
        image = _build(engine, context, tag, buildargs, labels, name)
    else:
        log.info(f"{name}: {tag} is up to date (content unchanged); not rebuilding")
    return BuiltImage(name, tag, image.id, round(image.attrs["Size"] / 1e6, 1), built)


def remove_image(tag: str) -> None:
    """Untag ``tag`` and delete what only it used (layers shared with other images stay); gone already is fine."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        client().images.remove(tag, noprune=False)


def assemble_context(spec: Service, model_dir: Path, wheels: Path, context: Path) -> str:
    """Fill the empty folder ``context`` for ``spec``; return the model_id of the artifacts baked in."""
    shutil.copy2(spec.directory / "Dockerfile", context / "Dockerfile")
    shutil.copy2(spec.directory / "requirements.txt", context / "requirements.txt")
    (context / "wheels").mkdir()
    for wheel in sorted(wheels.glob("*.whl")):
        _link_or_copy(wheel, context / "wheels" / wheel.name)
    stripped_extension_modules(wheels.glob("*.whl"), context / NATIVE_DIR)
    (context / "app").mkdir()
    for package in spec.packages:
        if not (package / "__init__.py").is_file():
            raise ImageBuildError(f"{spec.name}: package {package} is missing (no __init__.py)")
        shutil.copytree(package, context / "app" / package.name, ignore=_IGNORED)
    return _copy_model(spec, model_dir, context)


def assemble_rust_context(spec: Service, model_dir: Path, wheels: Path, context: Path) -> str:
    """Fill ``context`` for the Rust service (layout in rust_onnx_serving/Dockerfile); return the model_id."""
    shutil.copy2(spec.directory / "Dockerfile", context / "Dockerfile")
    pack_rust_binary(spec.directory, BINARY_NAME, wheels, context)
    return _copy_model(spec, model_dir, context)


def pack_rust_binary(crate: Path, binary: str, wheels: Path, context: Path) -> None:
    """Into ``context``: the crate's release ``binary``, ``libonnxruntime.so`` from the onnxruntime wheel in
    ``wheels``, and ``rootfs/`` with the system libraries the two load (the layout of the Rust Dockerfiles)."""
    built = release_binary(crate, binary)
    shutil.copy2(built, context / binary)
    ort_library = context / "libonnxruntime.so"
    version = extract_ort_library(wheels, ort_library)
    log.info(f"{binary}: ONNX Runtime {version} from the onnxruntime wheel")
    copy_runtime_libraries([built, ort_library], context / "rootfs")


def _copy_model(spec: Service, model_dir: Path, context: Path) -> str:
    """The manifest and only the files the service reads, verified, into ``context/model``; the model_id."""
    manifest = read_manifest(model_dir)
    verify_files(model_dir, manifest, spec.model_roles)  # never bake a corrupt or replaced file into an image
    (context / "model").mkdir()
    shutil.copy2(model_dir / "manifest.json", context / "model" / "manifest.json")
    for role in spec.model_roles:
        name = manifest["files"][role]["path"]
        shutil.copy2(model_dir / name, context / "model" / name)
    return str(manifest["model_id"])


def content_hash(context: Path, base_image_id: str) -> str:
    """sha256 over every file's relative path and bytes (in path order) and the base image id.

    Not over modes or times: a fresh clone or a re-download with equal bytes gives the same hash.
    """
    digest = hashlib.sha256(f"base\0{base_image_id}\0".encode())
    for path in _files(context):
        digest.update(f"file\0{path.relative_to(context).as_posix()}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> Iterator[Path]:
    for directory, subdirectories, names in os.walk(folder):
        subdirectories.sort()
        for name in sorted(names):
            yield Path(directory) / name


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a copy is only slower
        shutil.copy2(source, target)


def _existing(engine: docker.DockerClient, tag: str) -> Image | None:
    try:
        return engine.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _build(
    engine: docker.DockerClient,
    context: Path,
    tag: str,
    buildargs: dict[str, str],
    labels: dict[str, str],
    service: str,
) -> Image:
    log.info(f"{service}: building {tag} on {buildargs.get('BASE_IMAGE', 'scratch')}")
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=_LOG_TAIL)
    try:
        stream = engine.api.build(
            path=str(context), tag=tag, buildargs=buildargs, labels=labels, rm=True, forcerm=True, decode=True
        )
        for chunk in stream:
            for line in str(chunk.get("stream", "")).splitlines():
                tail.append(line)
                if line.startswith("Step "):
                    log.info(f"{service}: [{time.monotonic() - started:5.0f} s] {line[:110]}")
            if "error" in chunk:
                raise ImageBuildError(_failure(service, str(chunk["error"]).strip(), tail))
    except docker.errors.APIError as error:
        raise ImageBuildError(_failure(service, str(error), tail)) from error
    image = _existing(engine, tag)
    if image is None:
        raise ImageBuildError(_failure(service, "the build ended without tagging the image", tail))
    log.info(f"{service}: built {tag} ({image.attrs['Size'] / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")
    return image


def _failure(service: str, reason: str, tail: deque[str]) -> str:
    lines = "\n".join(f"  | {line}" for line in tail)
    return f"building the {service} image failed: {reason}\nlast lines of the build log:\n{lines}"
