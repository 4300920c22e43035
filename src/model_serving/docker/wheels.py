"""Wheels for a service's ``requirements.txt``, downloaded on the host for the image's platform and kept in a
cache that survives between runs, so images install offline (``pip install --no-index``) and never reach PyPI.

torch is always the CPU build: a pin ``torch==V`` is constrained to ``torch==V+cpu``, which comes from
``PIP_FIND_LINKS`` (or a PyTorch CPU index in ``PIP_EXTRA_INDEX_URL``). Without the constraint pip would
quietly fetch PyPI's multi-GB CUDA build; with it, a missing CPU wheel fails at once with advice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

# The images run CPython 3.11 on Debian bookworm (glibc 2.36, x86-64): every manylinux tag up to 2.28 fits.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
PYTHON_VERSION = "3.11"
IMPLEMENTATION = "cp"
ABI = "cp311"
COMPLETE_MARKER = "COMPLETE.json"  # written last: a folder without it is an interrupted download
CACHE_ENV = "MODEL_SERVING_CACHE_DIR"

_TORCH_PIN = re.compile(r"^\s*torch\s*==\s*([0-9][0-9A-Za-z.]*)\s*(?:[#;].*)?$", re.MULTILINE)


class WheelError(Exception):
    """The wheels cannot be downloaded; the message says what to do."""


def cache_dir() -> Path:
    """``$MODEL_SERVING_CACHE_DIR``, else ``$XDG_CACHE_HOME/model-serving``, else ``~/.cache/model-serving``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "model-serving"


def cpu_torch_constraints(requirements: str) -> list[str]:
    """``torch==V+cpu`` for an exact ``torch==V`` pin without a local label; nothing otherwise."""
    return [f"torch=={version}+cpu" for version in _TORCH_PIN.findall(requirements) if "+" not in version]


def platform_args() -> list[str]:
    platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    return [
        "--only-binary=:all:",
        *platforms,
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        IMPLEMENTATION,
        "--abi",
        ABI,
    ]


def cache_key(requirements: str) -> str:
    """Equal keys mean the same wheel set: the requirements, the constraints and the target platform."""
    recipe = {"requirements": requirements, "constraints": cpu_torch_constraints(requirements), "pip": platform_args()}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def complete_wheels(folder: Path) -> list[Path] | None:
    """The wheels of a finished download in ``folder``, or None when it is missing or incomplete."""
    try:
        names = json.loads((folder / COMPLETE_MARKER).read_text())["wheels"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    wheels = [folder / name for name in names]
    return wheels if wheels and all(wheel.is_file() for wheel in wheels) else None


def ensure_wheels(requirements_file: Path) -> Path:
    """The cache folder holding every wheel ``requirements_file`` needs (downloaded now unless cached)."""
    requirements = requirements_file.read_text()
    folder = cache_dir() / "wheels" / cache_key(requirements)
    if complete_wheels(folder) is not None:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    log.info(f"downloading wheels for {requirements_file} into {folder}")
    started = time.monotonic()
    # Download beside the final folder and rename: a crash or a concurrent run never sees half a set.
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        _pip_download(requirements, staging)
        wheels = sorted(path.name for path in staging.glob("*.whl"))
        (staging / COMPLETE_MARKER).write_text(json.dumps({"wheels": wheels}, indent=1) + "\n")
        if complete_wheels(folder) is None:  # else a concurrent run finished first: keep its set
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(path.stat().st_size for path in folder.glob("*.whl"))
    log.info(f"{len(wheels)} wheels, {size / 1e6:.0f} MB in {time.monotonic() - started:.1f} s")
    return folder


def _pip_download(requirements: str, destination: Path) -> None:
    (destination / "requirements.txt").write_text(requirements)
    (destination / "constraints.txt").write_text("".join(f"{line}\n" for line in cpu_torch_constraints(requirements)))
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--progress-bar=off",
        *platform_args(),
        "--dest",
        str(destination),
        "--requirement",
        str(destination / "requirements.txt"),
        "--constraint",
        str(destination / "constraints.txt"),
    ]
    # The environment passes through: PIP_FIND_LINKS / PIP_EXTRA_INDEX_URL say where the torch CPU wheel is.
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    for helper in ("requirements.txt", "constraints.txt"):
        (destination / helper).unlink()
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        advice = (
            "for torch, set PIP_FIND_LINKS to a folder holding the CPU wheel (here: ../shared/wheels) or "
            "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu; "
            if cpu_torch_constraints(requirements)
            else ""
        )
        raise WheelError(
            f"pip download failed (exit {result.returncode}); {advice}PyPI must be reachable for the rest "
            f"(PIP_FIND_LINKS={os.environ.get('PIP_FIND_LINKS', '<unset>')}). Last lines:\n{tail}"
        )
