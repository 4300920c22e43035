"""The base image of the Python services: the public ``python:3.11-slim-bookworm`` where it can be had, else a
Debian bookworm root filesystem built here from Debian's packages and imported (DESIGN §2: no registry).

The Dockerfiles take the base as the ``BASE_IMAGE`` build argument, whose default is the public image, so a
person with a registry builds the ordinary thing by hand; the harness passes whatever this module chose.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import requests
from docker.utils import parse_repository_tag

from model_serving.docker.engine import EngineError, client

log = logging.getLogger(__name__)

PUBLIC_BASE_IMAGE = "python:3.11-slim-bookworm"
LOCAL_BASE_REPOSITORY = "model-serving/base"
OVERRIDE_ENV = "MODEL_SERVING_BASE_IMAGE"
RECIPE_LABEL = "org.model-serving.base-recipe"

SUITE = "bookworm"
# python3-venv brings ensurepip (the Dockerfiles make a venv); passwd brings useradd (non-root user);
# libstdc++6 is what the C++ wheels (torch, onnxruntime) link against beyond glibc.
PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd", "libstdc++6")
# Documentation, translations and charset converters are never read in a service container: 135 → 100 MB.
_EXCLUDED = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
    "/usr/lib/x86_64-linux-gnu/gconv/*",
)
_INCLUDED = ("/usr/share/doc/*/copyright", "/usr/share/locale/locale.alias")  # licences stay
_CLEANUP = 'rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log "$1"/var/cache/debconf/*-old'
# An imported tarball has an empty config; give it what the public image's users rely on. Without PATH,
# a Dockerfile's ``ENV PATH=/opt/venv/bin:$PATH`` would expand to ``/opt/venv/bin:`` and lose /usr/bin.
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)


class BaseImageError(Exception):
    """No base image could be had; the message says what to do."""


def mmdebstrap_command(target: Path) -> list[str]:
    """The command that writes the root filesystem tarball to ``target``."""
    return [
        "mmdebstrap",
        "--variant=essential",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        f"--include={','.join(PACKAGES)}",
        *(f"--dpkgopt=path-exclude={pattern}" for pattern in _EXCLUDED),
        *(f"--dpkgopt=path-include={pattern}" for pattern in _INCLUDED),
        f"--customize-hook={_CLEANUP}",
        SUITE,
        str(target),
    ]


def recipe_hash() -> str:
    """12 hex digits over everything that decides the local base; a changed recipe gets a new tag."""
    recipe = {"command": mmdebstrap_command(Path("rootfs.tar")), "changes": IMPORT_CHANGES}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def local_base_tag() -> str:
    return f"{LOCAL_BASE_REPOSITORY}:{SUITE}-py311-{recipe_hash()}"


def ensure_base_image(engine: docker.DockerClient | None = None) -> str:
    """The reference of a base image present in the engine, making it if need be.

    Order: ``$MODEL_SERVING_BASE_IMAGE`` (present or pulled, else an error); the public image (present or
    pulled); the local Debian base (present, or built once with mmdebstrap and imported).
    """
    engine = engine or client()
    override = os.environ.get(OVERRIDE_ENV)
    if override:
        if _present(engine, override) or _pulled(engine, override):
            return override
        raise BaseImageError(f"{OVERRIDE_ENV}={override} is neither in the engine nor pullable; build or load it")
    if _present(engine, PUBLIC_BASE_IMAGE) or _pulled(engine, PUBLIC_BASE_IMAGE):
        return PUBLIC_BASE_IMAGE
    tag = local_base_tag()
    if _present(engine, tag):
        return tag
    log.info(f"{PUBLIC_BASE_IMAGE} cannot be pulled; building {tag} from Debian packages (about 30 s, once)")
    build_local_base(tag, engine)
    return tag


def build_local_base(tag: str, engine: docker.DockerClient) -> None:
    if shutil.which("mmdebstrap") is None:
        raise BaseImageError(
            f"{PUBLIC_BASE_IMAGE} cannot be pulled and mmdebstrap is not installed to build a local base: "
            f"`apt-get install mmdebstrap`, or set {OVERRIDE_ENV} to an image with Python 3.11 and venv"
        )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="model-serving-base-") as scratch:
        tarball = Path(scratch) / "rootfs.tar"
        _run_mmdebstrap(tarball, Path(scratch) / "mmdebstrap.log")
        log.info(f"root filesystem ready ({tarball.stat().st_size / 1e6:.0f} MB tar); importing as {tag}")
        repository, version = parse_repository_tag(tag)
        changes = [*IMPORT_CHANGES, f"LABEL {RECIPE_LABEL}={recipe_hash()}"]
        try:
            engine.api.import_image_from_file(str(tarball), repository=repository, tag=version, changes=changes)
        except docker.errors.DockerException as error:
            raise EngineError(f"docker import of the local base failed: {error}") from error
    image = engine.images.get(tag)
    log.info(f"built {tag} ({image.attrs['Size'] / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")


def _run_mmdebstrap(tarball: Path, log: Path) -> None:
    with log.open("w") as output:
        # stdin closed: without a MIRROR mmdebstrap uses deb.debian.org, and never waits on our stdin.
        result = subprocess.run(
            mmdebstrap_command(tarball), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BaseImageError(
            f"mmdebstrap failed (exit {result.returncode}); it needs root or unprivileged user namespaces and "
            f"access to deb.debian.org. Last lines:\n{tail}"
        )


def _present(engine: docker.DockerClient, reference: str) -> bool:
    try:
        engine.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def _pulled(engine: docker.DockerClient, reference: str) -> bool:
    repository, tag = parse_repository_tag(reference)
    try:
        engine.images.pull(repository, tag=tag or "latest")
    except (docker.errors.DockerException, requests.RequestException) as error:
        # Expected on a machine without a registry: the engine answers at once.
        log.info(f"cannot pull {reference}: {str(error).splitlines()[0][:160]}")
        return False
    log.info(f"pulled {reference}")
    return True
