"""Keeping reports: ``reports/<run-id>/`` with report.json, summary.md and plots; ``reports/latest`` → newest."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model_serving.report.plots import write_plots
from model_serving.report.summary import render_summary


def new_run_id(now: datetime | None = None) -> tuple[str, str]:
    """A sortable run id and the ISO time it stands for."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ"), moment.isoformat(timespec="seconds")


def save_report(report: Mapping[str, Any], reports_dir: Path) -> Path:
    folder = reports_dir / str(report["run_id"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "summary.md").write_text(render_summary(report))
    write_plots(report, folder)
    latest = reports_dir / "latest"
    # Relative, so the folder can be moved or archived whole.
    temporary = reports_dir / ".latest.partial"
    temporary.unlink(missing_ok=True)
    os.symlink(folder.name, temporary)
    temporary.replace(latest)
    return folder
