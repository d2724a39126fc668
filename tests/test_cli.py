"""The command line as a user runs it: compare -> table + report, run, report, list, env, errors."""

from __future__ import annotations

import pytest

from rectlab.cli.main import main

TINY = ["--model", "small-cnn", "--dataset", "digits", "--epochs", "1", "--batch-size", "64", "--device", "cpu",
        "--no-progress", "--executor", "local"]


def test_compare_end_to_end_and_rerun(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "cmp"
    rc = main(["compare", "--activations", "relu,smelu", "--seeds", "2", "--out", str(out), *TINY])
    text = capsys.readouterr().out
    assert rc == 0
    assert "smelu" in text and "baseline" in text and "report.html" in text
    assert "Minimum detectable effect" in text and "Not converged" in text  # 1 epoch cannot show a plateau
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert "Minimum detectable effect" in (out / "report.html").read_text()
    assert main(["report", str(out)]) == 0
    assert "smelu" in capsys.readouterr().out


def test_run_spec_file(tmp_path, capsys) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('[study]\nseeds = 1\n[base]\nmodel = "mlp"\ndataset = "digits"\nepochs = 1\ndevice = "cpu"\n'
                    '[grid]\nactivation = ["relu", "elu"]\n')
    assert main(["run", str(spec), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "elu" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--activations", "relu,prelux", "--out", "x"], "unknown activation 'prelux'"),
        (["compare", "--model", "resnet9", "--out", "x"], "unknown model 'resnet9'"),
        (["compare", "--activations", "relu", "--baseline", "elu", "--out", "x"], "--baseline 'elu' must be one of"),
        (["compare", "--seeds", "0", "--out", "x"], "--seeds must be >= 1"),
        (["report", "/nonexistent/dir"], "results.db not found"),
        (["run", "/nonexistent.toml"], "does not exist"),
    ],
)
def test_bad_input_gives_one_clear_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_list_and_env(capsys) -> None:
    assert main(["list", "activations"]) == 0
    out = capsys.readouterr().out
    assert "prelu-shared" in out and "smelu" in out
    assert main(["list", "models"]) == 0
    assert "resnet20" in capsys.readouterr().out
    assert main(["list", "datasets"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "digits" in out
