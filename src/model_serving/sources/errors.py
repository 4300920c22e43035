"""The one error of model sources."""

from __future__ import annotations

from model_core.errors import ModelError


class ModelSourceError(ModelError):
    """A model URI that cannot be parsed, authorized or fetched; the message says why and what to do.

    A :class:`ModelError`, so the command line reports it like any other unusable model (exit code 2).
    """
