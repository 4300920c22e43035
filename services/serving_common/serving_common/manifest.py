"""Transition only: the manifest moved to :mod:`model_core.manifest` (and ModelError to :mod:`model_core.errors`).

Kept while ``serving_common.launch`` (changed on another branch) still imports from here; delete it once that
import reads ``from model_core.manifest import ...``.
"""

from model_core.errors import ModelError
from model_core.manifest import read_manifest, verify_files

__all__ = ["ModelError", "read_manifest", "verify_files"]
