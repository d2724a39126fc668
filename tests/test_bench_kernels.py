"""``rectlab bench kernels`` on CPU: a smoke run of the four columns (it measures; it asserts nothing about speed)."""

from __future__ import annotations

import csv

import pytest

from rectlab.bench import kernels as bench


def test_cpu_columns_side_by_side(tmp_path, capsys) -> None:
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
            assert float(r["ratio_to_relu"]) == 1.0


def test_bad_shape_says_how_to_write_it() -> None:
    with pytest.raises(ValueError, match="128x16x28x28"):
        bench.main(["--device", "cpu", "--sizes", "none", "--shapes", "128by16", "--copy-mib", "8"])


def test_cpu_clock_needs_one_thread() -> None:
    import torch

    threads = torch.get_num_threads()
    try:
        with pytest.raises(ValueError, match="--threads 1"):
            bench.main(["--device", "cpu", "--threads", "2", "--clock", "cpu", "--sizes", "none", "--shapes", "4x4",
                        "--copy-mib", "8"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
