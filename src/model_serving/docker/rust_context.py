"""What goes into the rust-onnx-serving image: the release binary (cargo on the host), the ONNX Runtime
library out of the same ``onnxruntime`` wheel onnx-serving installs, and the system libraries both load.

The binary is cached by a hash of the crate's sources, and cargo's target folder lives in the suite's cache,
so a fresh clone neither recompiles the dependencies nor, with unchanged sources, the crate itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from model_serving.docker.wheels import cache_dir

log = logging.getLogger(__name__)

BINARY_NAME = "rust-onnx-serving"
# What decides the binary; tests and fixtures do not.
_SOURCES = ("Cargo.toml", "Cargo.lock", "build.rs", "rustfmt.toml", "src", "csrc")
_LDD_RESOLVED = re.compile(r"\s*\S+ => (/\S+) \(0x[0-9a-f]+\)")  # libc.so.6 => /lib/.../libc.so.6 (0x...)
_LDD_LOADER = re.compile(r"\s*(/\S+) \(0x[0-9a-f]+\)")  # /lib64/ld-linux-x86-64.so.2 (0x...)
_ORT_LIBRARY = re.compile(r"^onnxruntime/capi/libonnxruntime\.so\.\d+\.\d+\.\d+$")


class RustBuildError(Exception):
    """The Rust service could not be built or packed; the message says what to do."""


def source_hash(crate: Path) -> str:
    digest = hashlib.sha256()
    for name in _SOURCES:
        root = crate / name
        paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in paths:
            if path.is_file():
                digest.update(f"{path.relative_to(crate).as_posix()}\0".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def release_binary(crate: Path, binary: str = BINARY_NAME) -> Path:
    """The release binary ``binary`` for the crate's current sources, built with cargo unless already cached."""
    cached = cache_dir() / "rust-bin" / source_hash(crate)[:16] / binary
    if cached.is_file():
        log.info(f"{binary}: binary for these sources is cached ({cached.parent.name})")
        return cached
    if shutil.which("cargo") is None:
        raise RustBuildError(f"cargo is not installed: install the Rust toolchain (rustup) to build {binary}")
    target_dir = cache_dir() / "cargo-target"
    log.info(f"{binary}: cargo build --release (target folder {target_dir})")
    # cargo judges freshness by modification times, and the target folder is shared between checkouts: a file
    # edited before another checkout's build would look older than that build's output. These sources are
    # new (their hash is not cached), so mark them so.
    _touch_sources(crate)
    command = ["cargo", "build", "--release", "--locked", "--bin", binary]
    environment = {**os.environ, "CARGO_TARGET_DIR": str(target_dir)}
    output: list[str] = []
    with subprocess.Popen(
        command, cwd=crate, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            if line.lstrip().startswith((f"Compiling {crate.name}", "Finished", "error")):
                log.info(f"{binary}: {line.strip()}")
        if process.wait() != 0:
            tail = "\n".join(output[-30:])
            raise RustBuildError(
                f"cargo build failed (the C parts need cmake and nasm: apt-get install cmake nasm):\n{tail}"
            )
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(binary + ".partial")
    shutil.copy2(target_dir / "release" / binary, partial)
    partial.replace(cached)
    return cached


def _touch_sources(crate: Path) -> None:
    for name in _SOURCES:
        root = crate / name
        for path in root.rglob("*") if root.is_dir() else [root]:
            if path.is_file():
                path.touch()


def extract_ort_library(wheels: Path, target: Path) -> str:
    """Copy ``libonnxruntime.so.X.Y.Z`` out of the onnxruntime wheel in ``wheels`` to ``target``; its version."""
    candidates = sorted(wheels.glob("onnxruntime-*.whl"))
    if len(candidates) != 1:
        raise RustBuildError(f"expected one onnxruntime wheel in {wheels}, found {[c.name for c in candidates]}")
    with zipfile.ZipFile(candidates[0]) as wheel:
        members = [name for name in wheel.namelist() if _ORT_LIBRARY.match(name)]
        if len(members) != 1:
            raise RustBuildError(f"{candidates[0].name} holds no single libonnxruntime.so.X.Y.Z: {members}")
        with wheel.open(members[0]) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink)
    target.chmod(0o755)
    return members[0].rsplit(".so.", 1)[1]


def parse_ldd(output: str) -> list[Path]:
    """The libraries ``ldd`` resolves (the dynamic loader included); an error for any it cannot find."""
    libraries = []
    for line in output.splitlines():
        if "not found" in line:
            raise RustBuildError(f"a library the Rust service needs is missing on this machine: {line.strip()}")
        match = _LDD_RESOLVED.match(line) or _LDD_LOADER.match(line)
        if match:
            libraries.append(Path(match.group(1)))
    return libraries


def copy_runtime_libraries(binaries: list[Path], rootfs: Path) -> None:
    """Copy what ``ldd`` resolves for ``binaries`` under ``rootfs`` at the same absolute paths (links resolved)."""
    needed: set[Path] = set()
    for binary in binaries:
        result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RustBuildError(f"ldd {binary} failed: {result.stderr.strip() or result.stdout.strip()}")
        needed.update(parse_ldd(result.stdout))
    for library in sorted(needed):
        target = rootfs / library.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library.resolve(), target)
