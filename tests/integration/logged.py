"""The progress messages model_serving logs inside a block, for the tests that assert on them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def model_serving_messages(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The messages of model_serving's loggers logged inside the block (the list is filled when it ends)."""
    start = len(caplog.records)
    messages: list[str] = []
    with caplog.at_level(logging.INFO, logger="model_serving"):
        yield messages
    messages.extend(r.getMessage() for r in caplog.records[start:] if r.name.split(".")[0] == "model_serving")
