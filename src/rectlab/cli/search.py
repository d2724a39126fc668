"""``rectlab search``: search for activation functions (Ramachandran et al. 2017), compare the winners."""

from __future__ import annotations

import argparse

from .common import add_execution_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="search compositions of unary/binary functions for an activation (Ramachandran et al. 2017)",
        description="Screen the candidates of a search space, score them by training a child network (one study per "
        "rung in OUT/rung<i>), then train the winners and the baselines with several seeds (OUT/final). Winners are "
        "activations by name: search:OUT/1 or search:<expression>. Re-running the same command resumes.",
    )
    p.add_argument("--preset", default="quick", choices=("smoke", "quick", "full"),
                   help="a scale of the shipped settings (rectlab/specs/activation-search.toml); default quick")
    p.add_argument("--config", default=None, help="a search TOML of your own (its [scales.PRESET] applies)")
    p.add_argument("--out", default=None, help="output folder (default runs/search-PRESET)")
    p.add_argument("--strategy", default=None, choices=("exhaustive", "random", "halving"),
                   help="override the settings' strategy (the paper's RL controller is not implemented)")
    p.add_argument("--candidates", type=int, default=None, help="override how many candidates to sample (0 = all)")
    p.add_argument("--top-k", type=int, default=None, help="override how many winners go to the final comparison")
    p.add_argument("--no-final", action="store_true", help="stop after ranking (no final comparison)")
    add_execution_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from .. import search
    from .common import console

    config = search.load_config(args.config or search.default_config(), scale=args.preset)
    overrides = {k: v for k, v in (("strategy", args.strategy), ("candidates", args.candidates),
                                   ("top_k", args.top_k)) if v is not None}
    if overrides:
        config = dataclasses.replace(config, **overrides)
    out = Path(args.out or f"runs/search-{args.preset}")
    con = console()
    result = search.run_search(config, out, final=not args.no_final, executor=args.executor, workers=args.workers,
                               device=args.device, data_dir=args.data_dir, progress=not args.no_progress,
                               console=con)
    con.print(f"[bold]winners[/] (of {len(result.ranking)} ranked; {out / 'search.json'}):")
    for rank, text in enumerate(result.winners, 1):
        swish = " [dim](a Swish)[/]" if result.is_swish(text) else ""
        con.print(f"  {rank}. {text}{swish}   use as --activations 'search:{out}/{rank}' or 'search:{text}'",
                  soft_wrap=True)
    if result.final_dir is not None:
        con.print(f"final comparison: {(result.final_dir / 'report.html').resolve()} ({result.seconds:.0f} s)")
    return 0
