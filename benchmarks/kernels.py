"""Activation forward and forward+backward time, side by side.

For every activation x dtype x size, up to four implementations are timed in one run:

* ``ours``: rectlab's module with its fast path: ``backend="triton"`` (the fused kernels) on a GPU,
  ``backend="auto"`` on a CPU (the CPU paths of :mod:`rectlab.activations.cpu`, or the spec where the spec
  is PyTorch's own op);
* ``spec``: rectlab's module with ``backend="torch"``, the plain-torch reference;
* ``eager``: PyTorch's own ``torch.nn`` module, where PyTorch has one (else the column is empty);
* ``compile``: ``torch.compile`` of the spec module (static shapes, compiled once per case).

The implementations of one case are timed in interleaved rounds (one call of each per round), so that a
change of machine load hits them alike. Forward is timed under ``torch.no_grad()``; forward+backward runs
``torch.autograd.grad`` on the input and the parameters (no gradient accumulation), or ``.backward()``
with ``--backward-mode backward`` (gradient accumulation included). Each time
is the median (GPU) or minimum (CPU, where other jobs share the cores; ``--stat``) of ``--repeats`` calls
after ``--warmup`` calls, measured with CUDA events on a GPU. Times are also given as a fraction of the
device's measured copy bandwidth (``y.copy_(x)`` on a large buffer; forward moves 2N elements,
forward+backward 5N) and as a ratio to ReLU of the same implementation. This is a benchmark: it measures
and prints, it asserts nothing.

Run as ``python benchmarks/kernels.py [options]`` from a checkout (``--help`` lists them).
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

from rectlab import activations
from rectlab.gpucheck import TORCH_MODULES  # PyTorch's own module of each activation

__all__ = ["add_arguments", "main", "measure_copy_bandwidth", "run"]

ALL_ACTIVATIONS = (
    "relu,leaky-relu,prelu-shared,prelu,rrelu,elu,celu,selu,gelu,gelu-tanh,silu,swish,swish-learnable,"
    "swish-channelwise,mish,softplus,smelu,helu,gcu"
)
LARGE_SHAPE = "128x64x112x112"
"""A 112x112 stage of an ImageNet-sized CNN (batch 128, 64 channels): the GPU default beside the sizes."""
CPU_SHAPES = "128x16x28x28,128x32x14x14,256x512"
"""The study shapes: the small CNN's activations on 28x28 images (two stages) and an MLP's hidden layer."""

TRAINING_MODE = {"rrelu"}  # timed in training mode (random slopes); the others in eval mode
CHANNELS = 64
MODES = ("fwd", "fwd+bwd")
IMPLS = ("ours", "spec", "eager", "compile")
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
    ratio_to_spec: float = math.nan
    ratio_to_torch_relu: float = math.nan


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``benchmarks/kernels.py``."""
    p.add_argument("--activations", default=None, help="comma-separated names (default: all)")
    p.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16, fp16")
    p.add_argument("--sizes", default=None,
                   help="element counts, e.g. 64K,1M,16M,100M (default: those on GPU, 1M,16M on CPU); inputs are "
                        "NCHW (B, 64, 32, 32) with B chosen to match; 'none' for no sizes")  # fmt: skip
    p.add_argument("--shape", "--shapes", dest="shape", default=None,
                   help=f"extra shapes, comma-separated, such as {LARGE_SHAPE} (default on GPU) or "
                        f"{CPU_SHAPES} (study shapes, default on CPU); channels on dim 1; 'none': none")  # fmt: skip
    p.add_argument("--channels-last", action="store_true", help="time 4-D inputs in channels_last memory format")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {', '.join(IMPLS)}")
    p.add_argument(
        "--backward-mode",
        choices=("grad", "backward"),
        default="grad",
        help="forward+backward with torch.autograd.grad (default) or .backward() (grad accumulation)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed calls per implementation (default 50 GPU / 12 CPU, in blocks of {CPU_BLOCK})",
    )
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 10 GPU / 2 CPU)")
    p.add_argument("--stat", choices=("median", "min"), default=None,
                   help="which of the timed calls to report (default: median on GPU, min on CPU, where other jobs "
                        "share the cores; the CSV has both)")  # fmt: skip
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="CPU only: 'cpu' times the calling thread's CPU time (user + system, page faults included), "
                        "which other jobs on the machine do not inflate; needs --threads 1")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's; 1 gives steadier numbers on a shared machine and "
                        "is what a single-threaded study worker uses)")  # fmt: skip
    p.add_argument(
        "--copy-mib",
        type=int,
        default=None,
        help="buffer size of the copy-bandwidth measurement in MiB (default 1024 GPU / 256 CPU)",
    )
    p.add_argument("--csv", default=None, help="also write every measurement to this CSV file")


# ----------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once_ms(fn: Callable[[], object], device: torch.device, clock: Callable[[], float]) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = clock()
    fn()
    return (clock() - t0) * 1e3


CPU_BLOCK = 3
"""On a CPU, timed calls come in blocks of this many consecutive calls of one implementation."""


def _interleaved_ms(
    fns: dict[str, Callable[[], object]],
    device: torch.device,
    warmup: int,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, tuple[float, float]]:
    """``{name: (median, min)}`` in ms of ``repeats`` timed calls of each function, after ``warmup`` calls
    of each, in interleaved rounds so that a change of machine load hits all functions alike.

    On a GPU a round times every function once. On a CPU a round gives each function one untimed call and
    then a block of :data:`CPU_BLOCK` timed calls: the C allocator hands memory back to the system after a
    function with large temporaries, and a function timed right after it would pay the page faults of its
    fresh buffers; within its block it pays for its own only, as it would in a training loop.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    block = CPU_BLOCK if device.type == "cpu" and len(fns) > 1 else 1
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(math.ceil(repeats / block)):
        for name, fn in fns.items():
            if block > 1:
                fn()
            times[name] += [_time_once_ms(fn, device, clock) for _ in range(block)]
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def measure_copy_bandwidth(device: torch.device, nbytes: int | None = None, repeats: int = 20) -> float:
    """The device's copy bandwidth in GB/s: ``y.copy_(x)`` on a large buffer (bytes read + written)."""
    if nbytes is None:
        nbytes = (1 << 30) if device.type == "cuda" else (256 << 20)
    src = torch.empty(nbytes // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = _interleaved_ms({"copy": lambda: dst.copy_(src)}, device, warmup=3, repeats=repeats)["copy"][0]
    return 2 * nbytes / (ms * 1e-3) / 1e9


def _module(name: str, impl: str, channels: int, device: torch.device, dtype: torch.dtype) -> nn.Module | None:
    """The module ``impl`` times for ``name``; ``None`` where PyTorch has no module of its own."""
    if impl == "eager":
        if name not in TORCH_MODULES:
            return None
        m = TORCH_MODULES[name](channels)
    elif impl == "ours":
        m = activations.create(name, channels=channels, backend="triton" if device.type == "cuda" else "auto")
    else:  # spec, and compile (of the spec)
        m = activations.create(name, channels=channels, backend="torch")
    m = m.to(device=device, dtype=dtype)
    m = m.train() if name in TRAINING_MODE else m.eval()
    if impl == "compile":
        torch._dynamo.reset()  # one fresh, static compilation per case (no recompilation limit)
        m = torch.compile(m, dynamic=False)
    return m


def _steps(module: nn.Module, x: torch.Tensor, backward_mode: str) -> dict[str, Callable[[], object]]:
    """The forward and the forward+backward step of ``module`` on ``x``."""
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

    return {"fwd": fwd, "fwd+bwd": fwd_bwd_grad if backward_mode == "grad" else fwd_bwd_backward}


def _time_case(
    name: str,
    impls: list[str],
    x: torch.Tensor,
    warmup: int,
    repeats: int,
    backward_mode: str,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[tuple[str, str], tuple[float, float]]:
    """``{(impl, mode): (median, min)}`` for one activation on one input; missing where an impl fails or
    does not exist. The implementations are interleaved per mode."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    steps: dict[str, dict[str, Callable[[], object]]] = {}
    for impl in impls:
        try:
            module = _module(name, impl, x.shape[1] if x.dim() > 1 else 1, x.device, x.dtype)
            if module is None:
                continue
            impl_steps = _steps(module, x, backward_mode)
            for step in impl_steps.values():
                step()  # compile here, and fail here rather than in the timed rounds
            steps[impl] = impl_steps
        except Exception as e:  # a benchmark reports and goes on
            print(f"  {name} {impl} {tuple(x.shape)} {x.dtype}: failed: {type(e).__name__}: "
                  f"{str(e).splitlines()[0][:200] if str(e) else ''}")  # fmt: skip
    for mode in MODES:
        fns = {impl: s[mode] for impl, s in steps.items()}
        for impl, t in _interleaved_ms(fns, x.device, warmup, repeats, clock).items():
            out[(impl, mode)] = t
    return out


# ----------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------


def _parse_count(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise SystemExit(f"--shape: {text!r} is not a shape; write it as 128x16x28x28 (sizes joined by 'x')")
    return shape


def _shapes(args: argparse.Namespace, on_gpu: bool) -> list[tuple[str, tuple[int, ...]]]:
    sizes = args.sizes or ("64K,1M,16M,100M" if on_gpu else "1M,16M")
    shapes = []
    if sizes.lower() != "none":
        for s in sizes.split(","):
            n = _parse_count(s)
            batch = max(1, round(n / (CHANNELS * 32 * 32)))
            shapes.append((s.strip(), (batch, CHANNELS, 32, 32)))
    extra = args.shape if args.shape is not None else (LARGE_SHAPE if on_gpu else CPU_SHAPES)
    if extra.lower() != "none":
        shapes += [(e.strip(), _parse_shape(e.strip())) for e in extra.split(",")]
    return shapes


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print a table (and write ``--csv``). Returns 0."""
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))  # fmt: skip
    on_gpu = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter
    if args.clock == "cpu":
        if on_gpu or torch.get_num_threads() != 1:
            raise SystemExit("--clock cpu times one CPU thread: use it with --device cpu --threads 1")
        clock = time.thread_time
    names = [a.strip() for a in (args.activations or ALL_ACTIVATIONS).split(",")]
    if "relu" not in names:
        names.insert(0, "relu")  # the ratios are to ReLU
    for name in names:
        activations.get(name)  # an unknown name fails here, with the list of known ones
    shapes = _shapes(args, on_gpu)
    impls = [i.strip() for i in args.impls.split(",")]
    unknown = set(impls) - set(IMPLS)
    if unknown:
        raise SystemExit(f"unknown --impls {sorted(unknown)}; choose from {', '.join(IMPLS)}")
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    if set(dtypes) - set(DTYPES):
        raise SystemExit(f"unknown --dtypes {sorted(set(dtypes) - set(DTYPES))}; choose from {', '.join(DTYPES)}")
    repeats = args.repeats or (50 if on_gpu else 12)
    warmup = args.warmup if args.warmup is not None else (10 if on_gpu else 2)
    stat = args.stat or ("median" if on_gpu else "min")

    device_name = torch.cuda.get_device_name(device) if on_gpu else _cpu_name()
    copy_mib = args.copy_mib or (1024 if on_gpu else 256)
    copy_bw = measure_copy_bandwidth(device, copy_mib << 20)
    print(f"device: {device_name}")
    print(f"torch {torch.__version__}, triton {_triton_version()}, python {platform.python_version()}")
    print(f"copy bandwidth (y.copy_(x) on {copy_mib} MiB): {copy_bw:.1f} GB/s")
    step = "torch.autograd.grad" if args.backward_mode == "grad" else ".backward()"
    print(
        f"forward+backward: {step}; {stat} of {repeats} timed calls in interleaved rounds after {warmup} warmup; "
        f"channels_last={args.channels_last}; clock: {args.clock}"
    )
    print(
        "xReLU: ratio to PyTorch's nn.ReLU (the eager column's relu; without it, the same implementation's) "
        "of the same dtype, shape and mode"
    )
    print(
        f"ours: rectlab {'backend=triton (fused kernels)' if on_gpu else 'backend=auto (CPU paths)'}; "
        "spec: rectlab backend=torch; eager: PyTorch's own torch.nn module; compile: torch.compile(spec)\n"
    )

    rows: list[Row] = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}", file=sys.stderr, flush=True)  # progress; the table comes at the end
        for dt in dtypes:
            dtype = DTYPES[dt]
            for label, shape in shapes:
                x = torch.randn(shape, device=device, dtype=dtype)
                if args.channels_last and x.dim() == 4:
                    x = x.to(memory_format=torch.channels_last)
                times = _time_case(name, impls, x, max(warmup, 1), repeats, args.backward_mode, clock)
                for (impl, mode), (ms_median, ms_min) in times.items():
                    ms = ms_median if stat == "median" else ms_min
                    gbs = ELEMENTS_MOVED[mode] * x.numel() * x.element_size() / (ms * 1e-3) / 1e9
                    row = Row(device_name, name, dt, label, x.numel(), mode, impl, ms, ms_min, gbs, gbs / copy_bw)
                    rows.append(row)
                del x
                if on_gpu:
                    torch.cuda.empty_cache()
    _add_ratios(rows)
    _print_table(rows, impls)
    if args.csv and rows:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(asdict(rows[0]).keys()))
            w.writeheader()
            w.writerows(asdict(r) for r in rows)
        print(f"\nwrote {len(rows)} rows to {path}")
    return 0


def _add_ratios(rows: list[Row]) -> None:
    """Ratios, all of the same dtype, shape and mode: to the same implementation's ReLU (``ratio_to_relu``),
    to PyTorch's ``nn.ReLU`` (``ratio_to_torch_relu``; the same as the first where ``eager`` was not timed),
    to PyTorch's own module and to the spec."""
    by_impl = {(r.impl, r.activation, r.dtype, r.shape, r.mode): r.ms for r in rows}
    for r in rows:
        r.ratio_to_relu = r.ms / by_impl.get((r.impl, "relu", r.dtype, r.shape, r.mode), math.nan)
        torch_relu = by_impl.get(("eager", "relu", r.dtype, r.shape, r.mode))
        r.ratio_to_torch_relu = r.ratio_to_relu if torch_relu is None else r.ms / torch_relu
        r.ratio_to_eager = r.ms / by_impl.get(("eager", r.activation, r.dtype, r.shape, r.mode), math.nan)
        r.ratio_to_spec = r.ms / by_impl.get(("spec", r.activation, r.dtype, r.shape, r.mode), math.nan)


def _print_table(rows: list[Row], impls: list[str]) -> None:
    by_key: dict[tuple, dict[str, Row]] = {}
    for r in rows:
        by_key.setdefault((r.activation, r.dtype, r.shape, r.mode), {})[r.impl] = r
    head = f"{'activation':18s} {'dtype':5s} {'shape':15s} {'mode':8s}"
    for impl in impls:
        head += f" | {impl:>9s} ms  %copy  xReLU"
    ratios = [other for other in ("eager", "spec") if "ours" in impls and other in impls]
    for other in ratios:
        head += f" | ours/{other:5s}"
    print(head)
    print("-" * len(head))
    for (act, dt, shape, mode), cells in by_key.items():
        line = f"{act:18s} {dt:5s} {shape:15s} {mode:8s}"
        for impl in impls:
            r = cells.get(impl)
            if r is None or math.isnan(r.ms):
                line += f" | {'-':>12s} {'':5s} {'':6s}"
            else:
                line += f" | {r.ms:12.4f} {100 * r.frac_copy_bw:5.0f}% {r.ratio_to_torch_relu:5.2f}x"
        ours = cells.get("ours")
        for other in ratios:
            ratio = ours.ratio_to_eager if other == "eager" else ours.ratio_to_spec
            line += f" | {ratio:9.2f}x" if ours is not None and not math.isnan(ratio) else f" | {'-':>10s}"
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
    """Entry point of ``python benchmarks/kernels.py``."""
    parser = argparse.ArgumentParser(prog="python benchmarks/kernels.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
