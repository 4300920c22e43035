"""Keeping reports: ``reports/<run-id>/`` with report.json, summary.md and plots; ``reports/latest`` → newest.

A run's report is saved once, at the end of the run (perf/session.PerfRun.write_report), from its typed object.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from model_serving.report.plots import write_plots
from model_serving.report.sections import Report
from model_serving.report.summary import render_summary


def new_run_id(now: datetime | None = None) -> tuple[str, str]:
    """A sortable run id and the ISO time it stands for."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ"), moment.isoformat(timespec="seconds")


REPORT_FILE = "report.json"


def save_report(report: Report, reports_dir: Path) -> Path:
    """report.json (the report's JSON), summary.md and the plots in ``reports_dir/<run_id>/``; that folder."""
    folder = reports_dir / report.run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    (folder / "summary.md").write_text(render_summary(report))
    write_plots(report, folder)
    latest = reports_dir / "latest"
    # Relative, so the folder can be moved or archived whole.
    temporary = reports_dir / ".latest.partial"
    temporary.unlink(missing_ok=True)
    os.symlink(folder.name, temporary)
    temporary.replace(latest)
    return folder


def load_report(folder: Path) -> Report:
    """The report saved in ``folder`` (its report.json), typed."""
    return Report.from_json(json.loads((folder / REPORT_FILE).read_text()))
