"""``rectlab env``: versions, devices, Triton, which implementation each activation runs and why, and the data
found (the parser is in ``cli.parsers``)."""

from __future__ import annotations

import argparse
import os
import platform

import torch
from rich.console import Console
from rich.table import Table

from .. import __version__
from .. import data as rdata
from ..activations import selfcheck
from ..activations.cpu import CPU_OPS
from ..activations.fused import triton_available
from ..kernels import interpret_requested


def run(args: argparse.Namespace) -> int:
    con = Console()
    t = Table(show_header=False, box=None)
    t.add_row("rectlab", __version__)
    t.add_row("python", platform.python_version())
    t.add_row("torch", torch.__version__)
    cuda = torch.cuda.is_available()
    t.add_row("cuda", torch.cuda.get_device_name(0) if cuda else "not available")
    t.add_row("cpu", f"{platform.machine()}, {torch.get_num_threads()} threads")
    t.add_row("triton", _triton_version() if triton_available() else "not installed")
    t.add_row(selfcheck.BACKEND_ENV, os.environ.get(selfcheck.BACKEND_ENV) or "[dim]unset (auto)[/]")
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

    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    failed = 0
    if args.check:
        check_device = device if cuda else (torch.device("cpu") if interpret_requested() else None)
        if check_device is None or not triton_available():
            con.print("[yellow]--check: nothing to check[/]: the kernels need a CUDA GPU and triton (or "
                      "TRITON_INTERPRET=1 to check them in Triton's CPU interpreter)")  # fmt: skip
        else:
            results = selfcheck.check_all(check_device)
            ct = Table(title=f"self-check on {check_device}", box=None)
            for col in ("op", "dtype", "layout", "result", "seconds"):
                ct.add_column(col)
            for r in results:
                verdict = "[green]passed[/]" if r.passed else f"[red]FAILED[/] {r.problems[0]}"
                ct.add_row(r.op, r.dtype.replace("torch.", ""), r.layout, verdict, f"{r.seconds:.2f}")
                failed += not r.passed
            con.print(ct)
    devices = [device] if device.type == "cpu" else [device, torch.device("cpu")]
    ops = sorted(set(selfcheck.ops()) | CPU_OPS)
    for on in devices:
        bt = Table(title=f"backend='auto' on {on}", box=None)
        bt.add_column("op")
        bt.add_column("runs")
        bt.add_column("why")
        for op in ops:
            backend, why = selfcheck.explain(op, on)
            bt.add_row(op, backend, why)
        con.print(bt)
    return 1 if failed else 0


def _triton_version() -> str:
    import triton  # optional (GPU kernels); only asked when it is installed

    return triton.__version__
