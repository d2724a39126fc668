"""Property-based fuzzing of what users type: every TOML spec and every command line either runs (here: passes
``--dry-run``, which validates everything a run would) or ends with one line saying what is wrong, never a
Python traceback. Examples are bounded so the suite stays fast."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rectlab.cli.main import main

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
counter = itertools.count()

# -- a tiny TOML writer (the standard library only reads TOML) --------------------------------------------


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"


def toml_document(doc: dict) -> str:
    lines = []
    for section, table in doc.items():
        if not isinstance(table, dict):
            lines.append(f"{section} = {toml_value(table)}")
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0, 10**9, 2**63 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(
        [
            "relu",
            "prelu",
            "elu",
            "relux",
            "mlp",
            "small-cnn",
            "resnet9",
            "digits",
            "digitz",
            "cpu",
            "cuda",
            "sgd",
            "adam",
            "cosine",
            "0.1",
            "",
            "he",
            "last",
        ]
    ),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["slope", "beta", "x"]), scalars, max_size=2),
)
BASE_KEYS = [
    "model",
    "activation",
    "dataset",
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "train_limit",
    "test_limit",
    "seed",
    "schedule",
    "optimizer",
    "warmup_epochs",
    "label_smoothing",
    "erase_relu",
    "erase_location",
    "init",
    "device",
    "augment",
    "activation_kwargs",
    "model_kwargs",
    "step_milestones",
    "epocs",
    "learning_rate",
]
STUDY_KEYS = ["name", "seeds", "baseline", "metric", "probes", "seed", "description"]
sections = st.fixed_dictionaries(
    {},
    optional={
        "study": st.dictionaries(st.sampled_from(STUDY_KEYS), values, max_size=3),
        "base": st.dictionaries(st.sampled_from(BASE_KEYS), values, max_size=5),
        "grid": st.dictionaries(st.sampled_from(BASE_KEYS), st.lists(scalars, max_size=3) | scalars, max_size=2),
        "scales": st.just({"quick": {"epochs": 1}}),
        "extra": values,
    },
)
# Start from a valid tiny spec and let hypothesis replace parts, so many examples get deep into validation.
VALID = {
    "study": {"seeds": 1},
    "base": {"model": "mlp", "dataset": "digits", "epochs": 1, "device": "cpu"},
    "grid": {"activation": ["relu", "elu"]},
}


def one_line_error_or_success(rc: int, err: str) -> None:
    assert "Traceback" not in err, err
    if rc == 0:
        return
    assert rc == 2, (rc, err)
    first, *rest = err.strip().splitlines()
    assert first.startswith("rectlab: error: ") and rest == ["(run with --debug for the full traceback)"], err


@FUZZ
@given(doc=sections, keep_valid=st.booleans(), cut=st.integers(0, 400))
def test_any_toml_spec_runs_or_gives_one_line(doc, keep_valid, cut, tmp_path_factory, capsys) -> None:
    if keep_valid:
        doc = {k: {**VALID.get(k, {}), **v} if isinstance(v, dict) else v for k, v in {**VALID, **doc}.items()}
    text = toml_document(doc)
    if cut % 7 == 0:  # sometimes a truncated file
        text = text[: cut % (len(text) + 1)]
    folder = tmp_path_factory.mktemp("fuzz")
    spec = folder / "s.toml"
    spec.write_text(text)
    rc = main(["run", str(spec), "--out", str(folder / "out"), "--dry-run", "--no-progress"])
    one_line_error_or_success(rc, capsys.readouterr().err)


# flag: (valid values, invalid values); a fourth of the draws take an invalid one.
POSITIVE = (["1", "2", "3"], ["0", "-1", "x", "", "nan", "1000000000"])
FLOATS = (["0.01", "0.5", "0"], ["nan", "inf", "-inf", "x", "-1", "1e9"])
FLAGS = {
    "--activations": (["relu", "relu,elu", "elu,prelu"], ["relux", ",", "prelu,prelu"]),
    "--baseline": (["relu"], ["elu", "nope"]),
    "--model": (["mlp", "mlp,small-cnn"], ["resnet9"]),
    "--dataset": (["digits"], ["digitz"]),
    "--seeds": (["1", "2"], ["0", "-2", "1000000000"]),
    "--epochs": POSITIVE,
    "--batch-size": POSITIVE,
    "--train-limit": POSITIVE,
    "--test-limit": POSITIVE,
    "--workers": POSITIVE,
    "--threads": POSITIVE,
    "--lr": FLOATS,
    "--weight-decay": FLOATS,
    "--warmup-epochs": FLOATS,
    "--label-smoothing": FLOATS,
    "--gpus-per-run": FLOATS,
    "--erase-relu": (["0", "0,1"], ["1.5", "nan", "x"]),
    "--init": (["he", "default,xavier"], ["kaiming"]),
    "--optimizer": (["sgd", "adamw"], ["adam"]),
    "--schedule": (["step", "constant"], ["linear"]),
    "--device": (["cpu"], ["cuda", "tpu", "cuda:7"]),
    "--executor": (["local", "processes"], ["dask"]),
    "--data-dir": ([], ["/nonexistent/data"]),
}


@FUZZ
@given(
    flags=st.dictionaries(st.sampled_from(sorted(FLAGS)), st.integers(0, 23), max_size=4), out_is_file=st.integers(0, 9)
)
def test_any_compare_command_line_runs_or_gives_one_line(flags, out_is_file, tmp_path_factory, capsys) -> None:
    folder = tmp_path_factory.mktemp("cli")
    out = folder / "out"
    if out_is_file == 0:
        out.write_text("not a directory")
    argv = [
        "compare",
        "--out",
        str(out),
        "--dry-run",
        "--no-progress",
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--device",
        "cpu",
    ]
    for flag, i in flags.items():
        valid, invalid = FLAGS[flag]
        choices = invalid if i % 4 == 0 or not valid else valid
        argv += [flag, choices[i // 4 % len(choices)]]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse: usage and one error line, exit status 2
        err = capsys.readouterr().err
        assert e.code == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("rectlab compare: ")
        return
    one_line_error_or_success(rc, capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "nan"], "argument --lr: expected a finite number, got 'nan'"),
        (["--weight-decay", "nan"], "argument --weight-decay: expected a finite number"),
        (["--lr", "inf"], "argument --lr: expected a finite number, got 'inf'"),
        (["--train-limit", "0"], "argument --train-limit: expected a number >= 1, got '0' (0 does not mean 'all')"),
        (["--test-limit", "0"], "argument --test-limit: expected a number >= 1"),
    ],
)
def test_inputs_once_accepted_silently_are_refused(argv, message, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["compare", "--out", str(tmp_path), "--dry-run", *argv])
    assert message in capsys.readouterr().err
