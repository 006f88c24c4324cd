"""What happens after a run folder is complete: its report.html, then its lineage row in MLflow.

Neither may cost the run: each failure is caught and explained, and the folder stays complete
(a lineage failure leaves tracking_pending.json for ``shoulders runs --sync``).
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

TRACKING_SWITCH = "SHOULDERS_TRACKING"  # "off": no MLflow logging at all (the report is still written)
REPORT_SWITCH = "SHOULDERS_REPORT"  # "off": no report.html (e.g. benchmarks of training alone)
_OFF = ("off", "0", "false", "no")


def publish_run(run_path: str | os.PathLike, console: Console | None = None, tracking_uri: str | None = None) -> dict:
    """Write report.html and log the lineage; returns {"report": path or None, "tracking": record or None}."""
    from shoulders.reporting.html import write_run_report

    console = console or Console(stderr=True)
    path = Path(run_path)
    outcome: dict = {"report": None, "tracking": None}
    try:
        if os.environ.get(REPORT_SWITCH, "").lower() not in _OFF:
            outcome["report"] = write_run_report(path)
    except Exception as error:  # a report is a view of the folder; the folder itself is complete
        console.print(f"[yellow]warning:[/] report.html not written ({type(error).__name__}: {error}); the run folder is complete.")
    if os.environ.get(TRACKING_SWITCH, "").lower() in _OFF:
        return outcome
    from shoulders.tracking.lineage import log_run_or_mark_pending

    try:
        record, line = log_run_or_mark_pending(path, tracking_uri)
    except Exception as error:  # e.g. mlflow missing or broken: still never lose the run
        record, line = None, f"lineage not logged ({type(error).__name__}: {error}); the run folder is complete."
    outcome["tracking"] = record
    console.print(("" if record else "[yellow]warning:[/] ") + line)
    return outcome
