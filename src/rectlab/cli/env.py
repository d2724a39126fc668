"""``rectlab env``: versions, devices, Triton, and where each dataset was found."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("env", help="show versions, device and the data found")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import platform

    import torch
    from rich.console import Console
    from rich.table import Table

    from .. import __version__
    from .. import data as rdata
    from ..activations.fused import triton_available

    con = Console()
    t = Table(show_header=False, box=None)
    t.add_row("rectlab", __version__)
    t.add_row("python", platform.python_version())
    t.add_row("torch", torch.__version__)
    t.add_row("cuda", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available")
    t.add_row("cpu", f"{platform.machine()}, {torch.get_num_threads()} threads")
    t.add_row("triton", "available" if triton_available() else "not installed")
    for name in rdata.names():
        where = rdata.find(name, data_dir=args.data_dir)
        if where:
            status = str(where)
        elif name == "imagefolder":
            status = "[dim]your own folders: pass --data-dir ROOT (with train/ and val/)[/]"
        else:
            status = "[yellow]not found[/] (downloaded on first use when a network exists)"
        t.add_row(f"data: {name}", status)
    con.print(t)
    return 0
