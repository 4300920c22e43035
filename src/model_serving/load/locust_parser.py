"""Reading Locust's CSV statistics (``--csv PREFIX``) into the load figures the ab runs give, and judging the run.

Pure functions over text, tested on recorded files (``tests/data/locust``, made by its ``record.py``). The
master writes, at the end of a run:

- ``PREFIX_stats.csv``: one row per request name and an ``Aggregated`` row (Type empty): Request Count, Failure
  Count, Median / Average / Min / Max Response Time (ms), Average Content Size (bytes), Requests/s,
  Failures/s, then the percentiles 50%, 66%, 75%, 80%, 90%, 95%, 98%, 99%, 99.9%, 99.99%, 100% (ms);
- ``PREFIX_failures.csv``: Method, Name, Error, Occurrences (and when first and last seen);
- ``PREFIX_exceptions.csv``: Count, Message, Traceback, Nodes (errors raised in the users' own code);
- ``PREFIX_stats_history.csv``: one row a second while the run goes on (read here only for the progress lines).

Locust's figures differ from ab's in ways the report should know: its percentiles come from response times
rounded to two significant digits (147 ms counts as 150; the exact minimum, mean and maximum are kept), its
req/s is every request it counted over the time from the start of the run to the last request, and its content
size counts bodies only (ab's transfer counts headers too). It gives no standard deviation.

The locustfile marks a non-2xx answer ``NON_2XX: HTTP <code>`` and a request without a whole answer
``NO_ANSWER: <error>``; the failure table is split on those prefixes into ``non_2xx`` and ``failed``, as ab
splits Non-2xx responses from Failed requests. Any of either, an exception in a user, or no request at all makes
the run a failed measurement with its reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass

from model_serving.load.ab_parser import AbReport, ConnectionTimes, LoadOutcome

# Written by the locustfile (load/locustfile.py, which keeps to the standard library and Locust, so it cannot
# import these); a unit test checks that the two agree.
NON_2XX = "non-2xx answer"
NO_ANSWER = "no answer"

#: Locust's percentile columns → the report's names (ab's percentile table has the same rows).
PERCENTILE_COLUMNS = {
    "50%": "p50",
    "66%": "p66",
    "75%": "p75",
    "80%": "p80",
    "90%": "p90",
    "95%": "p95",
    "98%": "p98",
    "99%": "p99",
}
_AGGREGATED = "Aggregated"
_CAUGHT = re.compile(r"^CatchResponseError\((['\"])(?P<message>.*)\1\)$", re.DOTALL)
_STATUS = re.compile(r"HTTP (\d{3})")


class LocustParseError(ValueError):
    """Locust's CSV lacks what a load report needs; the message says what."""


@dataclass(frozen=True)
class Failure:
    """One row of the failure table: the locustfile's message (unwrapped) and how often it happened."""

    message: str
    occurrences: int

    @property
    def non_2xx(self) -> bool:
        return self.message.startswith(NON_2XX)


@dataclass(frozen=True)
class HistorySnapshot:
    """The newest row of the stats history: users running, requests and failures so far."""

    users: int
    requests: int
    failures: int


def _rows(text: str, name: str, required: tuple[str, ...]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in required if column not in (reader.fieldnames or [])]
    if missing:
        raise LocustParseError(f"Locust's {name} has no column {', '.join(repr(c) for c in missing)}")
    return list(reader)


def _count(row: dict[str, str], column: str, name: str) -> int:
    value = row.get(column, "")
    if not value.isdigit():
        raise LocustParseError(f"Locust's {name} column {column!r} is not a count: {value!r}")
    return int(value)


def _float(row: dict[str, str], column: str, name: str) -> float:
    value = row.get(column, "")
    try:
        return float(value)
    except ValueError as error:
        raise LocustParseError(f"Locust's {name} column {column!r} is not a number: {value!r}") from error


def _stats_rows(stats_csv: str) -> list[dict[str, str]]:
    return _rows(stats_csv, "stats.csv", ("Type", "Name", "Request Count", "Failure Count", *PERCENTILE_COLUMNS))


def aggregated_row(stats_csv: str) -> dict[str, str]:
    """The ``Aggregated`` row of ``PREFIX_stats.csv`` (all request names together)."""
    for row in _stats_rows(stats_csv):
        if row["Name"] == _AGGREGATED and not row["Type"]:
            return row
    raise LocustParseError("Locust's stats.csv has no Aggregated row")


def request_paths(stats_csv: str) -> list[str]:
    """The request names of ``PREFIX_stats.csv`` (the locustfile names its one request by its path)."""
    return [row["Name"] for row in _stats_rows(stats_csv) if row["Type"]]


def parse_failures(failures_csv: str) -> list[Failure]:
    """The rows of ``PREFIX_failures.csv``, with the locustfile's message taken out of Locust's wrapping."""
    failures = []
    for row in _rows(failures_csv, "failures.csv", ("Error", "Occurrences")):
        error = row["Error"]
        caught = _CAUGHT.match(error)
        failures.append(Failure(caught.group("message") if caught else error, _count(row, "Occurrences", "failures")))
    return failures


def parse_exceptions(exceptions_csv: str) -> list[tuple[int, str]]:
    """(count, message) per exception the users' code raised (``PREFIX_exceptions.csv``)."""
    return [
        (_count(row, "Count", "exceptions.csv"), row["Message"])
        for row in _rows(exceptions_csv, "exceptions.csv", ("Count", "Message"))
    ]


def parse_locust_stats(stats_csv: str, failures_csv: str, users: int) -> AbReport:
    """The figures of a finished run, in ab's terms: ``complete`` every request Locust counted, ``failed`` those
    without a (whole) answer, ``non_2xx`` the answers outside 2xx. ``users`` (Locust's ``-u``) is the
    concurrency; the CSV does not hold it."""
    row = aggregated_row(stats_csv)
    complete = _count(row, "Request Count", "stats.csv")
    failure_count = _count(row, "Failure Count", "stats.csv")
    if complete == 0:
        raise LocustParseError("Locust counted no requests")
    rps = _float(row, "Requests/s", "stats.csv")
    if rps <= 0:
        raise LocustParseError(f"Locust's Requests/s is not positive: {rps}")
    failures = parse_failures(failures_csv)
    non_2xx = sum(f.occurrences for f in failures if f.non_2xx)
    no_answer = Counter({f.message: f.occurrences for f in failures if not f.non_2xx})
    unexplained = failure_count - non_2xx - no_answer.total()
    if unexplained > 0:  # counted as failures but not in the table: nothing is known of them but that
        no_answer["not in Locust's failure table"] += unexplained
    latency = {key: _float(row, column, "stats.csv") for column, key in PERCENTILE_COLUMNS.items()}
    latency["max"] = _float(row, "Max Response Time", "stats.csv")
    mean = _float(row, "Average Response Time", "stats.csv")
    time_taken_s = complete / rps  # Locust's req/s is its count over the run's time
    body_bytes = round(_float(row, "Average Content Size", "stats.csv") * complete)
    return AbReport(
        server_software="",
        document_path=", ".join(request_paths(stats_csv)),
        document_length=round(_float(row, "Average Content Size", "stats.csv")),
        concurrency=users,
        time_taken_s=time_taken_s,
        complete=complete,
        failed=no_answer.total(),
        failed_breakdown=dict(no_answer),
        non_2xx=non_2xx,
        total_transferred_bytes=body_bytes,
        html_transferred_bytes=body_bytes,
        body_sent_bytes=None,
        rps=rps,
        time_per_request_ms=users * time_taken_s * 1000.0 / complete,
        time_per_request_all_ms=time_taken_s * 1000.0 / complete,
        transfer_received_kb_s=body_bytes / time_taken_s / 1024.0,
        transfer_sent_kb_s=None,
        connection_times={
            "total": ConnectionTimes(
                min=_float(row, "Min Response Time", "stats.csv"),
                mean=mean,
                sd=None,
                median=_float(row, "Median Response Time", "stats.csv"),
                max=latency["max"],
            )
        },
        latency_ms=latency,
    )


def _statuses(failures: list[Failure]) -> str:
    codes: Counter[str] = Counter()
    for failure in failures:
        if failure.non_2xx:
            match = _STATUS.search(failure.message)
            codes[f"HTTP {match.group(1)}" if match else failure.message] += failure.occurrences
    return ", ".join(f"{code}: {count}" for code, count in sorted(codes.items()))


def judge_locust_run(
    exit_code: int,
    stats_csv: str,
    failures_csv: str,
    exceptions_csv: str,
    users: int,
    log_tail: str = "",
) -> LoadOutcome:
    """Decide whether a Locust run is a measurement; say why not when it is not. ``log_tail`` (the end of the
    master's log) goes into the reason when nothing else explains a failed run. A file Locust did not write is
    given as an empty text."""
    log = f"; the master's log ends: {log_tail.strip()[-1500:]}" if log_tail.strip() else ""
    problems = []
    try:
        if exceptions_csv.strip() and (exceptions := parse_exceptions(exceptions_csv)):
            raised = "; ".join(f"{message} × {count}" for count, message in exceptions)
            problems.append(f"the users raised exceptions ({raised})")
    except LocustParseError as error:
        problems.append(str(error))
    if not stats_csv.strip():
        return LoadOutcome(
            None,
            "; ".join([f"Locust wrote no statistics (exit code {exit_code})", *problems])
            + (log if not problems else ""),
            exit_code,
        )
    try:
        report = parse_locust_stats(stats_csv, failures_csv, users)
        failures = parse_failures(failures_csv)
    except LocustParseError as error:
        return LoadOutcome(
            None, "; ".join([f"{error} (exit code {exit_code})", *problems]) + (log if not problems else ""), exit_code
        )
    if report.non_2xx:
        problems.insert(0, f"{report.non_2xx} of {report.complete} answers were not 2xx ({_statuses(failures)})")
    if report.failed:
        kinds = "; ".join(f"{message} × {count}" for message, count in sorted(report.failed_breakdown.items()))
        problems.insert(0, f"{report.failed} of {report.complete} requests got no answer ({kinds})")
    if exit_code != 0 and not problems:
        problems.append(f"locust exited with {exit_code}{log}")
    return LoadOutcome(report, "; ".join(problems) or None, exit_code)


def history_snapshot(history_csv: str) -> HistorySnapshot | None:
    """The newest ``Aggregated`` row of ``PREFIX_stats_history.csv`` (written once a second during the run);
    None before the first, or when the file is being written."""
    try:
        rows = _rows(history_csv, "stats_history.csv", ("User Count", "Name", "Total Request Count"))
        row = next(r for r in reversed(rows) if r["Name"] == _AGGREGATED)
        return HistorySnapshot(
            users=_count(row, "User Count", "stats_history.csv"),
            requests=_count(row, "Total Request Count", "stats_history.csv"),
            failures=_count(row, "Total Failure Count", "stats_history.csv"),
        )
    except (LocustParseError, StopIteration):
        return None
