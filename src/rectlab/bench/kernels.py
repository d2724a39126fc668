"""``rectlab bench kernels``: activation forward and forward+backward time, side by side.

For every activation x dtype x size, three implementations are timed in one run:

* ``ours``: rectlab's module with ``backend="triton"`` (the fused kernels) on a GPU; on a CPU it is
  rectlab's plain-torch reference (``backend="torch"``) and is labelled ``ours(reference)``;
* ``eager``: the ``torch.nn`` module where PyTorch has one, else rectlab's plain-torch reference;
* ``compile``: ``torch.compile`` of the eager module (static shapes, compiled once per case).

Forward is timed under ``torch.no_grad()``; forward+backward runs ``torch.autograd.grad`` on the input
and the parameters (no gradient accumulation), or ``.backward()`` with ``--backward-mode backward``
(accumulation included, as in DESIGN.md's reference numbers). Each time is the median of ``--repeats``
after ``--warmup`` calls, measured with CUDA events on a GPU. Times are also given as a fraction of the
device's measured copy bandwidth (``y.copy_(x)`` on a large buffer; forward moves 2N elements,
forward+backward 5N) and as a ratio to ReLU of the same implementation. This is a benchmark: it
measures and prints, it asserts nothing.

Run as ``rectlab bench kernels`` or ``python -m rectlab.bench.kernels``.
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["add_arguments", "main", "measure_copy_bandwidth", "run"]

ALL_ACTIVATIONS = (
    "relu,leaky-relu,prelu-shared,prelu,rrelu,elu,celu,selu,gelu,gelu-tanh,silu,swish,swish-learnable,"
    "swish-channelwise,mish,softplus,smelu,helu,gcu"
)
CPU_ACTIVATIONS = "relu,prelu,gelu,mish,swish-learnable"
DESIGN_SHAPE = "128x64x112x112"

# torch.nn equivalents (channels -> module); the others use rectlab's plain-torch reference as "eager".
TORCH_MODULES: dict[str, Callable[[int], nn.Module]] = {
    "relu": lambda c: nn.ReLU(),
    "leaky-relu": lambda c: nn.LeakyReLU(0.01),
    "prelu-shared": lambda c: nn.PReLU(1, 0.25),
    "prelu": lambda c: nn.PReLU(c, 0.25),
    "rrelu": lambda c: nn.RReLU(1 / 8, 1 / 3),
    "elu": lambda c: nn.ELU(),
    "celu": lambda c: nn.CELU(),
    "selu": lambda c: nn.SELU(),
    "gelu": lambda c: nn.GELU(),
    "gelu-tanh": lambda c: nn.GELU(approximate="tanh"),
    "silu": lambda c: nn.SiLU(),
    "mish": lambda c: nn.Mish(),
    "softplus": lambda c: nn.Softplus(),
}
TRAINING_MODE = {"rrelu"}  # timed in training mode (random slopes); the others in eval mode
CHANNELS = 64
MODES = ("fwd", "fwd+bwd")
ELEMENTS_MOVED = {"fwd": 2, "fwd+bwd": 5}


@dataclass
class Row:
    """One measurement."""

    device: str
    activation: str
    dtype: str
    shape: str
    numel: int
    mode: str
    impl: str
    ms: float
    ms_min: float
    gb_per_s: float
    frac_copy_bw: float
    ratio_to_relu: float = math.nan
    ratio_to_eager: float = math.nan


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rectlab bench kernels``."""
    p.add_argument("--activations", default=None,
                   help=f"comma-separated names (default: all on GPU, {CPU_ACTIVATIONS} on CPU)")
    p.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16, fp16")
    p.add_argument("--sizes", default=None,
                   help="element counts, e.g. 64K,1M,16M,100M (default: those on GPU, 64K,1M on CPU); inputs are "
                        "NCHW (B, 64, 32, 32) with B chosen to match")  # fmt: skip
    p.add_argument("--shape", default=None,
                   help=f"an extra NCHW shape such as {DESIGN_SHAPE} (the default on GPU; 'none' for no extra shape)")
    p.add_argument("--channels-last", action="store_true", help="time 4-D inputs in channels_last memory format")
    p.add_argument("--impls", default="ours,eager,compile", help="comma-separated subset of ours, eager, compile")
    p.add_argument("--backward-mode", choices=("grad", "backward"), default="grad",
                   help="forward+backward with torch.autograd.grad (default) or .backward() (grad accumulation)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls, median reported (default 50 GPU / 5 CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 10 GPU / 2 CPU)")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's; 1 gives steadier numbers on a shared machine)")
    p.add_argument("--copy-mib", type=int, default=None,
                   help="buffer size of the copy-bandwidth measurement in MiB (default 1024 GPU / 256 CPU)")
    p.add_argument("--csv", default=None, help="also write every measurement to this CSV file")


# ----------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    return _times_ms(fn, device, warmup, repeats)[0]


def _times_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> tuple[float, float]:
    """(median, min) of ``repeats`` timed calls after ``warmup`` calls, in milliseconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    if device.type == "cuda":
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def measure_copy_bandwidth(device: torch.device, nbytes: int | None = None, repeats: int = 20) -> float:
    """The device's copy bandwidth in GB/s: ``y.copy_(x)`` on a large buffer (bytes read + written)."""
    if nbytes is None:
        nbytes = (1 << 30) if device.type == "cuda" else (256 << 20)
    src = torch.empty(nbytes // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = _median_ms(lambda: dst.copy_(src), device, warmup=3, repeats=repeats)
    return 2 * nbytes / (ms * 1e-3) / 1e9


def _module(name: str, impl: str, channels: int, device: torch.device, dtype: torch.dtype) -> nn.Module:
    from .. import activations

    if impl == "ours":
        m = activations.create(name, channels=channels, backend="triton" if device.type == "cuda" else "torch")
    elif name in TORCH_MODULES:
        m = TORCH_MODULES[name](channels)
    else:
        m = activations.create(name, channels=channels, backend="torch")
    m = m.to(device=device, dtype=dtype)
    return m.train() if name in TRAINING_MODE else m.eval()


def _time_case(
    module: nn.Module, x: torch.Tensor, device: torch.device, warmup: int, repeats: int, backward_mode: str
) -> dict[str, tuple[float, float]]:
    params = [p for p in module.parameters() if p.requires_grad]
    xg = x.detach().requires_grad_(True)
    g = torch.randn_like(x)

    def fwd() -> None:
        with torch.no_grad():
            module(x)

    def fwd_bwd_grad() -> None:
        torch.autograd.grad(module(xg), [xg, *params], g)

    def fwd_bwd_backward() -> None:
        module(xg).backward(g)

    out = {"fwd": _times_ms(fwd, device, warmup, repeats)}
    step = fwd_bwd_grad if backward_mode == "grad" else fwd_bwd_backward
    out["fwd+bwd"] = _times_ms(step, device, warmup, repeats)
    return out


# ----------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------


def _parse_count(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def _shapes(args: argparse.Namespace, on_gpu: bool) -> list[tuple[str, tuple[int, ...]]]:
    sizes = args.sizes or ("64K,1M,16M,100M" if on_gpu else "64K,1M")
    shapes = []
    for s in sizes.split(","):
        n = _parse_count(s)
        batch = max(1, round(n / (CHANNELS * 32 * 32)))
        shapes.append((s.strip(), (batch, CHANNELS, 32, 32)))
    extra = args.shape if args.shape is not None else (DESIGN_SHAPE if on_gpu else "none")
    if extra.lower() != "none":
        shapes.append((extra, tuple(int(v) for v in extra.lower().split("x"))))
    return shapes


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print a table (and write ``--csv``). Returns 0."""
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))  # fmt: skip
    on_gpu = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [a.strip() for a in (args.activations or (ALL_ACTIVATIONS if on_gpu else CPU_ACTIVATIONS)).split(",")]
    if "relu" not in names:
        names.insert(0, "relu")  # the ratios are to ReLU
    impls = [i.strip() for i in args.impls.split(",")]
    unknown = set(impls) - {"ours", "eager", "compile"}
    if unknown:
        raise ValueError(f"unknown --impls {sorted(unknown)}; choose from ours, eager, compile")
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    repeats = args.repeats or (50 if on_gpu else 5)
    warmup = args.warmup if args.warmup is not None else (10 if on_gpu else 2)

    device_name = torch.cuda.get_device_name(device) if on_gpu else _cpu_name()
    copy_mib = args.copy_mib or (1024 if on_gpu else 256)
    copy_bw = measure_copy_bandwidth(device, copy_mib << 20)
    ours_label = "ours" if on_gpu else "ours(reference)"
    print(f"device: {device_name}")
    print(f"torch {torch.__version__}, triton {_triton_version()}, python {platform.python_version()}")
    print(f"copy bandwidth (y.copy_(x) on {copy_mib} MiB): {copy_bw:.1f} GB/s")
    print(f"forward+backward: {'torch.autograd.grad' if args.backward_mode == 'grad' else '.backward()'}; "
          f"median of {repeats} after {warmup} warmup; channels_last={args.channels_last}")  # fmt: skip
    print(f"{ours_label}: rectlab {'fused Triton kernels' if on_gpu else 'plain-torch reference'}; "
          "eager: torch.nn where it exists, else rectlab's plain-torch reference; compile: torch.compile(eager)\n")

    rows: list[Row] = []
    for name in names:
        for dt in dtypes:
            dtype = DTYPES[dt]
            for label, shape in _shapes(args, on_gpu):
                x = torch.randn(shape, device=device, dtype=dtype)
                if args.channels_last and x.dim() == 4:
                    x = x.to(memory_format=torch.channels_last)
                for impl in impls:
                    times = _run_impl(name, impl, x, device, dtype, warmup, repeats, args.backward_mode)
                    for mode in MODES:
                        ms, ms_min = times.get(mode, (math.nan, math.nan))
                        gbs = ELEMENTS_MOVED[mode] * x.numel() * x.element_size() / (ms * 1e-3) / 1e9
                        lab = ours_label if impl == "ours" else impl
                        row = Row(device_name, name, dt, label, x.numel(), mode, lab, ms, ms_min, gbs, gbs / copy_bw)
                        rows.append(row)
                del x
                if on_gpu:
                    torch.cuda.empty_cache()
    _add_ratios(rows)
    _print_table(rows, impls, ours_label)
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(asdict(rows[0]).keys()))
            w.writeheader()
            w.writerows(asdict(r) for r in rows)
        print(f"\nwrote {len(rows)} rows to {path}")
    return 0


def _run_impl(
    name: str, impl: str, x: torch.Tensor, device: torch.device, dtype: torch.dtype, warmup: int, repeats: int,
    backward_mode: str,
) -> dict[str, tuple[float, float]]:  # fmt: skip
    try:
        module = _module(name, "ours" if impl == "ours" else "eager", x.shape[1], device, dtype)
        if impl == "compile":
            torch._dynamo.reset()  # one fresh, static compilation per case (no recompilation limit)
            module = torch.compile(module, dynamic=False)
        return _time_case(module, x, device, max(warmup, 1), repeats, backward_mode)
    except Exception as e:  # a benchmark reports and goes on
        print(f"  {name} {impl} {tuple(x.shape)} {dtype}: failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return {}


def _add_ratios(rows: list[Row]) -> None:
    relu = {(r.impl, r.dtype, r.shape, r.mode): r.ms for r in rows if r.activation == "relu"}
    eager = {(r.activation, r.dtype, r.shape, r.mode): r.ms for r in rows if r.impl == "eager"}
    for r in rows:
        r.ratio_to_relu = r.ms / relu.get((r.impl, r.dtype, r.shape, r.mode), math.nan)
        r.ratio_to_eager = r.ms / eager.get((r.activation, r.dtype, r.shape, r.mode), math.nan)


def _print_table(rows: list[Row], impls: list[str], ours_label: str) -> None:
    labels = [ours_label if i == "ours" else i for i in impls]
    by_key: dict[tuple, dict[str, Row]] = {}
    for r in rows:
        by_key.setdefault((r.activation, r.dtype, r.shape, r.mode), {})[r.impl] = r
    head = f"{'activation':18s} {'dtype':5s} {'shape':15s} {'mode':8s}"
    for lab in labels:
        head += f" | {lab[:15]:>15s} ms  %copy  xReLU"
    if "ours" in impls and "eager" in impls:
        head += " | ours/eager"
    print(head)
    print("-" * len(head))
    for (act, dt, shape, mode), cells in by_key.items():
        line = f"{act:18s} {dt:5s} {shape:15s} {mode:8s}"
        for lab in labels:
            r = cells.get(lab)
            if r is None or math.isnan(r.ms):
                line += f" | {'n/a':>18s} {'':5s} {'':6s}"
            else:
                line += f" | {r.ms:18.4f} {100 * r.frac_copy_bw:5.0f}% {r.ratio_to_relu:5.2f}x"
        if "ours" in impls and "eager" in impls:
            ours = cells.get(ours_label)
            line += f" | {ours.ratio_to_eager:9.2f}x" if ours is not None else " | n/a"
        print(line)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _triton_version() -> str:
    try:
        import triton

        return triton.__version__
    except ImportError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m rectlab.bench.kernels``."""
    parser = argparse.ArgumentParser(prog="python -m rectlab.bench.kernels", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
