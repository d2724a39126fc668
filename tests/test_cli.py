"""The command line as a user runs it: compare -> table + report, run, report, list, env, errors."""

from __future__ import annotations

import pytest

from rectlab.cli.main import main

TINY = [
    "--model",
    "small-cnn",
    "--dataset",
    "digits",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--no-progress",
    "--executor",
    "local",
]


def test_compare_end_to_end_and_rerun(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "cmp"
    rc = main(["compare", "--activations", "relu,smelu", "--seeds", "3", "--out", str(out), *TINY])
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
    spec.write_text(
        '[study]\nseeds = 1\n[base]\nmodel = "mlp"\ndataset = "digits"\nepochs = 1\ndevice = "cpu"\n'
        '[grid]\nactivation = ["relu", "elu"]\n'
    )
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


def test_the_bad_inputs_of_issue_10_give_one_line_before_training(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "results.db").write_bytes(b"\x00garbage" * 512)
    quoted = tmp_path / "quoted.toml"
    quoted.write_text('[base]\nmodel = "mlp"\ndataset = "digits"\nlr = "0.1"\n')
    cases = [
        (["compare", "--out", str(tmp_path / "file"), *TINY], "is a file, not a directory"),
        (["compare", "--out", str(corrupt), *TINY], "is not a readable rectlab results database"),
        (["report", str(corrupt)], "is not a readable rectlab results database"),
        (["run", str(quoted), "--out", str(tmp_path / "q")], "lr must be a number, got '0.1' (str)"),
        (["compare", "--seeds", "1000000000", "--out", str(tmp_path / "s"), *TINY], "seeds must be at most 10000"),
        (["compare", "--out", str(tmp_path / "d"), *TINY, "--data-dir", str(tmp_path / "nope")], "does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "s").exists() and not (tmp_path / "d" / "results.db").exists()


def test_dry_run_validates_and_trains_nothing(tmp_path, capsys) -> None:
    out = tmp_path / "dry"
    assert main(["compare", "--activations", "relu,elu", "--seeds", "2", "--out", str(out), "--dry-run", *TINY]) == 0
    assert "4 runs (2 cells x 2 seeds), 4 to train; nothing was trained" in capsys.readouterr().out
    assert not out.exists()


def test_train_command_trains_one_run_and_resumes(tmp_path, capsys) -> None:
    import json

    argv = [
        "train",
        "--model",
        "mlp",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "mlp / relu on digits: test error" in out
    first = json.loads((tmp_path / "metrics.json").read_text())
    assert [m["epoch"] for m in first["metrics"]] == [1, 2] and first["processes"] == 1
    assert main(argv) == 0  # the checkpoint holds both epochs: nothing is trained again
    assert "epoch 1/2" not in capsys.readouterr().out
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == first["metrics"]


def test_numeric_flags_take_comma_lists_that_become_grid_axes() -> None:
    from rectlab.cli.compare import build_spec
    from rectlab.cli.main import build_parser
    from rectlab.study import cells, spec_from_dict

    args = build_parser().parse_args(
        [
            "compare",
            "--activations",
            "relu,prelu",
            "--lr",
            "0.01,0.05",
            "--epochs",
            "3",
            "--batch-size",
            "32,64",
            "--train-limit",
            "500",
            "--out",
            "x",
        ]
    )
    spec = spec_from_dict(build_spec(args))
    assert spec.grid == {"activation": ("relu", "prelu"), "batch_size": (32, 64), "lr": (0.01, 0.05)}
    assert (spec.base.epochs, spec.base.train_limit) == (3, 500)
    assert len(cells(spec)) == 8
    assert spec.baseline == {"activation": "relu"}  # compared within each (lr, batch size)
    adamw = spec_from_dict(build_spec(build_parser().parse_args(["compare", "--optimizer", "adamw", "--out", "x"])))
    assert adamw.base.lr == 1e-3 and "lr" not in adamw.grid


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--lr", "0.1,abc", "--out", "x"], "expected a number, got 'abc'"),
        (["compare", "--epochs", "2.5", "--out", "x"], "expected a whole number, got '2.5'"),
        (["compare", "--batch-size", "64,0", "--out", "x"], "expected a number >= 1, got '0'"),
    ],
)
def test_bad_lists_are_refused_by_the_parser(argv, message, capsys) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_a_value_twice_is_an_error(capsys) -> None:
    assert main(["compare", "--lr", "0.1,0.1", "--out", "x"]) == 2
    assert "--lr lists a value twice" in capsys.readouterr().err


def test_version_help_and_list_answer_without_importing_torch(tmp_path) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import contextlib, io, sys\nfrom rectlab.cli.main import main\n"
        "for argv in (['--version'], ['--help'], ['compare', '--help'], ['list'], ['list', 'datasets']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        try:\n            main(argv)\n        except SystemExit:\n            pass\n"
        "    print(argv, len(out.getvalue()) > 0, 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5 and all(line.endswith("True False") for line in lines), lines


def test_parsers_offer_the_librarys_choices_and_the_catalogue_is_current() -> None:
    import json

    from rectlab.cli import common, listing, parsers
    from rectlab.study import EXECUTORS
    from rectlab.study.spec import SCALES
    from rectlab.training import config, tracking

    assert (common.OPTIMIZERS, common.SCHEDULES, common.AMP_MODES) == (
        config.OPTIMIZERS,
        config.SCHEDULES,
        config.AMP_MODES,
    )
    assert (common.EXECUTORS, parsers.SCALES, parsers.INITS) == (EXECUTORS, SCALES, config.INITS)
    assert common.TRACKERS == tracking.TRACKERS
    assert json.loads(listing.CATALOG.read_text()) == listing.catalog(), (
        "src/rectlab/cli/catalog.json is out of date: run python -m rectlab.cli.listing"
    )


def test_every_subcommand_help_shows_examples() -> None:
    from rectlab.cli.main import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "examples:" in parser.format_help()
    for name, command in commands.items():
        text = command.format_help()
        assert "examples:" in text and f"rectlab {name}" in text.split("examples:")[1], name


def test_compare_without_out_writes_a_default_folder_and_takes_parameters(tmp_path, capsys, monkeypatch) -> None:
    from rectlab.study import Store

    monkeypatch.chdir(tmp_path)
    argv = [
        "compare",
        "--activations",
        "relu,smelu:beta=0.50",
        "--model-kwargs",
        "hidden=32",
        "--seeds",
        "1",
        "--train-limit",
        "256",
        "--test-limit",
        "128",
        *TINY[2:],
    ]  # mlp (the default) on digits
    assert main(argv) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "runs" / "compare-relu-smelu_beta=0.5-mlp-digits"
    assert "study folder: runs/compare-relu-smelu_beta=0.5-mlp-digits (the default; --out DIR chooses another)" in out
    assert f"report: {folder / 'report.html'}" in out
    runs = Store(folder / "results.db").runs()
    assert sorted(r["config"]["activation"] for r in runs) == ["relu", "smelu:beta=0.5"]
    assert {r["config"]["model_kwargs"]["hidden"] for r in runs} == {32}
    assert all((folder / "runs" / r["hash"] / "metrics.csv").is_file() for r in runs)  # a CSV log per run


def test_compare_says_did_you_mean_and_list_shows_what_users_need(capsys) -> None:
    assert main(["compare", "--activations", "relu,prelux", "--out", "x"]) == 2
    assert "Did you mean 'prelu'?" in capsys.readouterr().err
    assert main(["compare", "--dataset", "fashion-mnst", "--out", "x"]) == 2
    assert "Did you mean 'fashion-mnist'?" in capsys.readouterr().err
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    assert "Fashion-MNIST" in out and "IDX files" not in out and "``" not in out  # not the loaders' docstrings
    assert main(["list", "activations"]) == 0
    assert "beta=1.0" in capsys.readouterr().out  # the parameters NAME:key=value can set


def test_env_reports_the_cpu_functions(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("RECTLAB_BACKEND", raising=False)
    assert main(["env"]) == 0
    rows = {
        line.split()[0]: line.split()[1]
        for line in capsys.readouterr().out.splitlines()
        if len(line.split()) > 2 and line.split()[1] in ("cpu", "torch", "triton")
    }
    from rectlab.activations.cpu import CPU_OPS

    assert {op for op, runs in rows.items() if runs == "cpu"} == set(CPU_OPS)
    assert rows["gelu"] == "torch" and rows["prelu"] == "cpu" and rows["mish"] == "cpu"
