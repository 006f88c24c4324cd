"""Reports people look at: one self-contained report.html per run and per comparison."""

from shoulders.reporting.html import REPORT_FILE, compare_report, run_report, write_compare_report, write_run_report

__all__ = ["REPORT_FILE", "compare_report", "run_report", "write_compare_report", "write_run_report"]
