"""ONNX export: rectlab activations in standard ONNX operators (PRelu with a [C,1,1] slope, SmeLU, HeLU's
forward, Swish with a learned beta), fused ops in their reference form, checked with onnxruntime."""

from __future__ import annotations

import pytest
import torch

from rectlab import activations, models
from rectlab.cli.main import main
from rectlab.surgery import activation_sites

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rectlab.export import dataset_samples, export_onnx, onnx_ready  # noqa: E402
from rectlab.study.trained import load_run_model  # noqa: E402

X = torch.randn(3, 1, 12, 12)


def trained_like(activation: str, **kwargs) -> torch.nn.Module:
    """A small CNN whose learned activation parameters are not at their init (as after training)."""
    torch.manual_seed(0)
    net = models.create("small-cnn", activation=activation, in_channels=1, **kwargs)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith((".weight", ".beta")) and p.dim() == 1 and "act" in name:
                p.copy_(torch.rand_like(p) * 1.5)
    return net.eval()


def run_onnx(path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def graph_ops(path) -> tuple[set[str], set[str]]:
    g = onnx.load(str(path)).graph
    return {n.op_type for n in g.node}, {n.domain for n in g.node}


@pytest.mark.parametrize(
    ("activation", "expected_op"),
    [
        ("prelu", "PRelu"),
        ("prelu-shared", "PRelu"),
        ("smelu", "Where"),
        ("helu", "Relu"),
        ("swish-learnable", "Sigmoid"),
        ("swish-channelwise", "Sigmoid"),
        ("rrelu", "LeakyRelu"),
        ("gelu", "Erf"),
    ],
)
def test_standard_ops_and_onnxruntime_matches_eager(tmp_path, activation, expected_op):
    net = trained_like(activation)
    result = export_onnx(net, tmp_path / "net.onnx", X)
    ops, domains = graph_ops(result.path)
    assert expected_op in ops and domains <= {"", "ai.onnx"}  # no rectlab::* custom ops
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    other = torch.randn(7, 1, 12, 12)  # the batch dimension is dynamic
    with torch.no_grad():
        torch.testing.assert_close(run_onnx(result.path, other), net(other), atol=1e-4, rtol=1e-4)


def test_channelwise_prelu_slope_has_shape_c11(tmp_path):
    net = trained_like("prelu")
    path = export_onnx(net, tmp_path / "p.onnx", X).path
    g = onnx.load(str(path)).graph
    initializers = {i.name: list(i.dims) for i in g.initializer}
    slopes = [initializers[n.input[1]] for n in g.node if n.op_type == "PRelu"]
    sites = activation_sites(net, X)
    assert slopes == [[s.channels, 1, 1] if len(s.shape) == 4 else [s.channels] for s in sites]
    assert [len(s.shape) for s in sites] == [4, 4, 4, 2]  # three conv layers, then the dense one


def fused(net: torch.nn.Module) -> torch.nn.Module:
    """As a model trained on a GPU with the fused Triton kernels: every activation asks for them."""
    for m in net.modules():
        if isinstance(m, activations.Activation):
            m.backend = "triton"
    return net


def test_helu_exports_its_forward_and_fused_backends_fall_back(tmp_path):
    net = fused(trained_like("helu"))
    ready = onnx_ready(net)
    assert not any(isinstance(m, activations.HeLU) for m in ready.modules())
    assert all(m.backend == "triton" for m in net.modules() if isinstance(m, activations.HeLU)), "model unchanged"
    result = export_onnx(net, tmp_path / "h.onnx", X)
    assert "Relu" in graph_ops(result.path)[0] and result.max_abs_diff < 1e-4
    swish = fused(trained_like("swish-learnable"))
    if not torch.cuda.is_available():
        with pytest.raises((RuntimeError, TypeError)):
            swish(X)  # the fused kernel cannot run here ...
    result = export_onnx(swish, tmp_path / "s.onnx", X)  # ... the export uses the reference form
    assert "Sigmoid" in graph_ops(result.path)[0] and result.max_abs_diff < 1e-4


def test_tv_model_with_prelu(tmp_path):
    net = models.create(
        "tv:resnet18", activation="prelu", num_classes=10, in_channels=1, example_input=torch.zeros(2, 1, 16, 16)
    ).eval()
    result = export_onnx(net, tmp_path / "r.onnx", torch.randn(2, 1, 16, 16))
    assert result.max_abs_diff < 1e-3 and "PRelu" in graph_ops(result.path)[0]


@pytest.mark.slow
def test_dynamo_exporter(tmp_path):
    pytest.importorskip("onnxscript")
    result = export_onnx(trained_like("prelu"), tmp_path / "d.onnx", X, exporter="dynamo")
    assert result.exporter == "dynamo" and result.max_abs_diff < 1e-4
    assert "PRelu" in graph_ops(result.path)[0]


def test_export_model_from_a_study_checkpoint(tmp_path, capsys):
    out = tmp_path / "study"
    assert (
        main(
            [
                "compare",
                "--activations",
                "smelu",
                "--model",
                "small-cnn",
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
                "--seeds",
                "1",
                "--device",
                "cpu",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    (checkpoint,) = (out / "runs").glob("*/checkpoint.pt")
    assert main(["export-model", str(checkpoint), "--onnx", str(tmp_path / "m.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "torchscript exporter; onnxruntime matches PyTorch on 16 test images of digits" in printed
    assert "<= tolerance 0.0001" in printed
    state = torch.load(checkpoint, weights_only=False)["model"]
    net = models.create("small-cnn", activation="smelu", num_classes=10, in_channels=1)
    net.load_state_dict(state)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(run_onnx(tmp_path / "m.onnx", x), net.eval()(x), atol=1e-4, rtol=1e-4)
    assert main(["export-model", str(tmp_path / "nowhere.pt"), "--onnx", "x.onnx"]) == 2
    assert "pass a checkpoint.pt that rectlab wrote" in capsys.readouterr().err


def test_default_mlp_from_train_out_falls_back_to_dynamo(tmp_path, capsys):
    """The default model pools 8x8 digits to 28x28, which the TorchScript exporter cannot express: auto falls back
    to the dynamo exporter, quietly (no TorchScript IR printed), and checks the file on real test images."""
    pytest.importorskip("onnxscript")
    run = tmp_path / "one"
    assert (
        main(
            [
                "train",
                "--model",
                "mlp",
                "--activation",
                "prelu",
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
                "--out",
                str(run),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["export-model", str(run), "--samples", "8"]) == 0
    captured = capsys.readouterr()
    assert "with the dynamo exporter (TorchScript exporter failed: " in captured.out
    assert "adaptive_avg_pool2d" in captured.out and "Torch IR" not in captured.out + captured.err
    assert "on 8 test images of digits" in captured.out
    net, example, config = load_run_model(run)
    assert config.activation == "prelu" and tuple(example.shape[1:]) == (1, 8, 8)
    x = dataset_samples(config, 8)
    with torch.no_grad():
        torch.testing.assert_close(run_onnx(run / "model.onnx", x), net(x), atol=1e-4, rtol=1e-4)
    assert main(["export-model", str(run), "--onnx", str(tmp_path / "t.onnx"), "--exporter", "torchscript"]) == 2
    err = capsys.readouterr().err
    assert "no ONNX exporter succeeded: torchscript: " in err and len(err.splitlines()) == 2


def test_any_module_exports_with_random_inputs_of_a_shape(tmp_path):
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 5), activations.create("smelu:beta=0.5"), torch.nn.Linear(5, 3)
    )
    result = export_onnx(net, tmp_path / "any.onnx", input_shape=(3, 4))
    assert result.checked_on == "8 random inputs of shape (3, 4)" and result.max_abs_diff <= result.atol == 1e-4
    assert "tolerance 0.0001" in result.describe() and "Where" in graph_ops(result.path)[0]
    with pytest.raises(ValueError, match="input_shape"):
        export_onnx(net, tmp_path / "none.onnx")
