"""``rectlab compare``: train a grid of activations (x models x datasets x transforms) over seeds and report.

The parser is in ``cli.parsers``; this module runs the command (``run``) and holds what ``run`` shares with
``rectlab run`` and ``rectlab report`` (``execute``, ``print_problems``).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..activations import format_spec, parse_kwargs, parse_spec, split_specs
from ..errors import InputError
from ..report import collect, print_table, write_report
from ..study import plan_study, run_study, runs, spec_from_dict
from ..study.lock import prepare_out_dir
from ..study.numerics import current_numerics
from ..study.validate import validate_runs
from ..timings import phase
from .common import NUMERIC_TRAINING_FIELDS, console, execution_options, training_fields

# Flags that take a comma list (config field = argument dest); two or more values become a grid axis.
LIST_FLAGS = ("model", "dataset", "init", "erase_relu", *NUMERIC_TRAINING_FIELDS)


def activation_list(text: str | list[str]) -> list[str]:
    """``--activations`` as canonical names: ``"relu,smelu:beta=0.50"`` -> ``["relu", "smelu:beta=0.5"]``."""
    items = split_specs(text) if isinstance(text, str) else list(text)
    return [format_spec(*parse_spec(item)) for item in items]


def default_out(activations: list[str], models: list[str], datasets: list[str]) -> str:
    """``runs/compare-relu-prelu-gelu-mlp-fashion-mnist``: the same command finds (and resumes) the same folder."""
    text = "-".join([*activations, *models, *datasets])
    return str(Path("runs") / ("compare-" + re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_")[:120]))


def build_spec(args: argparse.Namespace) -> dict[str, Any]:
    activations = activation_list(args.activations)
    base = training_fields(args)
    if args.model_kwargs:
        base["model_kwargs"] = parse_kwargs(args.model_kwargs, what=f"--model-kwargs {args.model_kwargs!r}")
    grid: dict[str, list[Any]] = {"activation": activations}
    for key in LIST_FLAGS:
        values = base.pop(key) if key in base else getattr(args, key)
        if values is None:  # not given and no default: the config's own (e.g. no train_limit)
            continue
        if len(set(values)) != len(values):
            raise InputError(f"--{key.replace('_', '-')} lists a value twice: {','.join(map(str, values))}")
        if len(values) > 1:
            grid[key] = values
        else:
            base[key] = values[0]
    if len(set(activations)) != len(activations):
        raise InputError(f"--activations lists an activation twice: {','.join(activations)}")
    baseline = activation_list(args.baseline)[0] if args.baseline else activations[0]
    if baseline not in activations:
        raise InputError(f"--baseline {baseline!r} must be one of --activations {','.join(activations)}")
    name = args.name or f"compare {', '.join(activations)} on {'/'.join(args.model)} / {'/'.join(args.dataset)}"
    return {
        "study": {"name": name, "seeds": args.seeds, "baseline": {"activation": baseline}},
        "base": base,
        "grid": grid,
    }


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise InputError("--seeds must be >= 1 (use 2 or more to get confidence intervals)")
    spec = spec_from_dict(build_spec(args), where="rectlab compare")
    if args.out is None:
        args.out = default_out(activation_list(args.activations), args.model, args.dataset)
        console().print(f"study folder: {args.out} (the default; --out DIR chooses another)")
    return execute(spec, args)


def execute(spec: Any, args: argparse.Namespace) -> int:
    """Run a spec with the execution flags, then print the table and write the report (or, with --dry-run,
    validate everything and say what would run)."""
    con = console()
    options = execution_options(args)
    if args.dry_run:
        return dry_run(spec, args.out, options, con)
    with phase("run_study"):
        run_study(spec, args.out, console=con, **options)
    with phase("collect"):
        results = collect(args.out)
        print_table(results, con)
    with phase("report"):
        report = write_report(args.out, results)
    con.print(f"report: {report.html.resolve()}")
    return print_problems(results, con)


def dry_run(spec: Any, out: str, options: dict[str, Any], con: Any) -> int:
    """Check the spec, the study directory and every cell's model and data; print the plan."""
    if Path(out).exists():
        prepare_out_dir(out)  # a file or an unwritable directory is refused here too
    overrides = {k: options[k] for k in ("device", "data_dir") if options[k] is not None}
    if overrides:
        spec = replace(spec, base=spec.base.replace(**overrides))
    numerics = current_numerics(options["threads"], {r.config.device for r in runs(spec)})
    plan = plan_study(
        spec,
        out,
        extend=options["extend"],
        retry_failed=options["retry_failed"],
        retry_diverged=options["retry_diverged"],
        numerics=numerics,
        allow_numerics_change=options["allow_numerics_change"],
    )
    validate_runs(plan.todo)
    con.print(f"dry run: {spec.name}: {plan.describe()}; nothing was trained")
    return 0


def print_problems(results: Any, con: Any) -> int:
    """List failed runs (exit status 1) and count diverged ones, with the flag that retrains them."""
    failed = [r for r in results.incomplete if r["status"] == "failed"]
    diverged = [r for r in results.incomplete if r["status"] == "diverged"]
    if diverged:
        con.print(f"[yellow]{len(diverged)} run(s) diverged[/] (kept as outcomes; --retry-diverged trains them again)")
    for r in failed:
        first = (r.get("error") or "").splitlines()[0] if r.get("error") else "no error recorded"
        cell = ", ".join(f"{k}={v}" for k, v in r["cell"].items())
        con.print(f"[red]failed:[/] {cell}, seed {r['seed']}: {first}", soft_wrap=True)
    if failed:
        con.print(f"[red]{len(failed)} run(s) failed[/]; fix the cause and re-run with --retry-failed")
        return 1
    return 0
