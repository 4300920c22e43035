"""The report's JSON Schema (``report.schema.json``, beside this module) and a check of a report against it.

The schema documents ``report.json`` as report/store writes it (schema_version 2): the JSON of the typed report
(report/sections.Report.to_json), which is what is checked, as built or as read back from disk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

SCHEMA_FILE = "report.schema.json"
#: How many errors the message of a ReportSchemaError lists (all of them are in its ``errors``).
_SHOWN = 5
_MESSAGE_CHARS = 200


class ReportSchemaError(ValueError):
    """A report does not match the schema; ``errors`` holds (JSON path, message) of every mismatch."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"{path}: {message}" for path, message in errors[:_SHOWN])
        more = f"; and {len(errors) - _SHOWN} more" if len(errors) > _SHOWN else ""
        super().__init__(f"the report does not match {SCHEMA_FILE} ({len(errors)} errors): {shown}{more}")


@cache
def report_schema() -> dict[str, Any]:
    """The schema, read from the package."""
    schema: dict[str, Any] = json.loads(
        resources.files("model_serving.report").joinpath(SCHEMA_FILE).read_text("utf-8")
    )
    return schema


@cache
def _validator() -> Draft202012Validator:
    schema = report_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _short(error: ValidationError) -> str:
    message = error.message
    return message if len(message) <= _MESSAGE_CHARS else message[: _MESSAGE_CHARS - 1] + "…"


def validate_report(report: Mapping[str, Any]) -> None:
    """Check ``report`` (a report's JSON) against the schema; :class:`ReportSchemaError` naming each mismatch's JSON
    path."""
    # An error under anyOf (a nullable object, say) is about every branch; best_match names the likeliest one's.
    errors = sorted((best_match([error]) for error in _validator().iter_errors(report)), key=lambda e: e.json_path)
    if errors:
        raise ReportSchemaError([(error.json_path, _short(error)) for error in errors])
