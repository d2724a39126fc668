"""Run a reproduction: its study parts at a scale (resumable), the analysis, and the report with a verdict."""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from ..files import write_text
from ..report.collect import collect
from ..report.render import write_report
from ..study.runner import run_study
from .budget import annotate, load_budget, record_key
from .core import (
    SCALES,
    STUDY_RULE,
    Analysis,
    ClaimCheck,
    Context,
    PartRun,
    Reproduction,
    load_part_spec,
    overall_verdict,
)
from .evidence import RESAMPLES, finalize
from .render import write_reproduction

__all__ = ["ReproductionReport", "cpu_model", "load_part_spec", "run_reproduction", "spec_digest", "verdict_record"]


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


def _versions() -> dict[str, str]:
    out = {"rectlab": __version__, "python": platform.python_version()}
    with contextlib.suppress(metadata.PackageNotFoundError):
        out["torch"] = metadata.version("torch")
    return out


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished child processes (the study workers)."""
    try:
        import resource  # POSIX only
    except ImportError:  # pragma: no cover
        return time.process_time()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what the platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def spec_digest(ctx: Context) -> str:
    """16 hex digits over the claim's design and the digest of every part spec and custom setup that ran: the
    same value means the same planned design (seeds, margins, thresholds, alpha, models, budgets)."""
    blob = json.dumps(
        {"design": ctx.design.record() if ctx.design else {}, "digests": ctx.digests, "scale": ctx.scale},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def verdict_record(
    repro: Reproduction,
    ctx: Context,
    analysis: Analysis,
    verdict: str,
    reason: str,
    seconds: float,
    command: str,
    cpu_seconds: float | None = None,
) -> dict[str, Any]:
    """The content of ``verdict.json``: the verdict, every check's evidence, and the runs behind them.

    ``runs`` sums ``{"done", "diverged", "stalled", "failed", ...}`` over the parts; ``converged`` says whether
    every done run that did not stall reached a plateau (see `rectlab.report.collect.converged`; true for
    runners without runs); ``n_planned`` gives the seeds each part's spec planned per cell; ``spec_digest``
    identifies the planned design (see `spec_digest`); ``design`` the alpha, stages and margins it used;
    ``seconds`` is wall-clock time and ``cpu_seconds`` the CPU time of the process and its workers.
    """
    counts: dict[str, int] = {"done": 0, "diverged": 0, "stalled": 0, "failed": 0}
    for p in ctx.parts.values():
        for status, k in p.results.run_counts().items():
            counts[status] = counts.get(status, 0) + k
    runs_total = {**counts, **analysis.runs} if analysis.runs else counts
    return {
        "name": repro.name,
        "scale": ctx.scale,
        "verdict": verdict,
        "reason": reason,
        "rule": STUDY_RULE,
        "seconds": round(seconds, 1),
        "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 1),
        "command": command,
        "cpu": cpu_model(),
        "versions": _versions(),
        "runs": runs_total,
        "converged": all(p.results.converged for p in ctx.parts.values()),
        "n_planned": {name: len(p.spec.seeds) for name, p in ctx.parts.items()} or analysis.n_planned,
        "spec_digest": spec_digest(ctx),
        "design": {**(ctx.design.record() if ctx.design else {}), "decided_at_stage": analysis.stage},
        "checks": [c.record() for c in analysis.checks],
        "parts": {
            name: {
                "spec": p.part.spec,
                "stage": p.part.stage,
                "runs": p.results.run_counts(),
                "converged": p.results.converged,
                "devices": p.results.devices,
                "budget": analysis.budget.get(name),
            }
            for name, p in ctx.parts.items()
        },
    }


def _run_parts(
    repro: Reproduction,
    ctx: Context,
    stage: int,
    *,
    dataset: str | None,
    budget: dict[str, Any],
    analysis_budget: dict[str, str],
    run_kwargs: dict[str, Any],
) -> None:
    console, progress = run_kwargs.get("console"), run_kwargs.get("progress", True)
    for part in (p for p in repro.parts if ctx.scale in p.scales and p.stage == stage):
        spec = load_part_spec(repro, part.spec, ctx.scale, ctx.execution.get("studies"), dataset)
        part_dir = ctx.out / part.name
        if console is not None and progress:
            console.print(f"[bold]{repro.name}[/] part [bold]{part.name}[/]: {part.title}")
        run_study(spec, part_dir, **run_kwargs)
        results = collect(part_dir)
        analysis_budget[part.name] = annotate(results, spec, budget.get(record_key(part.spec, ctx.scale)))
        write_report(part_dir, results)
        ctx.parts[part.name] = PartRun(part, spec, part_dir, results)
        ctx.digests[part.name] = spec.digest


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
    resamples: int = RESAMPLES,
    **study_options: Any,
) -> ReproductionReport:
    """Run ``repro`` at ``scale`` and write ``reproduction.md`` / ``reproduction.html`` / ``verdict.json`` in ``out``.

    Every part is an ordinary study directory (``out/<part>/results.db`` and its own ``report.html``), so
    re-running the same command skips finished runs and resumes interrupted ones. With a two-stage design
    (``stages = [a1, a2]`` in the claim's spec) the parts of stage 2 run only when a primary check is still
    inconclusive after stage 1 at ``a1``; the verdict then uses ``a2`` on all the runs.

    Args:
        repro: the reproduction (see `rectlab.reproduce.STUDIES`).
        scale: "smoke", "quick" or "full".
        out: output directory (default ``runs/repro-<name>-<scale>``).
        studies: the folder of the study specs (default: see `rectlab.reproduce.core.studies_dir`).
        dataset: run on this dataset instead of the spec's (e.g. when CIFAR is not available).
        device, data_dir, executor, workers, progress, console: as [`rectlab.study.run_study`][rectlab.study.run_study].
        command: the command line to record in the report (default: this process's argv).
        resamples: seed-bootstrap resamples per check for the labels' stability (0 skips it).
        study_options: more keyword arguments of [`rectlab.study.run_study`][rectlab.study.run_study] (threads, extend,
            retry_failed, retry_diverged, address, gpus_per_run, trackers, imports).
    """
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    out = Path(out) if out is not None else Path("runs") / f"repro-{repro.name}-{scale}"
    out.mkdir(parents=True, exist_ok=True)
    execution = {
        "device": device,
        "data_dir": data_dir,
        "executor": executor,
        "workers": workers,
        "progress": progress,
        "console": console,
        "studies": studies,
        "dataset": dataset,
    }
    design = repro.design(studies)
    ctx = Context(repro.name, scale, out, {}, execution, design)
    if repro.runner is not None:
        analysis = repro.runner(ctx)
        analysis.checks = finalize(analysis.checks, design.stages[0], resamples=resamples)
    else:
        run_kwargs = {
            "executor": executor,
            "workers": workers,
            "device": device,
            "data_dir": data_dir,
            "progress": progress,
            "console": console,
            **study_options,
        }
        budget, budget_notes = load_budget(studies), dict[str, str]()
        two_stage = len(design.stages) == 2
        _run_parts(repro, ctx, 1, dataset=dataset, budget=budget, analysis_budget=budget_notes, run_kwargs=run_kwargs)
        if not two_stage:  # a fixed design runs every part
            _run_parts(
                repro, ctx, 2, dataset=dataset, budget=budget, analysis_budget=budget_notes, run_kwargs=run_kwargs
            )
        analysis = repro.analyze(ctx) if repro.analyze is not None else Analysis()
        stage = 1
        checks = finalize(analysis.checks, design.stages[0], resamples=0 if two_stage else resamples)
        second = [p for p in repro.parts if scale in p.scales and p.stage == 2]
        if two_stage and second and any(c.primary and c.verdict == "inconclusive" for c in checks):
            _run_parts(
                repro, ctx, 2, dataset=dataset, budget=budget, analysis_budget=budget_notes, run_kwargs=run_kwargs
            )
            analysis = repro.analyze(ctx) if repro.analyze is not None else Analysis()
            stage = 2
        if two_stage:
            checks = finalize(analysis.checks, design.stages[stage - 1], resamples=resamples)
        analysis.checks, analysis.stage, analysis.budget = checks, stage, {**budget_notes, **analysis.budget}
    verdict, reason = overall_verdict(analysis.checks)
    seconds = time.perf_counter() - t0
    command = command or " ".join(shlex.quote(a) for a in ["rectlab", *sys.argv[1:]])
    md, html = write_reproduction(repro, ctx, analysis, verdict, reason, seconds, command)
    json_path = out / "verdict.json"
    record = verdict_record(repro, ctx, analysis, verdict, reason, seconds, command, _cpu_seconds() - cpu0)
    write_text(json_path, json.dumps(record, indent=1))
    return ReproductionReport(repro.name, scale, verdict, reason, analysis.checks, out, md, html, json_path, seconds)
