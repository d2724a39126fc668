"""``rectlab bench gpu``: the reduced CPU form runs every stage and writes both reports; targets are judged right."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from rectlab.bench import gpu

HAS_TRITON = importlib.util.find_spec("triton") is not None


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the reduced form is for machines without a GPU")
def test_reduced_form_writes_both_reports(tmp_path, capsys) -> None:
    from rectlab.cli.main import main

    argv = ["bench", "gpu", "--device", "cpu", "--out", str(tmp_path)]
    argv += ["--pytest-args", "tests/test_train_step.py -m gpu"]  # one small file: the stage, not the suite
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "gpu-report.json" in text

    report = json.loads((tmp_path / "gpu-report.json").read_text())
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["device"].startswith("cpu") and env["date"]
    stages = report["stages"]
    assert list(stages) == list(gpu.STAGES)
    assert stages["tests"]["status"] == "passed" and stages["tests"]["counts"].get("skipped", 0) >= 1
    if HAS_TRITON:
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
    return {"activation": activation, "dtype": dtype, "layout": layout, "shape": shape, "mode": mode, "impl": impl,
            "ms": ms, "frac_copy_bw": frac, "ratio_to_relu": to_relu, "ratio_to_eager": to_eager, "numel": numel}


def test_targets_pass_and_miss_on_a_gpu_report() -> None:
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
            "train": {"rows": [{"model": "resnet56", "impl": "rectlab", "activation": "prelu", "images_per_s": 21000.0,
                                "ratio_to_relu": 0.96}]},  # fmt: skip
            "study": {"ratio": 0.4, "runs": 15, "plain_runs": 5, "workers": 5, "rectlab_seconds": 78.0,
                      "plain_seconds_all": 195.0},  # fmt: skip
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


def test_unknown_stage_is_refused(tmp_path) -> None:
    from rectlab.cli.main import main

    assert main(["bench", "gpu", "--device", "cpu", "--out", str(tmp_path), "--skip", "kernel"]) == 2
