"""The benchmark scripts in benchmarks/ and ``rectlab bench gpu`` run end to end at a tiny size.

Benchmarks measure and print; these smoke runs check that they run and report every case they were
asked for. They assert nothing about speed.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from rectlab import gpucheck
from rectlab.cli.main import main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def script(name: str) -> ModuleType:
    """A benchmark script of the checkout, imported as a module (its siblings importable, as when it runs)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_kernels_smoke(tmp_path, capsys) -> None:
    bench = script("kernels")

    out = tmp_path / "bench.csv"
    argv = ["--activations", "prelu", "--dtypes", "fp32", "--sizes", "4K", "--shape", "none", "--impls", "ours,eager"]
    argv += ["--repeats", "2", "--warmup", "0", "--device", "cpu", "--copy-mib", "8", "--csv", str(out)]
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    assert "copy bandwidth" in text and "prelu" in text
    lines = out.read_text().splitlines()
    assert lines[0].startswith("device,activation,dtype,shape,numel,mode,impl,ms")
    assert len(lines) == 1 + 2 * 2 * 2  # relu added for the ratios; 2 activations x 2 modes x 2 impls


def test_bench_kernels_cpu_columns_side_by_side(tmp_path, capsys) -> None:
    """On CPU: rectlab's path (auto), the spec, PyTorch's own module where it has one, at the given shapes."""
    bench = script("kernels")

    out = tmp_path / "bench.csv"
    argv = ["--device", "cpu", "--activations", "smelu,prelu", "--dtypes", "fp32,bf16", "--sizes", "none",
            "--shapes", "2x3x5x5,8x6", "--impls", "ours,spec,eager", "--repeats", "2", "--warmup", "0",
            "--copy-mib", "8", "--threads", "1", "--csv", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    assert "backend=auto" in text and "ours/spec" in text
    rows = list(csv.DictReader(out.open()))
    cells = {(r["activation"], r["dtype"], r["shape"], r["mode"], r["impl"]) for r in rows}
    # relu is added for the ratios; PyTorch has no SmeLU module, so smelu has no eager row
    assert ("relu", "fp32", "2x3x5x5", "fwd", "eager") in cells
    assert ("prelu", "bf16", "8x6", "fwd+bwd", "eager") in cells
    assert not any(c[0] == "smelu" and c[4] == "eager" for c in cells)
    assert len(rows) == (3 * 2 * 2 * 2) * 3 - (2 * 2 * 2)  # acts x dtypes x shapes x modes x impls - smelu eager
    for r in rows:
        assert float(r["ms"]) > 0
        if r["activation"] == "relu" and r["impl"] == "eager":
            assert float(r["ratio_to_relu"]) == float(r["ratio_to_torch_relu"]) == 1.0


def test_bench_kernels_bad_input_says_how_to_fix_it() -> None:
    bench = script("kernels")

    with pytest.raises(SystemExit, match="128x16x28x28"):
        bench.main(["--device", "cpu", "--sizes", "none", "--shapes", "128by16", "--copy-mib", "8"])
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit, match="--threads 1"):
            bench.main(["--device", "cpu", "--threads", "2", "--clock", "cpu", "--sizes", "none", "--shapes", "4x4",
                        "--copy-mib", "8"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def test_bench_train_smoke(capsys) -> None:
    rc = script("train").main(
        [
            "--models",
            "resnet20",
            "--activations",
            "relu,prelu",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--batch-size",
            "4",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "device: cpu" in out
    assert sum(line.startswith("resnet20") for line in out.splitlines()) == 4  # 2 activations x (rectlab, torch)


def test_bench_study_smoke(capsys) -> None:
    rc = script("study").main(
        [
            "--activations",
            "relu,prelu",
            "--seeds",
            "2",
            "--model",
            "mlp",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--train-limit",
            "64",
            "--batch-size",
            "32",
            "--workers",
            "1",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "device: cpu" in out and "2 cells x 2 seeds = 4 runs" in out
    assert "plain sequential loop:" in out and "rectlab (1 concurrent runs):" in out and "time ratio" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["relu"], ["prelu"])}
    assert set(rows) == {"relu", "prelu"}
    assert all(len(r) == 8 and r[2] == r[5] == "±" for r in rows.values())  # plain mean ± std, ours mean ± std, p


def test_bench_overhead_smoke(tmp_path, capsys) -> None:
    rc = script("overhead").main(
        [
            "--dataset",
            "digits",
            "--model",
            "mlp",
            "--epochs",
            "2",
            "--repeats",
            "1",
            "--json",
            str(tmp_path / "overhead.json"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "--executor local" in out and "--executor processes" in out and "run (mlp, relu, 2 epochs" in out
    figures = json.loads((tmp_path / "overhead.json").read_text())
    for executor in ("local", "processes"):  # the command's phases, written by RECTLAB_TIMINGS
        phases = figures[f"command_{executor}"]["phases"]
        assert {"startup", "plan", "validate (data load, models)", "train", "collect", "report", "total"} <= set(phases)
        assert 0 < phases["train"] < phases["total"] <= figures[f"command_{executor}"]["wall_s"]
    run = figures["run"]
    parts = run["build_s"] + run["train_steps_s"] + run["eval_s"] + run["epoch_end_s"] + run["finish_s"]
    # the parts leave out only the gaps between one epoch's end and the next one's start (microseconds)
    assert run["status"] == "done" and run["train_steps_s"] > 0 and abs(parts - run["total_s"]) < 0.01


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the reduced form is for machines without a GPU")
def test_benchmarks_gpu_smoke(tmp_path, capsys, has_triton: bool) -> None:
    """The reduced CPU form of benchmarks/gpu.py: every stage runs, both reports are written."""
    gpu = script("gpu")
    argv = ["--device", "cpu", "--out", str(tmp_path)]
    argv += ["--pytest-args", "tests/test_train_step.py -m gpu"]  # one small file: the stage, not the suite
    assert gpu.main(argv) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "gpu-report.json" in text

    report = json.loads((tmp_path / "gpu-report.json").read_text())
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["device"].startswith("cpu") and env["date"]
    stages = report["stages"]
    assert list(stages) == list(gpu.STAGES)
    assert stages["tests"]["status"] == "passed" and stages["tests"]["counts"].get("skipped", 0) >= 1
    if has_triton:
        checks = stages["selfcheck"]["results"]
        assert stages["selfcheck"]["interpreter"] and {c["op"] for c in checks} == {"relu", "prelu"}
        assert all(c["passed"] for c in checks) and {c["layout"] for c in checks} == {"contiguous", "channels_last"}
    rows = stages["kernels"]["rows"]
    assert {r["layout"] for r in rows} == {"nchw", "channels_last"} and {r["dtype"] for r in rows} == {"fp32", "bf16"}
    assert {r["impl"] for r in rows} >= {"eager"} and any(r["impl"].startswith("ours") for r in rows)
    assert all(r["ms"] > 0 for r in rows)
    assert {(r["activation"], r["impl"]) for r in stages["train"]["rows"]} == {
        ("relu", "rectlab"), ("prelu", "rectlab"), ("relu", "torch"), ("prelu", "torch")
    }  # fmt: skip
    study = stages["study"]
    assert study["runs"] == 2 and study["rectlab_seconds"] > 0 and study["ratio"] > 0
    assert [c["cell"] for c in study["cells"]] == ["relu", "prelu"]
    assert [t["name"] for t in report["targets"]] == [t.name for t in gpu.TARGETS]
    assert all(t["status"] == "N/A" for t in report["targets"])  # a CPU run judges nothing
    assert report["seconds"]["total"] > 0

    md = (tmp_path / "gpu-report.md").read_text()
    assert md.startswith("# rectlab GPU report: cpu") and "Reduced CPU form" in md
    for t in gpu.TARGETS:
        assert t.rule in md
    for heading in ("## GPU tests", "## Self-check", "## Kernels", "## Training step", "## Study throughput"):
        assert heading in md


def _kernel_row(activation, dtype, layout, shape, mode, impl, ms, frac, to_relu, to_eager, numel=100 << 20):
    return {
        "activation": activation,
        "dtype": dtype,
        "layout": layout,
        "shape": shape,
        "mode": mode,
        "impl": impl,
        "ms": ms,
        "frac_copy_bw": frac,
        "ratio_to_relu": to_relu,
        "ratio_to_eager": to_eager,
        "numel": numel,
    }


def test_benchmarks_gpu_targets_pass_and_miss_on_a_gpu_report() -> None:
    gpu = script("gpu")

    rows = []
    for layout in ("nchw", "channels_last"):
        for dtype in ("fp32", "bf16"):
            rows += [
                _kernel_row("relu", dtype, layout, "100M", "fwd+bwd", "ours", 1.0, 0.93, 1.0, 0.98),
                _kernel_row("prelu", dtype, layout, "100M", "fwd+bwd", "ours", 1.05, 0.90, 1.05, 0.40),
                _kernel_row("prelu", dtype, layout, "128x64x112x112", "fwd+bwd", "ours", 1.2, 0.9, 1.08, 0.5),
                _kernel_row("relu", dtype, layout, "64K", "fwd", "ours", 0.01, 0.2, 1.0, 0.9, numel=1 << 16),
            ]
    rows.append(_kernel_row("mish", "bf16", "nchw", "100M", "fwd+bwd", "ours", 1.2, 0.80, 1.2, 0.9))
    rows.append(_kernel_row("gelu", "fp32", "nchw", "64K", "fwd", "ours", 0.02, 0.1, 2.0, 1.3, numel=1 << 16))
    report = {
        "stages": {
            "kernels": {"rows": rows},
            "train": {
                "rows": [
                    {
                        "model": "resnet56",
                        "impl": "rectlab",
                        "activation": "prelu",
                        "images_per_s": 21000.0,
                        "ratio_to_relu": 0.96,
                    }
                ]
            },  # fmt: skip
            "study": {
                "ratio": 0.4,
                "runs": 15,
                "plain_runs": 5,
                "workers": 5,
                "rectlab_seconds": 78.0,
                "plain_seconds_all": 195.0,
            },  # fmt: skip
        },
        "seconds": {"total": 530.0},
    }
    got = {t["name"]: t for t in gpu.targets(report, gpu=True)}
    assert got["bandwidth"]["status"] == "MISS" and "mish bf16 nchw" in got["bandwidth"]["detail"]
    assert got["bandwidth"]["value"] == 0.80
    assert got["prelu-vs-relu"]["status"] == "PASS" and got["prelu-vs-relu"]["value"] == 1.08
    assert got["resnet56-prelu"]["status"] == "PASS"
    slower = got["not-slower-than-eager"]
    assert slower["status"] == "MISS" and "gelu fp32 nchw 64K fwd 1.30x" in slower["detail"]
    study = got["study-throughput"]
    assert study["status"] == "MISS" and "scaled from 5 of 15 runs" in study["detail"]
    assert got["command-time"]["status"] == "PASS"
    report["stages"]["study"]["ratio"] = 0.30
    report["stages"]["train"]["rows"][0]["ratio_to_relu"] = 0.90
    got = {t["name"]: t for t in gpu.targets(report, gpu=True)}
    assert got["study-throughput"]["status"] == "PASS" and got["resnet56-prelu"]["status"] == "MISS"
    del report["stages"]["train"]
    assert {t["name"]: t for t in gpu.targets(report, gpu=True)}["resnet56-prelu"]["status"] == "N/A"


def test_bench_gpu_refuses_an_unknown_stage(tmp_path) -> None:
    assert main(["bench", "gpu", "--device", "cpu", "--out", str(tmp_path), "--skip", "kernel"]) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="the reduced form is for machines without a GPU")
def test_rectlab_bench_gpu_reduced_form(tmp_path, capsys, has_triton: bool) -> None:
    """`rectlab bench gpu --device cpu`: every stage runs from the installed package, both reports are written."""
    assert main(["bench", "gpu", "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "selfcheck:" in out and "kernels:" in out and "train:" in out and "gpu-report.md" in out
    report = json.loads((tmp_path / "gpu-report.json").read_text())
    assert report["environment"]["torch"] == torch.__version__ and "commit" not in report["environment"]
    stages = report["stages"]
    assert list(stages) == list(gpucheck.STAGES)
    if has_triton:
        checks = stages["selfcheck"]["results"]
        assert stages["selfcheck"]["status"] == "passed" and {c["op"] for c in checks} == {"relu", "prelu"}
    rows = stages["kernels"]["rows"]
    assert {(r["activation"], r["impl"]) for r in rows} == {
        (a, i) for a in ("relu", "prelu") for i in ("rectlab", "torch")
    }
    assert {(r["dtype"], r["layout"]) for r in rows} == {
        (d, lay) for d in ("fp32", "bf16") for lay in ("nchw", "channels_last")
    }
    assert all(r["ms"] > 0 for r in rows)
    train = stages["train"]["rows"]
    assert {(r["activation"], r["impl"]) for r in train} == {
        (a, i) for a in ("relu", "prelu", "gelu") for i in ("rectlab", "torch")
    }
    md = (tmp_path / "gpu-report.md").read_text()
    assert md.startswith("# rectlab GPU report: cpu") and "Reduced CPU form" in md and "## Training step" in md
