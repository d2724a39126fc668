"""`Study`: run the user's own training function over a grid x seeds, then judge it like a built-in study.

Example:
    >>> import rectlab                                                                     # doctest: +SKIP
    >>> study = rectlab.Study("runs/mine", grid={"activation": ["relu", "prelu", "gelu"]}, seeds=8,
    ...                       baseline={"activation": "relu"}, metric="test_error", goal="min")
    >>> result = study.run(train, executor="processes", workers=2)   # train(trial) -> {"test_error": ...}
    >>> result.comparisons                # per cell vs baseline: estimate, ci, p, p_holm, mde, verdict
    >>> result.report("runs/mine/report.html")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..report.analysis import Analysis
from ..report.collect import collect
from ..report.frame import to_frame
from ..study.function import function_reference
from ..study.runner import plan_study, run_study
from ..study.spec import StudySpec, spec_from_dict

__all__ = ["Study"]


class Study:
    """A study of the user's own training function: a grid of parameters x seeds in one directory.

    Args:
        out: the study directory (``results.db``, ``runs/<hash>/checkpoint.pt``, the report).
        grid: ``{parameter: [values]}``; every combination is a cell, run once per seed. Any keys the function
            understands (``activation``, ``lr``, ``width`` ...); `rectlab.study.trial.Trial.model_hook` applies
            ``activation``, ``activation_kwargs``, ``erase_relu``, ``erase_location`` and ``init``.
        seeds: a count (seeds 0..n-1) or a list of seeds.
        baseline: the values every cell is compared with (``{"activation": "relu"}``); default: the first value
            of the first grid key.
        metric: the final metric compared (a key of the dict the function returns, or of its last logged row).
        goal: ``"min"`` when lower is better (errors, losses), ``"max"`` when higher is better (accuracy).
        params: parameters shared by every run (``{"epochs": 10}``), in ``trial.params`` beside the cell's.
        name: the report's title (default: the directory's name).
        device: ``trial.device`` (``"auto"``: CUDA when present); not part of a run's identity.
        data_dir: ``trial.data_dir``, for the function to find its data; not part of a run's identity.

    Raises:
        rectlab.study.SpecError: a grid, baseline, seeds or metric that is not valid (checked when the study runs).
    """

    def __init__(
        self,
        out: str | Path,
        grid: Mapping[str, Sequence[Any]],
        *,
        seeds: int | Sequence[int] = 3,
        baseline: Mapping[str, Any] | None = None,
        metric: str = "test_error",
        goal: str = "min",
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
        device: str = "auto",
        data_dir: str | Path | None = None,
    ) -> None:
        self.out = Path(out)
        self.grid = {k: list(v) for k, v in grid.items()}
        self.seeds = seeds if isinstance(seeds, int) else list(seeds)
        self.baseline = dict(baseline) if baseline is not None else None
        self.metric, self.goal = metric, goal
        self.params = dict(params or {})
        self.name = name or self.out.name
        self.device, self.data_dir = device, None if data_dir is None else str(data_dir)

    def __repr__(self) -> str:
        return f"Study({str(self.out)!r}, grid={self.grid!r}, seeds={self.seeds!r})"

    def spec(self, function: Callable[..., Any] | str) -> StudySpec:
        """The study spec of running ``function`` (validated as a TOML spec is)."""
        study: dict[str, Any] = {"name": self.name, "seeds": self.seeds, "metric": self.metric, "goal": self.goal}
        if self.baseline is not None:
            study["baseline"] = self.baseline
        base = {"function": function_reference(function), **self.params, "device": self.device}
        if self.data_dir is not None:
            base["data_dir"] = self.data_dir
        return spec_from_dict({"study": study, "base": base, "grid": self.grid}, where="rectlab.Study")

    def run(
        self,
        function: Callable[..., Any] | str,
        *,
        executor: str = "local",
        workers: int = 1,
        threads: int = 1,
        extend: bool = False,
        retry_failed: bool = False,
        retry_diverged: bool = False,
        progress: bool = True,
        address: str | None = None,
        gpus_per_run: float | None = None,
        imports: Sequence[str] = (),
    ) -> Analysis:
        """Run every pending (cell, seed) of ``function`` and return the study's `rectlab.report.Analysis`.

        Args:
            function: ``train(trial) -> dict of final metrics``, defined at the top level of an importable module
                (worker processes import it by name), or its import path ``"module:train"`` /
                ``"path/to/file.py:train"``.
            executor: ``"local"`` (one run after another here), ``"processes"`` (``workers`` at a time) or
                ``"ray"``; the results do not depend on it.
            workers, threads, address, gpus_per_run: as for `rectlab.study.run_study`: runs at a time, intra-op
                threads of every run (fixed, so results do not depend on the executor), the Ray cluster and GPUs
                per Ray task.
            extend: allow adding seeds or grid values to the study already in ``out``.
            retry_failed, retry_diverged: run failed / diverged runs again (otherwise they are kept as they are).
            progress: show progress bars.
            imports: plugin modules the worker processes import first (activations registered by the user).

        Finished runs are skipped and interrupted ones resume from their last ``trial.save``; a different
        function or grid in the same ``out`` is refused (with ``extend``, seeds and grid values may be added).
        """
        run_study(
            self.spec(function),
            self.out,
            executor=executor,
            workers=workers,
            threads=threads,
            extend=extend,
            retry_failed=retry_failed,
            retry_diverged=retry_diverged,
            address=address,
            gpus_per_run=gpus_per_run,
            progress=progress,
            imports=imports,
        )
        return self.results()

    def pending(self, function: Callable[..., Any] | str) -> int:
        """How many runs `run` would train now."""
        return len(plan_study(self.spec(function), self.out).todo)

    def results(self) -> Analysis:
        """The statistics of what the study directory holds (without running anything)."""
        return Analysis(collect(self.out), frame=lambda: to_frame(self.out), where=self.out)
