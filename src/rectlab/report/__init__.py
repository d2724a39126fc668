"""Reports: statistics, tables, plots, Markdown and self-contained HTML; `analyze` for results computed elsewhere."""

from .aggregate import AcrossTasks, across_tasks
from .analysis import Analysis, AnalysisError, analyze, read_table
from .collect import CellResult, StudyResults, collect
from .frame import to_frame
from .render import Report, print_table, write_report
from .stats import Comparison, Summary, compare, summarize

__all__ = [
    "AcrossTasks",
    "Analysis",
    "AnalysisError",
    "CellResult",
    "Comparison",
    "Report",
    "StudyResults",
    "Summary",
    "across_tasks",
    "analyze",
    "collect",
    "compare",
    "print_table",
    "read_table",
    "summarize",
    "to_frame",
    "write_report",
]
