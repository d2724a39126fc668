"""Plugins: a third-party model and activation, registered by an imported module (--import, a spec's imports)
or an installed package's ``rectlab.plugins`` entry point, are seen by the CLI and by study worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rectlab.cli.main import main
from rectlab.plugins import PluginError, import_modules, normalize_imports
from rectlab.study import SpecError, Store, parse_spec

PLUGIN = textwrap.dedent('''
    import torch
    from torch import nn
    from rectlab.activations import ACTIVATIONS, Activation
    from rectlab.models import MODELS

    @ACTIVATIONS.register("{act}")
    class Cube(Activation):
        """x cubed, clipped: a made-up activation from a plugin."""
        def forward(self, x):
            return torch.clamp(x, -2, 2) ** 3

    @MODELS.register("{model}")
    class TinyNet(nn.Module):
        """A two-layer MLP from a plugin."""
        def __init__(self, activation="relu", num_classes=10, in_channels=1):
            super().__init__()
            from rectlab.activations import factory
            self.flat = nn.Flatten()
            self.fc1 = nn.LazyLinear(32)
            self.act = factory(activation)(32)
            self.fc2 = nn.Linear(32, num_classes)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(self.flat(x))))
''')

TINY = [
    "--dataset",
    "digits",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--train-limit",
    "128",
    "--test-limit",
    "64",
    "--device",
    "cpu",
    "--no-progress",
    "--seeds",
    "1",
]


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    path = tmp_path / "rl_test_plugin.py"
    path.write_text(PLUGIN.format(act="plugin-cube", model="plugin-tinynet"))
    return path


@pytest.mark.slow
def test_import_option_reaches_worker_processes(plugin_file, tmp_path, capsys):
    out = tmp_path / "study"
    rc = main(
        [
            "compare",
            "--import",
            str(plugin_file),
            "--model",
            "plugin-tinynet",
            "--activations",
            "relu,plugin-cube",
            "--executor",
            "processes",
            "--workers",
            "1",
            "--out",
            str(out),
            *TINY,
        ]
    )
    assert rc == 0, capsys.readouterr()
    runs = Store(out / "results.db").runs()
    assert sorted(r["config"]["activation"] for r in runs) == ["plugin-cube", "relu"]
    assert all(r["status"] == "done" for r in runs), [r["error"] for r in runs]
    assert "imports" not in Store(out / "results.db").spec()["study"]  # where names come from is not the study


def test_spec_imports_register_names_before_they_are_checked(tmp_path, monkeypatch):
    (tmp_path / "rl_spec_plugin.py").write_text(PLUGIN.format(act="spec-cube", model="spec-tinynet"))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = parse_spec(
        '[study]\nimports = ["rl_spec_plugin"]\n[base]\nmodel = "spec-tinynet"\n'
        '[grid]\nactivation = ["relu", "spec-cube"]\n'
    )
    assert spec.extra["imports"] == ["rl_spec_plugin"]
    same = parse_spec('[base]\nmodel = "spec-tinynet"\n[grid]\nactivation = ["relu", "spec-cube"]\n')
    assert spec.digest == same.digest  # where the names come from is not what the study computes
    with pytest.raises(SpecError, match=r"line 2\).*no module named 'rl_not_there'"):
        parse_spec('[study]\nimports = ["rl_not_there"]\n[base]\nmodel = "mlp"\n')


def test_bad_import_is_one_clear_line(capsys):
    assert main(["--import", "rl_no_such_module", "list", "models"]) == 2
    err = capsys.readouterr().err
    assert "no module named 'rl_no_such_module'" in err and "Traceback" not in err
    with pytest.raises(PluginError, match="no such file"):
        import_modules("/nonexistent/plugin.py")
    assert normalize_imports(["a,b", "b", " c "]) == ["a", "b", "c"]


def test_entry_point_plugins_load_on_first_lookup(tmp_path):
    # An installed distribution, as pip leaves it: a module plus a dist-info folder declaring the entry point.
    (tmp_path / "rl_ep_plugin.py").write_text(
        PLUGIN.format(act="ep-cube", model="ep-tinynet") + "\nREGISTERED = True\ndef register():\n    pass\n"
    )
    info = tmp_path / "rl_ep_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rl-ep-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rectlab.plugins]\nrl_ep = rl_ep_plugin:register\n")
    code = (
        "import torch; from rectlab import models, activations\n"
        "m = models.create('ep-tinynet', activation='ep-cube', num_classes=3)\n"
        "print(m(torch.randn(2, 1, 8, 8)).shape, 'ep-cube' in activations.names())\n"
        "from rectlab.cli.main import main; main(['list', 'models'])\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[1] / "src")]),
        "COLUMNS": "150",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, listing = done.stdout.split("\n", 1)
    assert first.split() == ["torch.Size([2,", "3])", "True"]
    assert "ep-tinynet" in listing and "two-layer MLP from a plugin" in listing


PLAIN_PLUGIN = textwrap.dedent('''
    import torch
    from torch import nn
    from rectlab.activations import ACTIVATIONS

    @ACTIVATIONS.register("plain-softsign")
    class PlainSoftsign(nn.Module):
        """x / (1 + |x|) / scale: a plain nn.Module that knows nothing of rectlab's backend= or inplace=."""
        def __init__(self, scale=1.0):
            super().__init__()
            self.scale = scale

        def forward(self, x):
            return x / (1 + x.abs()) / self.scale
''')


def test_a_plain_module_plugin_works_in_a_study_with_parameters(tmp_path):
    """The user's path: a plain nn.Module registered by a plugin file, named with a parameter, in `compare` run as
    a fresh process (training passes backend= only to activations that take it)."""
    (tmp_path / "softsign_plugin.py").write_text(PLAIN_PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "COLUMNS": "150"}
    cmd = [
        sys.executable,
        "-m",
        "rectlab",
        "--import",
        "softsign_plugin.py",
        "compare",
        "--activations",
        "relu,plain-softsign:scale=2",
        "--model",
        "mlp",
        "--model-kwargs",
        "hidden=16",
        "--executor",
        "local",
        "--out",
        "study",
        *TINY,
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = Store(tmp_path / "study" / "results.db").runs()
    assert {r["config"]["activation"]: r["status"] for r in runs} == {"relu": "done", "plain-softsign:scale=2": "done"}
    assert all(r["config"]["model_kwargs"] == {"hidden": 16} for r in runs)
