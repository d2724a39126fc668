"""``rectlab compare``: train a grid of activations (x models x datasets x transforms) over seeds and report."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InputError
from ..training.config import INITS
from .common import (
    NUMERIC_TRAINING_FIELDS,
    add_execution_args,
    add_training_args,
    console,
    csv_list,
    execution_options,
    float_list,
    training_fields,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare activations over seeds and report an honest verdict",
        description="Train every combination of the given activations, models, datasets and transforms over "
        "several seeds, store the results in OUT/results.db, and write OUT/report.html. Re-running the same "
        "command skips finished runs and resumes interrupted ones.",
    )
    p.add_argument("--activations", type=csv_list, default=["relu", "prelu", "gelu"],
                   help="comma-separated activation names (default relu,prelu,gelu); see `rectlab list activations`")
    p.add_argument("--baseline", default=None, help="activation the others are compared with (default: the first)")
    p.add_argument("--model", type=csv_list, default=["mlp"],
                   help="model name(s) (default mlp: 2x256, which trains to a plateau in minutes on 2 CPU cores)")
    p.add_argument("--dataset", type=csv_list, default=["fashion-mnist"],
                   help="dataset name(s) (default fashion-mnist)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell (default 5)")
    # defaults that bring the default mlp to a plateau on Fashion-MNIST in minutes on 2 CPU cores
    add_training_args(p, lists=True, epochs=15, batch_size=256, sgd_lr=0.1, augment=False)
    p.add_argument("--init", type=csv_list, default=["default"], help=f"{' | '.join(INITS)} (list = grid)")
    p.add_argument("--erase-relu", type=float_list, default=[0.0],
                   help="EraseReLU proportion(s) of basic modules, e.g. 0,1 (list = grid)")
    p.add_argument("--out", required=True, help="study directory (results.db, checkpoints, report)")
    p.add_argument("--name", default=None, help="study name shown in the report")
    add_execution_args(p)
    # both cores of a 2-core machine: two single-threaded workers train ~1.35x more images/s than one 2-thread process
    p.set_defaults(func=run, executor="processes", workers=2)


# Flags that take a comma list (config field = argument dest); two or more values become a grid axis.
LIST_FLAGS = ("model", "dataset", "init", "erase_relu", *NUMERIC_TRAINING_FIELDS)


def build_spec(args: argparse.Namespace) -> dict[str, Any]:
    base = training_fields(args)
    grid: dict[str, list[Any]] = {"activation": args.activations}
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
    baseline = args.baseline or args.activations[0]
    if baseline not in args.activations:
        raise InputError(f"--baseline {baseline!r} must be one of --activations {','.join(args.activations)}")
    name = args.name or f"compare {', '.join(args.activations)} on {'/'.join(args.model)} / {'/'.join(args.dataset)}"
    return {"study": {"name": name, "seeds": args.seeds, "baseline": {"activation": baseline}},
            "base": base, "grid": grid}


def run(args: argparse.Namespace) -> int:
    from ..study import spec_from_dict

    if args.seeds < 1:
        raise InputError("--seeds must be >= 1 (use 2 or more to get confidence intervals)")
    spec = spec_from_dict(build_spec(args), where="rectlab compare")
    return execute(spec, args)


def execute(spec: Any, args: argparse.Namespace) -> int:
    """Run a spec with the execution flags, then print the table and write the report (or, with --dry-run,
    validate everything and say what would run)."""
    from ..report import collect, print_table, write_report
    from ..study import run_study
    from ..timings import phase

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
    from dataclasses import replace
    from pathlib import Path

    from ..study import plan_study, runs
    from ..study.lock import prepare_out_dir
    from ..study.numerics import current_numerics
    from ..study.validate import validate_runs

    if Path(out).exists():
        prepare_out_dir(out)  # a file or an unwritable directory is refused here too
    overrides = {k: options[k] for k in ("device", "data_dir") if options[k] is not None}
    if overrides:
        spec = replace(spec, base=spec.base.replace(**overrides))
    numerics = current_numerics(options["threads"], {r.config.device for r in runs(spec)})
    plan = plan_study(spec, out, extend=options["extend"], retry_failed=options["retry_failed"],
                      retry_diverged=options["retry_diverged"], numerics=numerics,
                      allow_numerics_change=options["allow_numerics_change"])
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
