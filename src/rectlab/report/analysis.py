"""The statistics of a study, or of results computed elsewhere: `analyze` and `Analysis`.

`analyze` takes one row per run (a pandas DataFrame, a CSV or Parquet file exported from TensorBoard, W&B,
MLflow or ``rectlab export``, or a list of dicts) and gives the table, the verdicts and the report a study
gives: the same per-cell summaries, the same comparisons with the baseline (paired by ``pair_by`` when both
cells hold the same values of it, Welch otherwise; exact tests on ties), Holm's correction, the minimum
detectable effect, and the across-task view of `rectlab.report.aggregate` when ``tasks`` name two or more
datasets or models. It goes through `rectlab.report.collect.results_from_runs`, the code a study's
report uses, so the same numbers give the same effect, interval and p-value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import MissingFileError, MissingPackageError, RectlabError
from .aggregate import AcrossTasks, across_tasks
from .collect import CellResult, StudyResults
from .collect import results_from_runs as _results_from_runs
from .render import Report, print_table, write_report
from .tables import verdict_sentence

__all__ = ["Analysis", "AnalysisError", "analyze", "read_table"]

GOALS = ("min", "max")


class AnalysisError(RectlabError, ValueError):
    """The table cannot be analyzed as asked (a missing column, an unknown baseline, a run listed twice ...)."""


def _pandas() -> Any:
    try:
        import pandas  # optional: rectlab[frames]
    except ImportError:
        raise MissingPackageError(
            "reading a results table needs pandas: pip install 'rectlab[frames]' (or pip install pandas)"
        ) from None
    return pandas


def read_table(path: str | Path) -> Any:
    """A results file as a DataFrame: ``.csv``, ``.tsv`` or ``.parquet``.

    Raises:
        FileNotFoundError: no such file.
        AnalysisError: another suffix.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; pass a CSV or Parquet file with one row per run")
    pd = _pandas()
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")  # pandas >= 3 reads floats back exactly
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise AnalysisError(f"{path}: cannot read {suffix or 'a file without a suffix'}; use a .csv, .tsv or .parquet file")


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # NumPy scalars (what pandas rows hold)
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _records(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, (str, Path)):
        data = read_table(data)
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame
        return [{str(k): _plain(v) for k, v in row.items()} for row in data.to_dict("records")]
    if isinstance(data, Sequence) and all(isinstance(r, Mapping) for r in data):
        return [{str(k): _plain(v) for k, v in r.items()} for r in data]
    raise AnalysisError(f"analyze takes a DataFrame, a CSV/Parquet path or a list of dicts, got {type(data).__name__}")


def _match(values: list[Any], wanted: Any, column: str) -> Any:
    """The value of ``column`` that ``wanted`` names (text from the command line matches numbers too)."""
    for v in values:
        if v == wanted or str(v) == str(wanted):
            return v
        try:
            if float(v) == float(wanted):
                return v
        except (TypeError, ValueError):
            pass
    shown = ", ".join(map(str, values[:20])) + (" ..." if len(values) > 20 else "")
    raise AnalysisError(f"baseline {column}={wanted!r} is not in the table; its values: {shown}")


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def analyze(
    data: Any,
    *,
    metric: str,
    by: str | Sequence[str],
    baseline: Any,
    pair_by: str | None = "seed",
    tasks: str | Sequence[str] | None = None,
    goal: str = "min",
    name: str | None = None,
) -> Analysis:
    """Paired statistics and verdicts for results computed elsewhere: one row per run.

    Args:
        data: a pandas DataFrame, the path of a ``.csv``/``.tsv``/``.parquet`` file, or a list of dicts.
        metric: the column compared (``test_error``, ``val_accuracy`` ...).
        by: the column (or columns) whose values are compared (``activation``).
        baseline: the value of ``by`` every other value is compared with (a dict with several ``by`` columns).
        pair_by: the column that pairs runs across cells (``seed``: the same seed, the same data order and
            init); None compares unpaired (Welch's t-test).
        tasks: columns whose values are separate tasks (``dataset``, ``model``): each value of ``by`` is
            compared with the baseline within each task, and with two or more tasks the report adds the
            across-task view (interquartile mean, probability of improvement, performance profiles).
        goal: ``"min"`` when lower is better (errors, losses), ``"max"`` when higher is better (accuracy).
        name: the title of the report.

    Rows with a ``status`` column other than ``done`` (``rectlab export`` writes one) are not compared:
    ``diverged`` rows are counted beside n, others listed as failed or unfinished. A done row without a
    finite value of ``metric`` is listed as failed.

    Returns:
        An `Analysis`.

    Raises:
        AnalysisError: a missing column, a baseline that is not in the table, or two rows for one run.
    """
    if goal not in GOALS:
        raise AnalysisError(f"goal must be 'min' (lower is better) or 'max' (higher is better), got {goal!r}")
    by_cols, task_cols = _as_list(by), _as_list(tasks)
    if not by_cols:
        raise AnalysisError("by must name the column whose values are compared, e.g. by='activation'")
    rows = _records(data)
    if not rows:
        raise AnalysisError("the table has no rows")
    needed = [metric, *by_cols, *task_cols, *([pair_by] if pair_by else [])]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    for col in needed:
        if col not in columns:
            raise AnalysisError(f"no column {col!r}; the table's columns: {', '.join(columns)}")
    keys = [*by_cols, *(t for t in task_cols if t not in by_cols)]
    grid: dict[str, list[Any]] = {k: [] for k in keys}
    for r in rows:
        for k in keys:
            if _missing(r[k]):
                raise AnalysisError(f"column {k!r} is empty in a row; every run needs a value of it")
            if r[k] not in grid[k]:
                grid[k].append(r[k])
    if isinstance(baseline, Mapping):
        wanted = dict(baseline)
        if set(wanted) != set(by_cols):
            raise AnalysisError(f"baseline {wanted!r} must give a value of each by column: {', '.join(by_cols)}")
    elif len(by_cols) == 1:
        wanted = {by_cols[0]: baseline}
    else:
        raise AnalysisError(f"with several by columns ({', '.join(by_cols)}) the baseline is a dict of their values")
    base = {k: _match(grid[k], v, k) for k, v in wanted.items()}
    for k, v in base.items():  # the baseline first, as a study lists it
        grid[k].remove(v)
        grid[k].insert(0, v)
    runs: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for i, r in enumerate(rows):
        cell = {k: r[k] for k in keys}
        seed = r[pair_by] if pair_by else ("row", i)
        if pair_by and _missing(seed):
            raise AnalysisError(
                f"column {pair_by!r} is empty in a row; every run needs a value of it (or pass "
                "pair_by=None to compare unpaired)"
            )
        key = (tuple(cell.items()), seed)
        if key in seen:
            where = ", ".join(f"{k}={v}" for k, v in cell.items())
            raise AnalysisError(
                f"two rows for {where}, {pair_by}={seed}; give a pair_by column that tells the runs "
                "apart, or average them first"
            )
        seen.add(key)
        status = str(r.get("status") or "done")
        extras: dict[str, Any] = {"final": {metric: r[metric]}} if not _missing(r[metric]) else {}
        if status == "diverged":
            extras["diverged"] = {"epoch": r.get("diverged_epoch", "?")}
        runs.append(
            {
                "hash": f"row-{i}",
                "study": name,
                "cell": cell,
                "seed": seed,
                "config": {},
                "status": status,
                "versions": {},
                "device": None,
                "extras": extras,
                "epochs": [],
                "error": None if _missing(r.get("error")) else r.get("error"),
            }
        )
    title = name or f"{metric} by {', '.join(by_cols)}"
    pairs = sorted({r["seed"] for r in runs}, key=str) if pair_by else "unpaired"
    spec = {"study": {"name": title, "metric": metric, "goal": goal, "baseline": base, "seeds": pairs}, "grid": grid}
    results = _results_from_runs(title, spec, runs)
    return Analysis(results, frame=lambda: _pandas().DataFrame.from_records(rows))


def _comparison_rows(results: StudyResults) -> list[dict[str, Any]]:
    out = []
    for c in results.cells:
        if c.comparison is None:
            continue
        k = c.comparison
        out.append(
            {
                **c.values,
                "cell": c.label,
                "baseline": c.baseline_label,
                "n": k.n,
                "estimate": k.diff,
                "ci_low": k.ci_low,
                "ci_high": k.ci_high,
                "p": k.p_value,
                "p_holm": k.p_holm,
                "mde": k.mde,
                "test": k.test,
                "verdict": k.verdict,
            }
        )
    return out


class Analysis:
    """A study's (or a table's) statistics: the per-cell results, the comparisons with the baseline and their
    verdicts, the across-task view, the report.

    Attributes:
        results: the `rectlab.report.StudyResults` every table and report is drawn from.
        where: the study directory, when the analysis is of one.
    """

    def __init__(self, results: StudyResults, *, frame: Callable[[], Any], where: str | Path | None = None) -> None:
        self.results = results
        self.where = Path(where) if where is not None else None
        self._frame = frame
        self._across: AcrossTasks | None | bool = False

    def __repr__(self) -> str:
        return f"<Analysis {self.results.name!r}: {verdict_sentence(self.results)}>"

    @property
    def cells(self) -> list[CellResult]:
        """Per grid cell: its runs, summary (n, mean, std, CI) and comparison with the baseline."""
        return self.results.cells

    def frame(self) -> Any:
        """A pandas DataFrame, one row per run: the grid values and parameters, ``seed``, ``status`` and the
        final metrics (for a study, `rectlab.report.to_frame` of its directory)."""
        return self._frame()

    @property
    def comparisons(self) -> Any:
        """A pandas DataFrame, one row per cell compared with its baseline: the cell's values, ``cell``,
        ``baseline``, ``n``, ``estimate`` (the difference of means, cell - baseline), ``ci_low``, ``ci_high``
        (its 95% CI), ``p``, ``p_holm`` (Holm-corrected over the comparisons), ``mde`` (minimum detectable
        effect), ``test`` and ``verdict`` (better / worse / no significant difference / inconclusive)."""
        pd = _pandas()
        columns = ["cell", "baseline", "n", "estimate", "ci_low", "ci_high", "p", "p_holm", "mde", "test", "verdict"]
        rows = _comparison_rows(self.results)
        return pd.DataFrame.from_records(
            rows, columns=list(dict.fromkeys([*self.results.spec.get("grid", {}), *columns]))
        )

    @property
    def across_tasks(self) -> AcrossTasks | None:
        """The aggregate view across tasks (two or more datasets / models), or None."""
        if self._across is False:
            self._across = across_tasks(self.results)
        return self._across  # type: ignore[return-value]

    @property
    def verdict(self) -> str:
        """Every comparison in one plain-language paragraph."""
        return verdict_sentence(self.results)

    def print(self, console: Any = None) -> None:
        """Print the table, the verdicts, the minimum detectable effects and the across-task view."""
        if console is None:
            from rich.console import Console  # rich: imported on first use, as print_table does

            console = Console()
            if not console.is_terminal:  # a log file or a pipe: wide enough for the table
                console = Console(width=max(console.width, 150))
        print_table(self.results, console)

    def report(self, path: str | Path | None = None) -> Report:
        """Write the report: ``path`` is ``DIR/NAME.html`` (``NAME.md`` beside it) or a directory (``report.html``
        in it); default: the study directory. Plots go to ``plots/`` beside it."""
        if path is None:
            if self.where is None:
                raise AnalysisError("say where the report goes: analysis.report('out/report.html')")
            path = self.where
        path = Path(path)
        folder, stem = (path.parent, path.stem) if path.suffix.lower() in (".html", ".md") else (path, "report")
        folder.mkdir(parents=True, exist_ok=True)
        return write_report(folder, self.results, stem=stem)
