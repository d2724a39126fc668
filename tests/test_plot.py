"""rectlab.report.plots.activation and `rectlab plot`: activations and their derivatives from rectlab's modules; HeLU's
backward shown as the surrogate gradient it is."""

from __future__ import annotations

import pytest
import torch

from rectlab.activations import functional as AF
from rectlab.activations import parse_spec
from rectlab.cli.main import main
from rectlab.report.plots import activation, activation_curve


def test_function_and_autograd_derivative_of_the_modules():
    c = activation_curve("smelu:beta=0.5", points=401)
    torch.testing.assert_close(c.y, AF.smelu(c.x, 0.5))
    torch.testing.assert_close(c.grad, torch.clamp((c.x + 0.5) / 1.0, 0, 1))  # SmeLU's gradient (Shamir et al.)
    assert not c.surrogate and c.label == "smelu (beta=0.5)"
    prelu = activation_curve("prelu", params={"a": 0.1})
    torch.testing.assert_close(prelu.grad, torch.where(prelu.x > 0, 1.0, 0.1).double())
    assert not activation_curve("relu").surrogate  # a kink at 0 is not a surrogate


@pytest.mark.parametrize("alpha", [0.05, 0.5])
def test_helu_backward_is_a_surrogate_gradient(alpha):
    c = activation_curve(f"helu:alpha={alpha}")
    torch.testing.assert_close(c.y, torch.relu(c.x))  # the forward is ReLU ...
    band = (c.x > -alpha) & (c.x < -1e-5)  # away from the kink at 0
    assert band.any()
    assert torch.all(c.grad[band] == 1) and torch.all(c.forward_derivative[band].abs() < 1e-6)  # ... its backward not
    assert c.surrogate


def test_figure_with_several_activations_and_derivative(tmp_path):
    fig = activation(["relu", "helu", "swish:beta=2"], derivative=True, out=tmp_path / "a.svg")
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()][:3] == ["relu", "helu", "swish (beta=2)"]
    labels = [line.get_label() for line in right.get_lines()]
    assert "helu backward (surrogate gradient)" in labels and "helu: d/dx of forward" in labels
    assert (tmp_path / "a.svg").read_text().startswith("<?xml")


def test_cli_plot(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["plot", "prelu", "leaky-relu", "elu", "--param", "a=0.25", "--derivative", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", "relu", "--param", "beta=2", "--out", str(out)]) == 2
    assert "no activation among relu takes the parameter 'beta'" in capsys.readouterr().err
    assert main(["plot", "smelu:bogus=1", "--out", str(out)]) == 2
    assert "smelu takes: beta" in capsys.readouterr().err
    assert main(["plot", "reluu", "--out", str(out)]) == 2
    assert "unknown activation 'reluu'" in capsys.readouterr().err
    # the comma list of compare, with parameters kept with their activation
    assert main(["plot", "relu,smelu:beta=0.5,gelu", "helu:alpha=0.5", "--out", str(out)]) == 0


def test_parse_spec():
    assert parse_spec("swish:beta=1.5,learnable=true") == ("swish", {"beta": 1.5, "learnable": True})
    with pytest.raises(ValueError, match="key=value"):
        parse_spec("smelu:0.5")
