"""Parsing ApacheBench output: every figure ab prints, and whether the run counts as a measurement.

Pure functions over text, tested on recorded outputs (``tests/fixtures/ab``). A run with failed or non-2xx
requests, or one ab could not finish (refused connection, timeout), is a failed measurement with its reason,
never a slow result: an error answered fast would otherwise be reported as throughput.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PERCENTILE = re.compile(r"^\s*(\d+)%\s+(\d+)(?:\s+\(longest request\))?\s*$")
_CONNECTION_ROW = re.compile(r"^(Connect|Processing|Waiting|Total):\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s*$")
_FAILED_BREAKDOWN = re.compile(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)")
# ab's own error lines, e.g. "apr_socket_recv: Connection refused (111)".
_ERROR_LINE = re.compile(r"(apr_\w+\(?\)?: .*|Total of \d+ requests completed|ab: .*)")

PERCENTILE_KEYS = {50: "p50", 66: "p66", 75: "p75", 80: "p80", 90: "p90", 95: "p95", 98: "p98", 99: "p99", 100: "max"}


class AbParseError(ValueError):
    """ab's output lacks the figures of a finished run."""


@dataclass(frozen=True)
class ConnectionTimes:
    min: float
    mean: float
    sd: float | None  # None where the tool gives none (Locust's statistics, load/locust_parser)
    median: float
    max: float


@dataclass(frozen=True)
class AbReport:
    """Everything ab prints about a finished run; times in ms unless the name says otherwise."""

    server_software: str
    document_path: str
    document_length: int
    concurrency: int
    time_taken_s: float
    complete: int
    failed: int
    failed_breakdown: dict[str, int]
    non_2xx: int
    total_transferred_bytes: int
    html_transferred_bytes: int
    body_sent_bytes: int | None
    rps: float
    time_per_request_ms: float
    time_per_request_all_ms: float
    transfer_received_kb_s: float  # ab's Kbytes are 1024 bytes
    transfer_sent_kb_s: float | None
    connection_times: dict[str, ConnectionTimes]
    latency_ms: dict[str, float]  # p50 … p99 and max, from ab's percentile table
    warnings: list[str] = field(default_factory=list)

    @property
    def transfer_rate_mb_s(self) -> float:
        """Received MiB per second."""
        return self.transfer_received_kb_s / 1024.0


def _field(text: str, label: str) -> str | None:
    match = re.search(rf"^{re.escape(label)}:\s*(.+?)\s*$", text, re.MULTILINE)
    return match.group(1) if match else None


def _number(text: str, label: str) -> float:
    value = _field(text, label)
    if value is None:
        raise AbParseError(f"no '{label}' line in ab's output")
    match = re.match(r"[\d.]+", value)
    if not match:
        raise AbParseError(f"'{label}' is not a number: {value!r}")
    return float(match.group(0))


def _optional_number(text: str, label: str, default: float | None = None) -> float | None:
    return _number(text, label) if _field(text, label) is not None else default


def _time_per_request(text: str) -> tuple[float, float]:
    values = re.findall(r"^Time per request:\s+([\d.]+) \[ms\] \((mean[^)]*)\)", text, re.MULTILINE)
    by_kind = {kind: float(value) for value, kind in values}
    try:
        return by_kind["mean"], by_kind["mean, across all concurrent requests"]
    except KeyError as error:
        raise AbParseError("no 'Time per request' lines in ab's output") from error


def _transfer_sent(text: str) -> float | None:
    match = re.search(r"^\s+([\d.]+) kb/s sent\s*$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def _connection_times(text: str) -> dict[str, ConnectionTimes]:
    rows = {}
    for line in text.splitlines():
        match = _CONNECTION_ROW.match(line)
        if match:
            name, *values = match.groups()
            low, mean, sd, median, high = (float(v) for v in values)
            rows[name.lower()] = ConnectionTimes(low, mean, sd, median, high)
    return rows


def _percentiles(text: str) -> dict[str, float]:
    table = text.split("Percentage of the requests served within a certain time (ms)", 1)
    if len(table) < 2:
        raise AbParseError("no percentile table in ab's output")
    result = {}
    for line in table[1].splitlines():
        match = _PERCENTILE.match(line)
        if match and int(match.group(1)) in PERCENTILE_KEYS:
            result[PERCENTILE_KEYS[int(match.group(1))]] = float(match.group(2))
    missing = set(PERCENTILE_KEYS.values()) - set(result)
    if missing:
        raise AbParseError(f"percentile table lacks {sorted(missing)}")
    return result


def error_lines(text: str) -> list[str]:
    """ab's own error messages (refused connections, timeouts, aborted runs)."""
    return [m.group(1).strip() for line in text.splitlines() if (m := _ERROR_LINE.search(line))]


def parse_ab_output(text: str) -> AbReport:
    """Every figure of a finished ab run; :class:`AbParseError` when the run did not finish."""
    if _field(text, "Complete requests") is None:
        reason = "; ".join(error_lines(text)) or "no 'Complete requests' line"
        raise AbParseError(f"ab did not finish: {reason}")
    breakdown_match = _FAILED_BREAKDOWN.search(text)
    breakdown = (
        dict(
            zip(("connect", "receive", "length", "exceptions"), (int(g) for g in breakdown_match.groups()), strict=True)
        )
        if breakdown_match
        else {"connect": 0, "receive": 0, "length": 0, "exceptions": 0}
    )
    mean, mean_all = _time_per_request(text)
    body_sent = _optional_number(text, "Total body sent")
    return AbReport(
        server_software=_field(text, "Server Software") or "",
        document_path=_field(text, "Document Path") or "",
        document_length=int(_number(text, "Document Length")),
        concurrency=int(_number(text, "Concurrency Level")),
        time_taken_s=_number(text, "Time taken for tests"),
        complete=int(_number(text, "Complete requests")),
        failed=int(_number(text, "Failed requests")),
        failed_breakdown=breakdown,
        non_2xx=int(_optional_number(text, "Non-2xx responses", 0) or 0),
        total_transferred_bytes=int(_number(text, "Total transferred")),
        html_transferred_bytes=int(_number(text, "HTML transferred")),
        body_sent_bytes=int(body_sent) if body_sent is not None else None,
        rps=_number(text, "Requests per second"),
        time_per_request_ms=mean,
        time_per_request_all_ms=mean_all,
        transfer_received_kb_s=_number(text, "Transfer rate"),
        transfer_sent_kb_s=_transfer_sent(text),
        connection_times=_connection_times(text),
        latency_ms=_percentiles(text),
        warnings=[line.strip() for line in text.splitlines() if line.startswith("WARNING")],
    )


@dataclass(frozen=True)
class LoadOutcome:
    """A load run judged: ``report`` when ab finished, ``failure`` when it is not a valid measurement."""

    report: AbReport | None
    failure: str | None
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.failure is None


def judge_ab_run(exit_code: int, output: str, requested: int) -> LoadOutcome:
    """Decide whether an ab run is a measurement; say why not when it is not."""
    try:
        report = parse_ab_output(output)
    except AbParseError as error:
        return LoadOutcome(None, f"{error} (exit code {exit_code})", exit_code)
    problems = []
    if exit_code != 0:
        problems.append(f"ab exited with {exit_code}: {'; '.join(error_lines(output)) or 'no message'}")
    if report.failed:
        kinds = ", ".join(f"{k} {v}" for k, v in report.failed_breakdown.items() if v)
        problems.append(f"{report.failed} failed requests ({kinds})")
    if report.non_2xx:
        problems.append(f"{report.non_2xx} non-2xx responses")
    if report.complete != requested:
        problems.append(f"{report.complete} of {requested} requests completed")
    return LoadOutcome(report, "; ".join(problems) or None, exit_code)
