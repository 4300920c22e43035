"""Parsing oha's JSON output (``--output-format json``) into an open-loop report.

A pure function over text, tested on recorded outputs (``tests/data/oha``). oha counts a request as an error
only when no response came back (refused, reset, timed out); a 500 is a "success" to oha. Here successes are
the 2xx responses, and achieved rate counts only those: an error answered fast must not pass for throughput.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# oha's latencyPercentiles keys (seconds) → the report's names.
_PERCENTILES = {"p50": "p50", "p90": "p90", "p99": "p99"}


class OhaParseError(ValueError):
    """oha's output lacks what an open-loop report needs; the message says what."""


@dataclass(frozen=True)
class Latency:
    """Response times in ms, over every response (whatever its status); with ``--latency-correction`` each is
    measured from the request's scheduled send time, not from when oha got round to sending it."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


@dataclass(frozen=True)
class OpenLoopReport:
    """One oha run at a fixed arrival rate."""

    requested_rate_per_s: float
    achieved_rate_per_s: float  # 2xx responses per second of the run
    latency_corrected: bool
    duration_s: float  # oha's wall time, from the first request to the last answer
    requests: int  # responses + errors
    responses: int
    successes: int  # 2xx responses
    non_2xx: int
    status_codes: Mapping[int, int]
    errors: int  # requests without a response
    error_kinds: Mapping[str, int]
    latency: Latency | None  # None when nothing answered


def _get(document: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path``; OhaParseError naming the first missing part."""
    value: Any = document
    walked: list[str] = []
    for key in path.split("."):
        walked.append(key)
        if not isinstance(value, Mapping) or key not in value:
            raise OhaParseError(f"oha's JSON has no '{'.'.join(walked)}'")
        value = value[key]
    return value


def _number(document: Mapping[str, Any], path: str) -> float | None:
    value = _get(document, path)
    if value is None:  # oha writes null for figures of runs with no responses
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OhaParseError(f"oha's '{path}' is not a number: {value!r}")
    return float(value)


def _counts(document: Mapping[str, Any], path: str) -> dict[str, int]:
    table = _get(document, path)
    if not isinstance(table, Mapping):
        raise OhaParseError(f"oha's '{path}' is not an object: {table!r}")
    for key, count in table.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise OhaParseError(f"oha's '{path}.{key}' is not a count: {count!r}")
    return dict(table)


def _status_codes(document: Mapping[str, Any]) -> dict[int, int]:
    codes: dict[int, int] = {}
    for key, count in _counts(document, "statusCodeDistribution").items():
        if not key.isdigit():
            raise OhaParseError(f"oha's statusCodeDistribution has a key that is not a status code: {key!r}")
        codes[int(key)] = count
    return codes


def _latency(document: Mapping[str, Any], responses: int) -> Latency | None:
    seconds = {name: _number(document, f"latencyPercentiles.{key}") for key, name in _PERCENTILES.items()}
    seconds["max"] = _number(document, "summary.slowest")
    seconds["mean"] = _number(document, "summary.average")
    if responses == 0:
        return None
    missing = sorted(name for name, value in seconds.items() if value is None)
    if missing:
        raise OhaParseError(f"oha counted {responses} responses but gives no latency for {', '.join(missing)}")
    ms = {name: value * 1000.0 for name, value in seconds.items() if value is not None}
    return Latency(ms["p50"], ms["p90"], ms["p99"], ms["max"], ms["mean"])


def parse_oha_json(text: str, requested_rate_per_s: float, *, latency_corrected: bool) -> OpenLoopReport:
    """An open-loop report from oha's JSON; ``requested_rate_per_s`` (oha's ``-q``) and whether
    ``--latency-correction`` was on are not in the output, so the caller says."""
    if requested_rate_per_s <= 0:
        raise OhaParseError(f"the requested rate must be positive, not {requested_rate_per_s}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise OhaParseError(f"oha's output is not JSON ({error}): {text[:200]!r}") from error
    if not isinstance(document, dict):
        raise OhaParseError(f"oha's JSON is not an object: {text[:200]!r}")
    duration_s = _number(document, "summary.total")
    if duration_s is None or duration_s <= 0:
        raise OhaParseError(f"oha's summary.total is not a positive duration: {duration_s!r}")
    status_codes = _status_codes(document)
    error_kinds = _counts(document, "errorDistribution")
    responses = sum(status_codes.values())
    successes = sum(count for code, count in status_codes.items() if 200 <= code < 300)
    errors = sum(error_kinds.values())
    return OpenLoopReport(
        requested_rate_per_s=requested_rate_per_s,
        achieved_rate_per_s=successes / duration_s,
        latency_corrected=latency_corrected,
        duration_s=duration_s,
        requests=responses + errors,
        responses=responses,
        successes=successes,
        non_2xx=responses - successes,
        status_codes=status_codes,
        errors=errors,
        error_kinds=error_kinds,
        latency=_latency(document, responses),
    )
