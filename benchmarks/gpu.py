"""The developer's GPU benchmark run in one command, from a checkout: gpu-report.md and gpu-report.json.

    python benchmarks/gpu.py [--device cpu] [--out DIR] [--data-dir .data] [--skip tests,...]

Stages, in this order (each timed, each recorded even when it fails):

1. ``tests``: the GPU test suite, ``pytest -m gpu`` on the checkout's ``tests/`` in a subprocess;
2. ``selfcheck``: the fused kernels' self-check (`rectlab.activations.selfcheck`) of every op, fp32 and
   bf16, NCHW and channels_last (the stage of ``rectlab bench gpu``, `rectlab.gpucheck`);
3. ``kernels``: ``benchmarks/kernels.py`` (ours vs PyTorch eager) at 64K, 1M, 16M, 100M and
   128x64x112x112 elements, fp32 and bf16, NCHW (every activation) and channels_last (the layout-sensitive
   ones);
4. ``train``: ``benchmarks/train.py``, ResNet-20 and ResNet-56, ReLU vs PReLU vs GELU, rectlab vs torch.nn;
5. ``study``: ``benchmarks/study.py``, the 15-run study (5 activations x 3 seeds, ResNet-20 on
   Fashion-MNIST, 10 epochs), rectlab's runs (5 at a time, CUDA graphs; ``--no-cuda-graphs`` for
   concurrency alone) vs a plain sequential loop (one seed, its time scaled to the 15 runs).

Then one PASS / MISS line per speed target: forward+backward >= 85% of copy bandwidth at 100M,
channel-wise PReLU <= 1.10x ReLU, ResNet-56 PReLU >= 0.95x ReLU, no activation slower than eager from 64K
to 100M, the 15-run study in <= 1/3 of the sequential time.

Without a GPU (``--device cpu``) every stage runs in a reduced form (tiny sizes, Triton's interpreter for the
self-check, digits for the study) so that CI tests the command itself; its target lines read N/A, with the
values measured at the reduced sizes, because the targets are about the fused kernels on a CUDA GPU.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts
import kernels as bench_kernels  # noqa: E402
import study as bench_study  # noqa: E402
import train as bench_train  # noqa: E402

from rectlab import gpucheck  # noqa: E402
from rectlab.training.loop import resolve_device  # noqa: E402

__all__ = ["STAGES", "TARGETS", "add_arguments", "main", "run", "targets"]

HERE = Path(__file__).resolve().parent

STAGES = ("tests", "selfcheck", "kernels", "train", "study")
LAYOUT_SENSITIVE = "relu,prelu,prelu-shared,swish-learnable,swish-channelwise,rrelu"
"""Activations timed in channels_last too: the per-channel ones tile it differently (and ReLU for the ratios)."""


@dataclass(frozen=True)
class Plan:
    """What each stage runs: the GPU plan, or the reduced CPU plan."""

    pytest_args: tuple[str, ...]
    pytest_timeout: int
    kernel_sizes: str
    kernel_shape: str
    kernel_activations: str | None  # None: kernels.py's default (all on GPU)
    kernel_cl_activations: str
    kernel_repeats: int
    kernel_warmup: int
    kernel_copy_mib: int
    train: tuple[str, ...]
    study: tuple[str, ...]


GPU_PLAN = Plan(
    pytest_args=("-m", "gpu"),
    pytest_timeout=300,
    kernel_sizes="64K,1M,16M,100M",
    kernel_shape="128x64x112x112",
    kernel_activations=None,
    kernel_cl_activations=LAYOUT_SENSITIVE,
    kernel_repeats=20,
    kernel_warmup=5,
    kernel_copy_mib=1024,
    train=("--models", "resnet20,resnet56", "--activations", "relu,prelu,gelu", "--impl", "both",
           "--steps", "20", "--warmup", "5"),
    study=("--activations", "relu,prelu,elu,gelu,silu", "--seeds", "3", "--model", "resnet20",
           "--dataset", "fashion-mnist", "--epochs", "10", "--workers", "5", "--plain-seeds", "1", "--cuda-graphs"),
)  # fmt: skip

CPU_PLAN = Plan(
    pytest_args=("-m", "gpu"),
    pytest_timeout=240,
    kernel_sizes="4K",
    kernel_shape="none",
    kernel_activations="relu,prelu",
    kernel_cl_activations="relu,prelu",
    kernel_repeats=2,
    kernel_warmup=0,
    kernel_copy_mib=8,
    train=("--models", "small-cnn", "--activations", "relu,prelu", "--impl", "both", "--batch-size", "8",
           "--image-size", "16", "--steps", "1", "--warmup", "0"),
    study=("--activations", "relu,prelu", "--seeds", "1", "--model", "mlp", "--dataset", "digits", "--epochs", "1",
           "--train-limit", "256", "--batch-size", "64", "--workers", "1"),
)  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``benchmarks/gpu.py``."""
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N, or cpu for the reduced form (CI)")
    p.add_argument("--out", default=".", help="folder for gpu-report.md and gpu-report.json (default: here)")
    p.add_argument(
        "--data-dir",
        default=None,
        help="where Fashion-MNIST is (e.g. .data holding .data/fashion-mnist/*.gz; also $RECTLAB_DATA)",
    )
    p.add_argument("--skip", default="", help=f"comma-separated stages to skip: {', '.join(STAGES)}")
    p.add_argument(
        "--pytest-args",
        default=None,
        help="arguments for the test stage instead of '-m gpu' (e.g. 'tests/test_fused.py -m gpu')",
    )
    p.add_argument("--tests-dir", default=None, help="the checkout's tests/ (default: found from the package)")
    p.add_argument(
        "--no-cuda-graphs",
        action="store_true",
        help="run the study stage's rectlab runs without CUDA graphs (only --workers concurrency)",
    )


# ----------------------------------------------------------------------------------------------------
# Stages
# ----------------------------------------------------------------------------------------------------


def _tests_dir(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    here = HERE.parent / "tests"
    return here if here.is_dir() else None


def _stage_tests(plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    tests = _tests_dir(args.tests_dir)
    if importlib.util.find_spec("pytest") is None:
        return {"status": "skipped", "reason": "pytest is not installed (pip install pytest)"}
    if tests is None:
        return {"status": "skipped", "reason": "no tests/ folder: run from a checkout (or pass --tests-dir)"}
    extra = args.pytest_args.split() if args.pytest_args else [str(tests), *plan.pytest_args]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    env = dict(os.environ)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=plan.pytest_timeout, env=env,
                             cwd=tests.parent)  # fmt: skip
    except subprocess.TimeoutExpired as e:
        tail = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return {"status": "timeout", "command": " ".join(cmd[2:]), "seconds_limit": plan.pytest_timeout,
                "tail": tail[-2000:]}  # fmt: skip
    lines = [line for line in res.stdout.strip().splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else ""
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    counts = {k: int(n) for n, k in _counts(summary)}
    return {"status": "passed" if res.returncode in (0, 5) and not failed else "failed", "returncode": res.returncode,
            "command": " ".join(cmd[2:]), "summary": summary, "counts": counts, "failures": failed[:50],
            "tail": "\n".join(lines[-30:]) if res.returncode not in (0, 5) else ""}  # fmt: skip


def _counts(summary: str) -> list[tuple[str, str]]:
    import re

    return re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)", summary)


def _stage_selfcheck(plan: Plan, device: torch.device) -> dict[str, Any]:
    return gpucheck.stage_selfcheck(gpucheck.GPU_PLAN if device.type == "cuda" else gpucheck.CPU_PLAN, device)


def _stage_kernels(plan: Plan, device: torch.device) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rectlab-bench-gpu-") as tmp:
        for layout, activations in (("nchw", plan.kernel_activations), ("channels_last", plan.kernel_cl_activations)):
            out = Path(tmp) / f"{layout}.csv"
            argv = ["--device", str(device), "--dtypes", "fp32,bf16", "--sizes", plan.kernel_sizes, "--shape",
                    plan.kernel_shape, "--impls", "ours,eager", "--repeats", str(plan.kernel_repeats), "--warmup",
                    str(plan.kernel_warmup), "--copy-mib", str(plan.kernel_copy_mib), "--csv", str(out)]  # fmt: skip
            if activations:
                argv += ["--activations", activations]
            if layout == "channels_last":
                argv.append("--channels-last")
            bench_kernels.main(argv)
            with out.open() as f:
                for row in csv.DictReader(f):
                    rows.append({"layout": layout, **{k: _number(v) for k, v in row.items()}})
    return {"status": "done", "rows": rows}


def _stage_train(plan: Plan, device: torch.device) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    rows = bench_train.measure(parser.parse_args([*plan.train, "--device", str(device)]))
    return {"status": "done", "rows": rows}


def _stage_study(plan: Plan, device: torch.device, data_dir: str | None, no_graphs: bool) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    bench_study.add_arguments(parser)
    argv = [*plan.study, "--device", str(device), *(["--data-dir", data_dir] if data_dir else [])]
    if no_graphs:
        argv = [a for a in argv if a != "--cuda-graphs"]
    result = bench_study.measure(parser.parse_args(argv))
    return {"status": "failed" if result["rectlab_not_done"] else "done", **result}


def _number(text: str) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


# ----------------------------------------------------------------------------------------------------
# Targets
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    rule: str
    check: Callable[[dict[str, Any], bool], tuple[str, str, Any]]  # (status, detail, value)


def _ours(row: dict[str, Any]) -> bool:
    return str(row.get("impl", "")).startswith("ours")


def _kernel_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return report["stages"].get("kernels", {}).get("rows", [])


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _verdict(ok: bool, gpu: bool) -> str:
    return ("PASS" if ok else "MISS") if gpu else "N/A"


def _target_bandwidth(report: dict[str, Any], gpu: bool) -> tuple[str, str, Any]:
    size = "100M" if gpu else _largest_size(report)
    rows = [r for r in _kernel_rows(report) if _ours(r) and r["mode"] == "fwd+bwd" and r["shape"] == size
            and _finite(r["frac_copy_bw"])]  # fmt: skip
    if not rows:
        return "N/A", f"no forward+backward measurement at {size}", None
    worst = min(rows, key=lambda r: r["frac_copy_bw"])
    misses = sorted({f"{r['activation']} {r['dtype']} {r['layout']}" for r in rows if r["frac_copy_bw"] < 0.85})
    detail = (f"lowest {100 * worst['frac_copy_bw']:.0f}% ({worst['activation']} {worst['dtype']} {worst['layout']}) "
              f"at {size}; below 85%: {', '.join(misses) or 'none'}")  # fmt: skip
    return _verdict(not misses, gpu), detail, worst["frac_copy_bw"]


def _target_prelu(report: dict[str, Any], gpu: bool) -> tuple[str, str, Any]:
    sizes = {"100M", "128x64x112x112"} if gpu else {_largest_size(report)}
    rows = [r for r in _kernel_rows(report) if _ours(r) and r["activation"] == "prelu" and r["mode"] == "fwd+bwd"
            and r["shape"] in sizes and _finite(r["ratio_to_relu"])]  # fmt: skip
    if not rows:
        return "N/A", f"no channel-wise PReLU forward+backward at {', '.join(sorted(sizes))}", None
    worst = max(rows, key=lambda r: r["ratio_to_relu"])
    detail = (f"worst {worst['ratio_to_relu']:.2f}x ReLU ({worst['dtype']} {worst['layout']} {worst['shape']}) over "
              f"{len(rows)} cases")  # fmt: skip
    return _verdict(worst["ratio_to_relu"] <= 1.10, gpu), detail, worst["ratio_to_relu"]


def _target_resnet56(report: dict[str, Any], gpu: bool) -> tuple[str, str, Any]:
    rows = report["stages"].get("train", {}).get("rows", [])
    model = "resnet56" if gpu else (rows[-1]["model"] if rows else "?")
    row = next((r for r in rows if r["model"] == model and r["impl"] == "rectlab" and r["activation"] == "prelu"), None)
    if row is None:
        return "N/A", f"no {model} PReLU training measurement", None
    detail = f"{model} PReLU {row['images_per_s']:.0f} img/s = {row['ratio_to_relu']:.2f}x ReLU (rectlab modules)"
    return _verdict(row["ratio_to_relu"] >= 0.95, gpu), detail, row["ratio_to_relu"]


def _target_eager(report: dict[str, Any], gpu: bool) -> tuple[str, str, Any]:
    sizes = {"64K", "1M", "16M", "100M"} if gpu else {r["shape"] for r in _kernel_rows(report)}
    rows = [r for r in _kernel_rows(report) if _ours(r) and r["shape"] in sizes and _finite(r["ratio_to_eager"])]
    if not rows:
        return "N/A", "no measurement of ours against eager", None
    worst = max(rows, key=lambda r: r["ratio_to_eager"])
    slower = sorted({f"{r['activation']} {r['dtype']} {r['layout']} {r['shape']} {r['mode']} "
                     f"{r['ratio_to_eager']:.2f}x" for r in rows if r["ratio_to_eager"] > 1.0})  # fmt: skip
    detail = (f"worst ours/eager {worst['ratio_to_eager']:.2f} ({worst['activation']} {worst['dtype']} "
              f"{worst['layout']} {worst['shape']} {worst['mode']}); slower than eager: "
              f"{'; '.join(slower[:12]) or 'none'}{' ...' if len(slower) > 12 else ''}")  # fmt: skip
    return _verdict(not slower, gpu), detail, worst["ratio_to_eager"]


def _target_study(report: dict[str, Any], gpu: bool) -> tuple[str, str, Any]:
    study = report["stages"].get("study", {})
    ratio = study.get("ratio")
    if not _finite(ratio):
        return "N/A", "no study timing", None
    scaled = (
        ""
        if study["plain_runs"] == study["runs"]
        else (f" (plain time scaled from {study['plain_runs']} of {study['runs']} runs)")
    )
    detail = (f"{study['runs']} runs: rectlab {study['rectlab_seconds']:.1f} s ({study['workers']} at a time) vs plain "
              f"{study['plain_seconds_all']:.1f} s = {ratio:.2f}{scaled}")  # fmt: skip
    return _verdict(ratio <= 1 / 3, gpu), detail, ratio


def _target_time(report: dict[str, Any], gpu: bool) -> tuple[str, str, Any]:
    total = report["seconds"].get("total")
    if total is None:
        return "N/A", "not finished", None
    skipped = [n for n, s in report["stages"].items() if s.get("reason") == "--skip"]
    detail = f"{total:.0f} s" + (f" (skipped: {', '.join(skipped)})" if skipped else "")
    return _verdict(total <= 540 and not skipped, gpu), detail, total


def _largest_size(report: dict[str, Any]) -> str:
    rows = _kernel_rows(report)
    return max(rows, key=lambda r: r["numel"])["shape"] if rows else "?"


TARGETS = (
    Target("bandwidth", "forward+backward of every activation >= 85% of copy bandwidth at 100M (fp32, bf16)",
           _target_bandwidth),
    Target("prelu-vs-relu", "channel-wise PReLU forward+backward <= 1.10x ReLU (100M and 128x64x112x112)",
           _target_prelu),
    Target("resnet56-prelu", "ResNet-56 with channel-wise PReLU >= 0.95x ReLU's images/s", _target_resnet56),
    Target("not-slower-than-eager", "no activation slower than PyTorch eager from 64K to 100M elements",
           _target_eager),
    Target("study-throughput", "the 15-run study in <= 1/3 of the sequential plain loop's time", _target_study),
    Target("command-time", "this whole command in <= 9 minutes", _target_time),
)  # fmt: skip
"""The speed targets (and this command's own time budget), checked from the report's measurements."""


def targets(report: dict[str, Any], gpu: bool) -> list[dict[str, Any]]:
    """One line per target: ``{"name", "rule", "status" (PASS | MISS | N/A), "detail", "value"}``."""
    out = []
    for t in TARGETS:
        try:
            status, detail, value = t.check(report, gpu)
        except Exception as e:  # a report must still be written
            status, detail, value = "N/A", f"could not evaluate: {type(e).__name__}: {e}", None
        if not gpu and status == "N/A" and value is not None:
            detail = f"CPU run at reduced sizes, not a verdict: {detail}"
        out.append({"name": t.name, "rule": t.rule, "status": status, "detail": detail, "value": value})
    return out


# ----------------------------------------------------------------------------------------------------
# The run and the report
# ----------------------------------------------------------------------------------------------------


def _environment(device: torch.device) -> dict[str, Any]:
    return {**gpucheck.environment(device), "commit": _git_commit()}


def _git_commit() -> str:
    root = HERE.parent
    try:
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10)  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
        return res.stdout.strip() + (" (modified)" if dirty else "") if res.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run(args: argparse.Namespace) -> int:
    """Run every stage, write the two report files, print the target lines. Returns 0 (1 if a stage failed)."""
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    plan = GPU_PLAN if gpu else CPU_PLAN
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(STAGES)
    if unknown:
        raise SystemExit(f"--skip {', '.join(sorted(unknown))}: unknown stage; stages are {', '.join(STAGES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"environment": _environment(device), "gpu": gpu, "stages": {}, "seconds": {}}
    print(f"benchmarks/gpu.py on {report['environment']['device']} ({'full' if gpu else 'reduced CPU form'})",
          flush=True)  # fmt: skip
    t_all = time.perf_counter()
    stages: dict[str, Callable[[], dict[str, Any]]] = {
        "tests": lambda: _stage_tests(plan, args),
        "selfcheck": lambda: _stage_selfcheck(plan, device),
        "kernels": lambda: _stage_kernels(plan, device),
        "train": lambda: _stage_train(plan, device),
        "study": lambda: _stage_study(plan, device, args.data_dir, args.no_cuda_graphs),
    }
    for name, stage in stages.items():
        if name in skip:
            report["stages"][name] = {"status": "skipped", "reason": "--skip"}
            continue
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            report["stages"][name] = stage()
        except Exception as e:  # record and go on: the other stages still say something
            report["stages"][name] = {"status": "error", "error": f"{type(e).__name__}: {e}",
                                      "traceback": traceback.format_exc(limit=8)}  # fmt: skip
        report["seconds"][name] = round(time.perf_counter() - t0, 1)
        if gpu:
            torch.cuda.empty_cache()
        print(f"[{name}: {report['stages'][name]['status']}, {report['seconds'][name]:.0f} s]", flush=True)
        _write(report, out, gpu)  # after every stage: a run cut short still leaves its figures
    report["seconds"]["total"] = round(time.perf_counter() - t_all, 1)
    _write(report, out, gpu)
    print()
    for t in report["targets"]:
        print(f"{t['status']:<5} {t['rule']}: {t['detail']}")
    print(f"\nwrote {out / 'gpu-report.md'} and {out / 'gpu-report.json'} ({report['seconds']['total']:.0f} s)")
    bad = [n for n, s in report["stages"].items() if s["status"] in ("failed", "error", "timeout")]
    return 1 if bad else 0


def _write(report: dict[str, Any], out: Path, gpu: bool) -> None:
    report["targets"] = targets(report, gpu)
    (out / "gpu-report.json").write_text(json.dumps(gpucheck.json_safe(report), indent=1) + "\n")
    (out / "gpu-report.md").write_text(render_markdown(report))


def _fmt(value: Any, spec: str = ".3g") -> str:
    if isinstance(value, float):
        return format(value, spec) if math.isfinite(value) else "n/a"
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: environment, target lines, then every stage's figures."""
    env = report["environment"]
    lines = [f"# rectlab GPU report: {env['device']}", ""]
    if not report["gpu"]:
        lines += ["**Reduced CPU form** (`--device cpu`): tiny sizes, Triton's interpreter for the self-check. "
                  "It tests the command, not the GPU; the target lines are N/A.", ""]  # fmt: skip
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in env.items()]
    lines += ["", "## Targets", "", "| status | target | measured |", "|---|---|---|"]
    lines += [f"| **{t['status']}** | {t['rule']} | {t['detail']} |" for t in report["targets"]]
    secs = report["seconds"]
    lines += ["", "## Stages", "", "| stage | status | seconds |", "|---|---|---:|"]
    lines += [f"| {n} | {s['status']} | {_fmt(secs.get(n, ''))} |" for n, s in report["stages"].items()]
    lines += [f"| total | | {_fmt(secs.get('total', ''))} |", ""]
    stages = report["stages"]
    tests = stages.get("tests", {})
    lines += ["## GPU tests", ""]
    if "command" in tests:
        lines += [f"`{tests['command']}`: **{tests.get('summary', tests['status'])}**", ""]
        lines += [f"- {f}" for f in tests.get("failures", [])]
        if tests.get("tail"):
            lines += ["", "```", tests["tail"], "```"]
    else:
        lines += [f"{tests.get('status', 'not run')}: {tests.get('reason', tests.get('error', ''))}"]
    lines += ["", "## Self-check of the fused kernels", ""]
    sc = stages.get("selfcheck", {})
    if sc.get("results"):
        failed = [r for r in sc["results"] if not r["passed"]]
        lines += [f"{len(sc['results']) - len(failed)} of {len(sc['results'])} passed"
                  f"{' (Triton interpreter)' if sc.get('interpreter') else ''}; total "
                  f"{sum(r['seconds'] for r in sc['results']):.1f} s, Triton compilation included.", ""]  # fmt: skip
        lines += [f"- FAILED {r['op']} {r['dtype']} {r['layout']}: {'; '.join(r['problems'])}" for r in failed]
    else:
        lines += [f"{sc.get('status', 'not run')}: {sc.get('reason', sc.get('error', ''))}"]
    lines += ["", "## Kernels (`benchmarks/kernels.py`, ours vs eager)", ""]
    rows = stages.get("kernels", {}).get("rows", [])
    if rows:
        lines += ["| activation | dtype | layout | size | mode | ours ms | ours %copy | ours xReLU | eager ms | "
                  "ours/eager |", "|---|---|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip

        def key(r: dict[str, Any]) -> tuple:
            return r["activation"], r["dtype"], r["layout"], r["shape"], r["mode"]

        eager = {key(r): r for r in rows if r["impl"] == "eager"}
        for r in rows:
            if not _ours(r):
                continue
            e = eager.get(key(r), {})
            lines.append(f"| {r['activation']} | {r['dtype']} | {r['layout']} | {r['shape']} | {r['mode']} | "
                         f"{_fmt(r['ms'], '.4f')} | {_fmt(100 * r['frac_copy_bw'], '.0f')}% | "
                         f"{_fmt(r['ratio_to_relu'], '.2f')} | {_fmt(e.get('ms', math.nan), '.4f')} | "
                         f"{_fmt(r['ratio_to_eager'], '.2f')} |")  # fmt: skip
    else:
        lines += [_stage_note(stages.get("kernels", {}))]
    lines += ["", "## Training step (`benchmarks/train.py`)", ""]
    rows = stages.get("train", {}).get("rows", [])
    if rows:
        lines += ["| model | activation | impl | batch | img/s | x ReLU |", "|---|---|---|---:|---:|---:|"]
        lines += [f"| {r['model']} | {r['activation']} | {r['impl']} | {r['batch']} | {r['images_per_s']:.0f} | "
                  f"{r['ratio_to_relu']:.2f} |" for r in rows]  # fmt: skip
    else:
        lines += [_stage_note(stages.get("train", {}))]
    lines += ["", "## Study throughput (`benchmarks/study.py`)", ""]
    st = stages.get("study", {})
    if "ratio" in st:
        lines += [f"{st['model']} on {st['dataset']}, {st['runs']} runs of {st['epochs']} epochs: plain loop "
                  f"{_fmt(st['plain_seconds'], '.1f')} s for {st['plain_runs']} runs "
                  f"({_fmt(st['plain_seconds_all'], '.1f')} s for all {st['runs']}), rectlab "
                  f"{st['rectlab_seconds']:.1f} s with {st['workers']} runs at a time"
                  f"{' and CUDA graphs' if st.get('cuda_graphs') else ''}: ratio {_fmt(st['ratio'], '.2f')}.",
                  "", "| cell | plain test error % | rectlab test error % |", "|---|---|---|"]  # fmt: skip
        for c in st["cells"]:
            plain = ", ".join(f"{v:.2f}" for v in c["plain_errors"]) or "-"
            ours = ", ".join(f"{v:.2f}" for v in c["rectlab_errors"])
            lines.append(f"| {c['cell']} | {plain} | {ours} |")
        lines += ["", *(f"- rectlab run not finished: {line}" for line in st.get("rectlab_not_done", []))]
    else:
        lines += [_stage_note(st)]
    return "\n".join(lines) + "\n"


def _stage_note(stage: dict[str, Any]) -> str:
    return f"{stage.get('status', 'not run')}: {stage.get('reason', stage.get('error', ''))}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python benchmarks/gpu.py``."""
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
