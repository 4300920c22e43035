"""Tar archives in memory: how files go into a container (``put_archive``) or into a test's image layers."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping


def tar_bytes(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed tar of regular files (name → content), mode 0644."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o644
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()
