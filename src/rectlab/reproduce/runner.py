"""Run a reproduction: its study parts at a scale (resumable), the analysis, and the report with a verdict."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import write_text
from ..report import collect, write_report
from ..study import load_spec, run_study
from .core import SCALES, Analysis, ClaimCheck, Context, PartRun, Reproduction, overall_verdict, studies_dir
from .evidence import finalize
from .render import write_reproduction

__all__ = ["ReproductionReport", "load_part_spec", "run_reproduction", "verdict_record"]


@dataclass
class ReproductionReport:
    """What `run_reproduction` produced.

    Attributes:
        name, scale: the reproduction and its scale.
        verdict, reason: the overall verdict and why.
        checks: every claim check.
        out: the output directory; ``markdown`` / ``html`` the reports; ``json`` the verdict record.
        seconds: wall-clock time of the whole reproduction.
    """

    name: str
    scale: str
    verdict: str
    reason: str
    checks: list[ClaimCheck]
    out: Path
    markdown: Path
    html: Path
    json: Path
    seconds: float


def load_part_spec(repro: Reproduction, part_spec: str, scale: str, studies: str | Path | None = None,
                   dataset: str | None = None) -> Any:
    """The [`rectlab.study.StudySpec`][rectlab.study.StudySpec] of one part at ``scale`` (``dataset`` overrides the
    spec's)."""
    spec = load_spec(studies_dir(studies) / part_spec, scale=scale)
    if dataset is not None:
        if "dataset" in spec.grid:
            raise InputError(f"{part_spec} varies the dataset in its grid; --dataset cannot override it")
        spec = dataclasses.replace(spec, base=spec.base.replace(dataset=dataset))
    return spec


def verdict_record(repro: Reproduction, ctx: Context, analysis: Analysis, verdict: str, reason: str, seconds: float,
                   command: str) -> dict[str, Any]:
    """The content of ``verdict.json``: the verdict, every check's evidence, and the runs behind them.

    ``runs`` sums ``{"done", "diverged", "failed", ...}`` over the parts; ``converged`` says whether every done
    run reached a plateau (see `rectlab.report.collect.converged`; true for runners without runs).
    """
    counts: dict[str, int] = {"done": 0, "diverged": 0, "failed": 0}
    for p in ctx.parts.values():
        for status, k in p.results.run_counts().items():
            counts[status] = counts.get(status, 0) + k
    return {
        "name": repro.name, "scale": ctx.scale, "verdict": verdict, "reason": reason, "seconds": round(seconds, 1),
        "command": command, "runs": counts, "converged": all(p.results.converged for p in ctx.parts.values()),
        "checks": [c.record() for c in analysis.checks],
        "parts": {name: {"spec": p.part.spec, "runs": p.results.run_counts(), "converged": p.results.converged,
                         "devices": p.results.devices} for name, p in ctx.parts.items()},
    }


def run_reproduction(
    repro: Reproduction,
    scale: str = "quick",
    out: str | Path | None = None,
    *,
    studies: str | Path | None = None,
    dataset: str | None = None,
    device: str | None = None,
    data_dir: str | None = None,
    executor: str = "local",
    workers: int = 1,
    progress: bool = True,
    console: Any = None,
    command: str | None = None,
    **study_options: Any,
) -> ReproductionReport:
    """Run ``repro`` at ``scale`` and write ``reproduction.md`` / ``reproduction.html`` / ``verdict.json`` in ``out``.

    Every part is an ordinary study directory (``out/<part>/results.db`` and its own ``report.html``), so
    re-running the same command skips finished runs and resumes interrupted ones.

    Args:
        repro: the reproduction (see `rectlab.reproduce.STUDIES`).
        scale: "smoke", "quick" or "full".
        out: output directory (default ``runs/repro-<name>-<scale>``).
        studies: the folder of the study specs (default: see `rectlab.reproduce.core.studies_dir`).
        dataset: run on this dataset instead of the spec's (e.g. when CIFAR is not available).
        device, data_dir, executor, workers, progress, console: as [`rectlab.study.run_study`][rectlab.study.run_study].
        command: the command line to record in the report (default: this process's argv).
        study_options: more keyword arguments of [`rectlab.study.run_study`][rectlab.study.run_study] (threads, extend,
            retry_failed, retry_diverged, address, gpus_per_run, trackers, imports).
    """
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    t0 = time.perf_counter()
    out = Path(out) if out is not None else Path("runs") / f"repro-{repro.name}-{scale}"
    out.mkdir(parents=True, exist_ok=True)
    execution = {"device": device, "data_dir": data_dir, "executor": executor, "workers": workers,
                 "progress": progress, "console": console, "studies": studies, "dataset": dataset}
    ctx = Context(repro.name, scale, out, {}, execution)
    if repro.runner is not None:
        analysis = repro.runner(ctx)
    else:
        for part in (p for p in repro.parts if scale in p.scales):
            spec = load_part_spec(repro, part.spec, scale, studies, dataset)
            part_dir = out / part.name
            if console is not None and progress:
                console.print(f"[bold]{repro.name}[/] part [bold]{part.name}[/]: {part.title}")
            run_kwargs = {"executor": executor, "workers": workers, "device": device, "data_dir": data_dir,
                          "progress": progress, "console": console, **study_options}
            run_study(spec, part_dir, **run_kwargs)
            results = collect(part_dir)
            write_report(part_dir, results)
            ctx.parts[part.name] = PartRun(part, spec, part_dir, results)
        analysis = repro.analyze(ctx) if repro.analyze is not None else Analysis()
    analysis.checks = finalize(analysis.checks)
    verdict, reason = overall_verdict(analysis.checks)
    seconds = time.perf_counter() - t0
    command = command or " ".join(shlex.quote(a) for a in ["rectlab", *sys.argv[1:]])
    md, html = write_reproduction(repro, ctx, analysis, verdict, reason, seconds, command)
    json_path = out / "verdict.json"
    write_text(json_path, json.dumps(verdict_record(repro, ctx, analysis, verdict, reason, seconds, command), indent=1))
    return ReproductionReport(repro.name, scale, verdict, reason, analysis.checks, out, md, html, json_path, seconds)
