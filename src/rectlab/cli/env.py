"""``rectlab env``: versions, devices, Triton, which backend each fused op uses and why, and the data found."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "env", help="show versions, device, fused-kernel backends and the data found",
        description="Show versions, the device, which implementation each activation uses with backend='auto' "
        "(and why), and where each dataset was found. --check runs the fused kernels' self-check now.",
    )  # fmt: skip
    p.add_argument("--data-dir", default=None)
    p.add_argument("--check", action="store_true",
                   help="self-check every fused kernel now (fp32 and bf16, NCHW and channels_last) on the GPU, "
                        "or on the CPU in Triton's interpreter when TRITON_INTERPRET=1")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import platform

    import torch
    from rich.console import Console
    from rich.table import Table

    from .. import __version__
    from .. import data as rdata
    from ..activations import selfcheck
    from ..activations.fused import triton_available
    from ..kernels import interpret_requested

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
    bt = Table(title=f"backend='auto' on {device}", box=None)
    bt.add_column("op")
    bt.add_column("runs")
    bt.add_column("why")
    for op in selfcheck.ops():
        backend, why = selfcheck.explain(op, device)
        bt.add_row(op, backend, why)
    con.print(bt)
    return 1 if failed else 0


def _triton_version() -> str:
    import triton

    return triton.__version__
