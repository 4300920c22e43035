"""The glibc allocator settings the three images set in their environment (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``; see the Dockerfiles for why), for processes that did not start with them: the
in-process stage split of ``model-serving check`` runs in the harness's own process."""

from __future__ import annotations

import ctypes
import ctypes.util

#: As in the Dockerfiles.
ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456"}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


def apply_in_process() -> bool:
    """``mallopt`` the same values into this process (from now on); False where glibc is not the allocator."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, int(ENVIRONMENT["MALLOC_MMAP_THRESHOLD_"]))
        and libc.mallopt(_M_TRIM_THRESHOLD, int(ENVIRONMENT["MALLOC_TRIM_THRESHOLD_"]))
    )
