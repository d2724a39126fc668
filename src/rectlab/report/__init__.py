"""Reports: statistics, tables, plots, Markdown and self-contained HTML."""

from .collect import CellResult, StudyResults, collect
from .frame import to_frame
from .render import Report, print_table, write_report
from .stats import Comparison, Summary, compare, summarize

__all__ = [
    "CellResult",
    "Comparison",
    "Report",
    "StudyResults",
    "Summary",
    "collect",
    "compare",
    "print_table",
    "summarize",
    "to_frame",
    "write_report",
]
