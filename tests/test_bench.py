"""rectlab.bench: each ``rectlab bench`` subcommand runs end to end at a tiny size.

Benchmarks measure and print; these smoke runs check that they run and report every case they were
asked for. They assert nothing about speed.
"""

from __future__ import annotations

from rectlab.cli.bench import BENCHES
from rectlab.cli.main import main


def test_every_bench_subcommand_has_a_smoke_test() -> None:
    assert sorted(BENCHES) == sorted(name.removeprefix("test_bench_").removesuffix("_smoke") for name in globals()
                                     if name.startswith("test_bench_") and name.endswith("_smoke"))


def test_bench_kernels_smoke(tmp_path, capsys) -> None:
    from rectlab.bench import kernels as bench

    out = tmp_path / "bench.csv"
    argv = ["--activations", "prelu", "--dtypes", "fp32", "--sizes", "4K", "--shape", "none", "--impls", "ours,eager"]
    argv += ["--repeats", "2", "--warmup", "0", "--device", "cpu", "--copy-mib", "8", "--csv", str(out)]
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    assert "copy bandwidth" in text and "prelu" in text
    lines = out.read_text().splitlines()
    assert lines[0].startswith("device,activation,dtype,shape,numel,mode,impl,ms")
    assert len(lines) == 1 + 2 * 2 * 2  # relu added for the ratios; 2 activations x 2 modes x 2 impls


def test_bench_train_smoke(capsys) -> None:
    rc = main(["bench", "train", "--models", "resnet20", "--activations", "relu,prelu", "--steps", "1",
               "--warmup", "0", "--batch-size", "4", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and "device: cpu" in out
    assert sum(line.startswith("resnet20") for line in out.splitlines()) == 4  # 2 activations x (rectlab, torch)


def test_bench_study_smoke(capsys) -> None:
    rc = main(["bench", "study", "--activations", "relu,prelu", "--seeds", "2", "--model", "mlp", "--dataset",
               "digits", "--epochs", "1", "--train-limit", "64", "--batch-size", "32", "--workers", "1",
               "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and "device: cpu" in out and "2 cells x 2 seeds = 4 runs" in out
    assert "plain sequential loop:" in out and "rectlab (1 concurrent runs):" in out and "time ratio" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["relu"], ["prelu"])}
    assert set(rows) == {"relu", "prelu"}
    assert all(len(r) == 8 and r[2] == r[5] == "±" for r in rows.values())  # plain mean ± std, ours mean ± std, p
