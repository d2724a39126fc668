"""``rectlab search``: search for activation functions (Ramachandran et al. 2017), compare the winners (the
parser is in ``cli.parsers``)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .. import search
from ..activations import split_specs
from .common import console, trackers


def run(args: argparse.Namespace) -> int:
    config = search.load_config(args.config or search.default_config(), scale=args.preset)
    overrides = {
        k: v
        for k, v in (("strategy", args.strategy), ("candidates", args.candidates), ("top_k", args.top_k))
        if v is not None
    }
    if args.baselines is not None:
        overrides["baselines"] = tuple(split_specs(args.baselines))
    if overrides:
        config = dataclasses.replace(config, **overrides)
    out = Path(args.out or f"runs/search-{args.preset}")
    con = console()
    result = search.run_search(
        config,
        out,
        final=not args.no_final,
        executor=args.executor,
        workers=args.workers,
        device=args.device,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        console=con,
        trackers=trackers(args),
    )
    con.print(f"[bold]winners[/] (of {len(result.ranking)} ranked; {out / 'search.json'}):")
    for rank, text in enumerate(result.winners, 1):
        swish = " [dim](a Swish)[/]" if result.is_swish(text) else ""
        con.print(
            f"  {rank}. {text}{swish}   use as --activations 'search:{out}/{rank}' or 'search:{text}'", soft_wrap=True
        )
    if result.final_dir is not None:
        con.print(f"final comparison: {(result.final_dir / 'report.html').resolve()} ({result.seconds:.0f} s)")
    return 0
