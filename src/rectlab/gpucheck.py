"""``rectlab bench gpu``: check rectlab on this machine's GPU in one command, from an installed package.

Three stages, each timed and recorded even when it fails:

1. ``selfcheck``: every fused kernel against the plain-torch spec (`rectlab.activations.selfcheck`), in
   float32 and bfloat16, NCHW and channels_last;
2. ``kernels``: forward+backward time of every activation that has a fused kernel, rectlab's module
   (``backend="triton"``) beside PyTorch's own ``torch.nn`` module where PyTorch has one, in float32 and
   bfloat16, NCHW and channels_last, as a fraction of the device's copy bandwidth (forward+backward moves 5
   elements per input element);
3. ``train``: training-step images/s of ResNet-20 with ReLU, PReLU and GELU on CIFAR-shaped batches (bf16
   autocast, channels_last), rectlab's modules beside torch.nn's, as a ratio to ReLU.

``args`` of `run` are the command's options: ``device`` (auto, cuda, cuda:N or cpu), ``out`` (the folder of
the reports) and ``skip`` (comma-separated stages). The results are printed and written to ``gpu-report.md``
and ``gpu-report.json``. The command exits with 1 when a stage fails (a kernel that fails its self-check, an
error). Without a GPU, ``--device cpu`` runs a reduced form (two ops in Triton's interpreter, tiny sizes) that
exercises the command itself; its figures say nothing about speed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import statistics
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__, activations, models
from .activations import fused, selfcheck
from .errors import InputError
from .training.loop import describe_device, resolve_device

__all__ = [
    "STAGES",
    "TORCH_MODULES",
    "Plan",
    "copy_bandwidth",
    "environment",
    "json_safe",
    "render_markdown",
    "run",
    "stage_kernels",
    "stage_selfcheck",
    "stage_train",
]

STAGES = ("selfcheck", "kernels", "train")

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
    "swish": lambda c: nn.SiLU(),  # rectlab's default Swish has beta = 1, which is SiLU
    "mish": lambda c: nn.Mish(),
    "softplus": lambda c: nn.Softplus(),
}
"""PyTorch's own module for each rectlab activation that has one (``channels -> module``), with rectlab's
default parameters."""

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
LAYOUTS = ("nchw", "channels_last")


@dataclass(frozen=True)
class Plan:
    """What each stage runs: the GPU plan, or the reduced CPU plan."""

    selfcheck_ops: tuple[str, ...] | None  # None: every op with a fused kernel
    kernel_activations: tuple[str, ...] | None  # None: every activation with a fused kernel
    kernel_numel: int
    kernel_repeats: int
    kernel_warmup: int
    copy_mib: int
    train_model: str
    train_batch: int
    train_image: int
    train_steps: int
    train_warmup: int


GPU_PLAN = Plan(None, None, 16 << 20, 20, 5, 1024, "resnet20", 256, 32, 20, 5)
CPU_PLAN = Plan(("relu", "prelu"), ("relu", "prelu"), 4096, 2, 0, 8, "small-cnn", 8, 16, 1, 0)
TRAIN_ACTIVATIONS = ("relu", "prelu", "gelu")


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and the device, as recorded at the top of the report."""
    env: dict[str, Any] = {
        "device": describe_device(device), "rectlab": __version__, "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "triton": _triton_version(), "cuda": torch.version.cuda or "none",
        selfcheck.BACKEND_ENV: os.environ.get(selfcheck.BACKEND_ENV, ""),
    }  # fmt: skip
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["capability"] = f"{props.major}.{props.minor}"
    return env


def _triton_version() -> str:
    try:
        import triton  # optional: only for its version
    except ImportError:
        return "not installed"
    return str(triton.__version__)


@contextlib.contextmanager
def _interpreter_if(cpu: bool) -> Iterator[None]:
    """Triton's interpreter for the duration, on a CPU run (kernels are rebuilt for the mode at each call)."""
    old = os.environ.get("TRITON_INTERPRET")
    if cpu:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if cpu:
            if old is None:
                os.environ.pop("TRITON_INTERPRET", None)
            else:
                os.environ["TRITON_INTERPRET"] = old


# -- stages ----------------------------------------------------------------------------------------------


def stage_selfcheck(plan: Plan, device: torch.device) -> dict[str, Any]:
    """The fused kernels' self-check of ``plan.selfcheck_ops`` (every op: None), fp32 and bf16, both layouts
    (float32 only on the CPU, where Triton's interpreter runs them)."""
    if not fused.triton_available():
        return {"status": "skipped", "reason": "triton is not installed (pip install triton)"}
    dtypes = (torch.float32, torch.bfloat16) if device.type == "cuda" else (torch.float32,)
    with _interpreter_if(device.type != "cuda"):
        results = selfcheck.check_all(device, dtypes, op_names=plan.selfcheck_ops)
    rows = [{"op": r.op, "dtype": r.dtype.replace("torch.", ""), "layout": r.layout, "passed": r.passed,
             "problems": list(r.problems), "seconds": round(r.seconds, 3)} for r in results]  # fmt: skip
    return {"status": "passed" if all(r["passed"] for r in rows) else "failed", "results": rows,
            "interpreter": device.type != "cuda"}  # fmt: skip


def _fused_activations() -> list[str]:
    """The registered activations whose module runs a fused kernel."""
    return [n for n in activations.names() if getattr(activations.get(n), "op", "") in selfcheck.ops()]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(max(repeats, 1)):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def copy_bandwidth(device: torch.device, mib: int) -> float:
    """The device's copy bandwidth in GB/s: ``y.copy_(x)`` on a ``mib`` MiB buffer (bytes read + written)."""
    src = torch.empty((mib << 20) // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = _median_ms(lambda: dst.copy_(src), device, warmup=3, repeats=20)
    return 2 * src.numel() * 4 / (ms * 1e-3) / 1e9


def _fwd_bwd(module: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    params = [p for p in module.parameters() if p.requires_grad]
    xg = x.detach().requires_grad_(True)
    g = torch.randn_like(x)
    return lambda: torch.autograd.grad(module(xg), [xg, *params], g)


def stage_kernels(plan: Plan, device: torch.device) -> dict[str, Any]:
    """Forward+backward ms of rectlab's fused module and PyTorch's own, per activation, dtype and layout."""
    names = list(plan.kernel_activations or _fused_activations())
    backend = "triton" if device.type == "cuda" else "auto"  # the CPU form: the CPU paths, not the interpreter
    bandwidth = copy_bandwidth(device, plan.copy_mib)
    batch = max(1, round(plan.kernel_numel / (64 * 32 * 32)))
    rows: list[dict[str, Any]] = []
    for name in names:
        for dt, dtype in DTYPES.items():
            for layout in LAYOUTS:
                x = torch.randn(batch, 64, 32, 32, device=device, dtype=dtype)
                if layout == "channels_last":
                    x = x.contiguous(memory_format=torch.channels_last)
                impls: dict[str, nn.Module] = {"rectlab": activations.create(name, channels=64, backend=backend)}
                if name in TORCH_MODULES:
                    impls["torch"] = TORCH_MODULES[name](64)
                times = {}
                for impl, module in impls.items():
                    module = module.to(device=device, dtype=dtype)
                    module = module.train() if name == "rrelu" else module.eval()
                    times[impl] = _median_ms(_fwd_bwd(module, x), device, plan.kernel_warmup, plan.kernel_repeats)
                for impl, ms in times.items():
                    gbs = 5 * x.numel() * x.element_size() / (ms * 1e-3) / 1e9
                    rows.append(
                        {
                            "activation": name,
                            "dtype": dt,
                            "layout": layout,
                            "impl": impl,
                            "ms": ms,
                            "frac_copy_bw": gbs / bandwidth,
                            "ratio_to_torch": ms / times["torch"] if "torch" in times else math.nan,
                        }
                    )
                del x
    return {"status": "done", "copy_gb_per_s": bandwidth, "numel": batch * 64 * 32 * 32, "rows": rows}


def _train_images_per_s(model: nn.Module, plan: Plan, device: torch.device) -> float:
    gpu = device.type == "cuda"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(plan.train_batch, 3, plan.train_image, plan.train_image, generator=g).to(device)
    y = torch.randint(0, 10, (plan.train_batch,), generator=g).to(device)
    if gpu:
        x, model = x.contiguous(memory_format=torch.channels_last), model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
            loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(plan.train_warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(plan.train_steps):
        step()
    _sync(device)
    return plan.train_batch * plan.train_steps / (time.perf_counter() - t0)


def stage_train(plan: Plan, device: torch.device) -> dict[str, Any]:
    """Training-step images/s per activation, rectlab's modules and torch.nn's, with the ratio to ReLU."""
    rows: list[dict[str, Any]] = []
    for impl in ("rectlab", "torch"):
        relu = math.nan
        for act in TRAIN_ACTIVATIONS:
            make = activations.factory(act) if impl == "rectlab" else TORCH_MODULES[act]
            torch.manual_seed(0)
            model = models.create(plan.train_model, activation=make, num_classes=10, in_channels=3).to(device)
            rate = _train_images_per_s(model, plan, device)
            relu = rate if act == "relu" else relu
            rows.append(
                {
                    "model": plan.train_model,
                    "activation": act,
                    "impl": impl,
                    "batch": plan.train_batch,
                    "images_per_s": rate,
                    "ratio_to_relu": rate / relu,
                }
            )
    return {"status": "done", "rows": rows}


# -- the run and the report ------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run every stage, write the two report files, print a summary. Returns 0, or 1 when a stage failed."""
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    plan = GPU_PLAN if gpu else CPU_PLAN
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(STAGES)
    if unknown:
        raise InputError(f"--skip {', '.join(sorted(unknown))}: unknown stage; stages are {', '.join(STAGES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"environment": environment(device), "gpu": gpu, "stages": {}, "seconds": {}}
    print(f"rectlab bench gpu on {report['environment']['device']} ({'full' if gpu else 'reduced CPU form'})",
          flush=True)  # fmt: skip
    stages: dict[str, Callable[[], dict[str, Any]]] = {
        "selfcheck": lambda: stage_selfcheck(plan, device),
        "kernels": lambda: stage_kernels(plan, device),
        "train": lambda: stage_train(plan, device),
    }
    t_all = time.perf_counter()
    for name, stage in stages.items():
        if name in skip:
            report["stages"][name] = {"status": "skipped", "reason": "--skip"}
            continue
        t0 = time.perf_counter()
        try:
            report["stages"][name] = stage()
        except Exception as e:  # record and go on: the other stages still say something
            report["stages"][name] = {"status": "error", "error": f"{type(e).__name__}: {e}",
                                      "traceback": traceback.format_exc(limit=8)}  # fmt: skip
        report["seconds"][name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {summary(name, report['stages'][name])} ({report['seconds'][name]:.0f} s)", flush=True)
        write(report, out)  # after every stage: a run cut short still leaves its figures
    report["seconds"]["total"] = round(time.perf_counter() - t_all, 1)
    write(report, out)
    print(f"wrote {out / 'gpu-report.md'} and {out / 'gpu-report.json'} ({report['seconds']['total']:.0f} s)")
    bad = [n for n, s in report["stages"].items() if s["status"] in ("failed", "error", "timeout")]
    return 1 if bad else 0


def summary(name: str, stage: dict[str, Any]) -> str:
    """One line on a stage's outcome."""
    if stage["status"] in ("skipped", "error", "timeout"):
        return f"{stage['status']}: {stage.get('reason', stage.get('error', ''))}"
    if name == "selfcheck":
        failed = [r for r in stage["results"] if not r["passed"]]
        where = " (Triton interpreter)" if stage.get("interpreter") else ""
        head = f"{len(stage['results']) - len(failed)} of {len(stage['results'])} passed{where}"
        return head + "".join(f"; FAILED {r['op']} {r['dtype']} {r['layout']}" for r in failed)
    if name == "kernels":
        ours = [r for r in stage["rows"] if r["impl"] == "rectlab"]
        vs = [r["ratio_to_torch"] for r in ours if _finite(r["ratio_to_torch"])]
        slower = sorted({f"{r['activation']} {r['dtype']} {r['layout']}" for r in ours
                         if _finite(r["ratio_to_torch"]) and r["ratio_to_torch"] > 1})  # fmt: skip
        low = min(ours, key=lambda r: r["frac_copy_bw"]) if ours else None
        text = f"{len(ours)} cases"
        if low is not None:
            text += (f"; lowest {100 * low['frac_copy_bw']:.0f}% of copy bandwidth ({low['activation']} "
                     f"{low['dtype']} {low['layout']})")  # fmt: skip
        if vs:
            text += f"; rectlab / torch.nn from {min(vs):.2f}x to {max(vs):.2f}x"
        return text + (f"; slower than torch.nn: {', '.join(slower)}" if slower else "")
    if name == "train":
        ours = [r for r in stage["rows"] if r["impl"] == "rectlab" and r["activation"] != "relu"]
        return ", ".join(f"{r['model']} {r['activation']} {r['ratio_to_relu']:.2f}x ReLU" for r in ours)
    return stage["status"]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def write(report: dict[str, Any], out: Path) -> None:
    """Write ``gpu-report.json`` and ``gpu-report.md`` into ``out``."""
    (out / "gpu-report.json").write_text(json.dumps(json_safe(report), indent=1) + "\n")
    (out / "gpu-report.md").write_text(render_markdown(report))


def json_safe(obj: Any) -> Any:
    """``obj`` made JSON-safe: NaN and infinities become null (the report files of this module and the
    GPU benchmark script)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _fmt(value: Any, spec: str = ".3g") -> str:
    if isinstance(value, float):
        return format(value, spec) if math.isfinite(value) else "-"
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: environment, one line per stage, then every stage's figures."""
    env, stages, secs = report["environment"], report["stages"], report["seconds"]
    lines = [f"# rectlab GPU report: {env['device']}", ""]
    if not report["gpu"]:
        lines += ["**Reduced CPU form** (`--device cpu`): tiny sizes, Triton's interpreter for the self-check. "
                  "It exercises the command; its figures say nothing about speed.", ""]  # fmt: skip
    lines += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in env.items())]
    lines += ["", "## Summary", "", "| stage | status | seconds | outcome |", "|---|---|---:|---|"]
    lines += [f"| {n} | {s['status']} | {_fmt(secs.get(n, ''))} | {summary(n, s)} |" for n, s in stages.items()]
    sc = stages.get("selfcheck", {})
    if sc.get("results"):
        lines += ["", "## Self-check of the fused kernels", "", "| op | dtype | layout | result | seconds |",
                  "|---|---|---|---|---:|"]  # fmt: skip
        lines += [f"| {r['op']} | {r['dtype']} | {r['layout']} | "
                  f"{'passed' if r['passed'] else 'FAILED: ' + '; '.join(r['problems'])} | {r['seconds']} |"
                  for r in sc["results"]]  # fmt: skip
    kernels = stages.get("kernels", {})
    if kernels.get("rows"):
        lines += ["", f"## Kernels: forward+backward at {kernels['numel']:,} elements", "",
                  f"Copy bandwidth {kernels['copy_gb_per_s']:.0f} GB/s.", "",
                  "| activation | dtype | layout | impl | ms | % of copy bandwidth | x torch.nn |",
                  "|---|---|---|---|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {r['activation']} | {r['dtype']} | {r['layout']} | {r['impl']} | {_fmt(r['ms'], '.4f')} | "
                  f"{_fmt(100 * r['frac_copy_bw'], '.0f')}% | {_fmt(r['ratio_to_torch'], '.2f')} |"
                  for r in kernels["rows"]]  # fmt: skip
    train = stages.get("train", {})
    if train.get("rows"):
        lines += ["", "## Training step", "", "| model | activation | impl | batch | img/s | x ReLU |",
                  "|---|---|---|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {r['model']} | {r['activation']} | {r['impl']} | {r['batch']} | {r['images_per_s']:.0f} | "
                  f"{r['ratio_to_relu']:.2f} |" for r in train["rows"]]  # fmt: skip
    return "\n".join(lines) + "\n"
