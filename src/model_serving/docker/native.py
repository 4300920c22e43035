"""Stripped copies of the extension modules of wheels that ship their debug symbols.

uvloop's wheel holds a 14 MB ``loop.cpython-311-x86_64-linux-gnu.so`` of which 12 MB are symbols: installed as it
comes, it would add 14 MB to each Python image. The base image has no ``strip`` (binutils is 25 MB), so the host
strips them: the copies go into the build context's ``native/`` folder in site-packages' layout, and the
Dockerfiles copy that folder over the installed packages. Only the wheels named in :data:`UNSTRIPPED` are touched;
every other wheel is installed exactly as published (theirs are stripped already).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

#: Distributions (as in a wheel's file name, lower case) whose extension modules keep their symbols.
UNSTRIPPED = ("uvloop",)
NATIVE_DIR = "native"


class StripError(Exception):
    """An extension module could not be stripped; the message says what to do."""


def strip_tool() -> str:
    found = shutil.which("strip")
    if found is None:
        raise StripError("`strip` (binutils) is not installed on this machine: apt-get install binutils")
    return found


def _distribution(wheel: Path) -> str:
    return wheel.name.split("-", 1)[0].lower()


def _extension_modules(archive: zipfile.ZipFile) -> list[str]:
    """Members that are shared objects inside the packages (never a path that climbs out of the folder)."""
    members = []
    for name in archive.namelist():
        path = PurePosixPath(name)
        if path.suffix == ".so" and not path.is_absolute() and ".." not in path.parts:
            members.append(name)
    return members


def stripped_extension_modules(wheels: Iterable[Path], destination: Path) -> list[str]:
    """Write stripped copies of the extension modules of the ``wheels`` named in :data:`UNSTRIPPED` under
    ``destination`` (created, empty when none match); return their paths relative to it, sorted."""
    destination.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for wheel in sorted(wheels):
        if _distribution(wheel) not in UNSTRIPPED:
            continue
        tool = strip_tool()  # only asked for when a wheel needs it
        with zipfile.ZipFile(wheel) as archive:
            for member in _extension_modules(archive):
                target = destination / member
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
                result = subprocess.run(
                    [tool, "--strip-unneeded", str(target)], capture_output=True, text=True, check=False
                )
                if result.returncode != 0:
                    raise StripError(f"strip failed on {member} of {wheel.name}: {result.stderr.strip()}")
                written.append(member)
    return sorted(written)
