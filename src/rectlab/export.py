"""ONNX export of models with rectlab activations, in standard ONNX operators only.

[`export_onnx`][rectlab.export.export_onnx] exports a copy of the model in which every rectlab activation runs its
plain-torch reference form (never a fused Triton kernel or a ``rectlab::*`` custom op), so the file holds only
operators of the default ONNX domain:

* channel-wise PReLU (He et al. 2015) becomes ONNX ``PRelu`` with its slope shaped ``[C, 1, 1]`` (``[1]``
  channel-shared);
* HeLU (Kimhi et al. 2024) is ReLU in the forward pass (its shifted threshold only changes the backward),
  so it becomes ``Relu``; RReLU in evaluation mode is a leaky ReLU with the mean slope (``LeakyRelu``);
* SmeLU (Shamir et al. 2020) becomes ``Where``/``Pow``/arithmetic, Swish with a learned beta ``Sigmoid``
  and ``Mul`` with beta as an initializer, GELU ``Gelu`` or its ``Erf`` form, and so on.

Any ``nn.Module`` exports: rectlab's activations are rewritten as above, everything else is left to
``torch.onnx``. The exporter is chosen automatically: the TorchScript exporter first (it needs no onnxscript
and writes compact graphs), and the ``torch.export``-based dynamo exporter when TorchScript fails (an operator
it cannot express, such as an adaptive pooling whose output size does not divide its input size) or when the
file it wrote does not match PyTorch. The exported graph is then run with onnxruntime and compared with the
eager model (``check=True``): on the ``check_input`` given (real samples of the data), else on random inputs
of the right shape; the largest absolute difference and the tolerance are reported.

[load_run_model][rectlab.study.trained.load_run_model] rebuilds the trained model of any checkpoint
rectlab writes (``rectlab compare``, ``run`` and ``reproduce``: ``OUT/runs/<hash>/checkpoint.pt``;
``rectlab train --out OUT``: ``OUT/checkpoint.pt``) and `dataset_samples` gives real test images of its
dataset, normalized as in training; ``rectlab export-model CHECKPOINT --onnx out.onnx`` uses both::

    import torch
    from rectlab import models
    from rectlab.export import export_onnx

    net = models.create("small-cnn", activation="prelu", in_channels=1)
    result = export_onnx(net, "net.onnx", input_shape=(1, 28, 28))
    print(result.exporter, result.max_abs_diff, result.atol)
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import data as rdata
from .activations import HeLU, PReLU, RReLU
from .activations.modules import Activation
from .errors import InputError, MissingPackageError, RectlabError, UnavailableError

__all__ = ["EXPORTERS", "OnnxExport", "OnnxExportError", "dataset_samples", "export_onnx", "onnx_ready"]

EXPORTERS = ("auto", "torchscript", "dynamo")


class OnnxExportError(RectlabError, RuntimeError):
    """No exporter wrote a file that matches PyTorch; the message gives each exporter's reason."""


class _PReLUExport(nn.Module):
    """PReLU in the form ONNX knows (``PRelu``), sharing the trained slope tensor."""

    def __init__(self, weight: Tensor, dim: int) -> None:
        super().__init__()
        self.weight = weight
        self.dim = dim
        self.shared = weight.numel() == 1  # a Python bool: no tensor-to-bool conversion while tracing

    def forward(self, x: Tensor) -> Tensor:
        if self.shared or self.dim in (1, 1 - x.dim()):
            return F.prelu(x, self.weight)
        return F.prelu(x.movedim(self.dim, 1), self.weight).movedim(1, self.dim)


def onnx_ready(model: nn.Module) -> nn.Module:
    """A CPU float32 copy of ``model`` in evaluation mode whose rectlab activations use exportable forms.

    PReLU becomes ``F.prelu`` (ONNX ``PRelu``), HeLU ``nn.ReLU``, RReLU a ``nn.LeakyReLU`` with its evaluation
    slope, and every other rectlab activation is switched to ``backend="torch"`` (its reference form).
    """
    ready = copy.deepcopy(model).cpu().float().eval()
    for path, module in list(ready.named_modules()):
        if not isinstance(module, Activation):
            continue
        if isinstance(module, PReLU):
            new: nn.Module = _PReLUExport(module.weight, module.dim)
        elif isinstance(module, HeLU):
            new = nn.ReLU()
        elif isinstance(module, RReLU):
            new = nn.LeakyReLU(module.negative_slope())
        else:
            module.backend = "torch"
            continue
        parent, _, child = path.rpartition(".")
        setattr(ready.get_submodule(parent) if parent else ready, child, new)
    return ready


@dataclass(frozen=True)
class OnnxExport:
    """What [`export_onnx`][rectlab.export.export_onnx] wrote.

    Attributes:
        path: the ``.onnx`` file.
        exporter: the exporter that wrote it (``"torchscript"`` or ``"dynamo"``).
        max_abs_diff: the largest absolute difference between onnxruntime's and the eager model's outputs on
            the check inputs (``None`` without a check).
        atol: the tolerance the check applied.
        checked_on: what the check ran on, e.g. ``"16 inputs given"`` or ``"8 random inputs of shape (1, 8, 8)"``.
        fallback: why ``exporter="auto"`` did not keep the TorchScript exporter (``None`` when it did).
    """

    path: Path
    exporter: str
    max_abs_diff: float | None
    atol: float = 1e-4
    checked_on: str = ""
    fallback: str | None = None

    def describe(self) -> str:
        """One line: the file, the exporter (and why), and the check with its tolerance."""
        why = f" (TorchScript exporter failed: {self.fallback})" if self.fallback else ""
        text = f"wrote {self.path} with the {self.exporter} exporter{why}"
        if self.max_abs_diff is not None:
            text += (
                f"; onnxruntime matches PyTorch on {self.checked_on}: max |diff| {self.max_abs_diff:.2g} "
                f"<= tolerance {self.atol:g}"
            )
        return text


def _has_dynamo_flag() -> bool:
    return "dynamo" in inspect.signature(torch.onnx.export).parameters


def _legacy_removed() -> bool:
    """True on a torch whose ``torch.onnx.export`` has no TorchScript path any more."""
    params = inspect.signature(torch.onnx.export).parameters
    return "dynamo" in params and "dynamic_axes" not in params


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Send what C++ code writes to stdout/stderr to a scratch file meanwhile: the TorchScript exporter prints the
    whole TorchScript IR of a model it cannot export (30+ lines) before raising."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _export_torchscript(model: nn.Module, example: Tensor, path: Path, opset: int | None, dynamic: bool) -> None:
    kwargs: dict[str, Any] = {"input_names": ["input"], "output_names": ["output"], "opset_version": opset or 17}
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    if _has_dynamo_flag():
        kwargs["dynamo"] = False
    with warnings.catch_warnings():  # torch >= 2.9 calls this exporter legacy; it is the one that needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        # Shapes are fixed per model (channel counts, parameter sizes): tracing them as constants is right.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with _quiet_fds():
            torch.onnx.export(model, (example,), str(path), **kwargs)


def _export_dynamo(model: nn.Module, example: Tensor, path: Path, opset: int | None, dynamic: bool) -> None:
    if not _has_dynamo_flag():
        raise UnavailableError(f"exporter='dynamo' needs torch >= 2.5 (this is {torch.__version__}); use 'torchscript'")
    try:
        import onnxscript  # noqa: F401  (optional: the dynamo exporter writes its graphs with it)
    except ImportError:
        raise MissingPackageError("the dynamo ONNX exporter needs onnxscript: pip install 'rectlab[onnx]'") from None
    kwargs: dict[str, Any] = {"input_names": ["input"], "output_names": ["output"], "dynamo": True, "verbose": False}
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamic:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its progress notes ("Obtain model graph ... ✅") are not for users
        with contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(model, (example,), str(path), **kwargs)


def _max_abs_diff(path: Path, inputs: Tensor, expected: Tensor) -> float:
    try:
        import onnxruntime as ort  # optional: pip install 'rectlab[onnx]'
    except ImportError:
        raise MissingPackageError(
            "checking the export needs onnxruntime: pip install 'rectlab[onnx]' (or pass check=False / --no-check)"
        ) from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    return float((torch.from_numpy(got) - expected).abs().max())


def _first_line(error: BaseException) -> str:
    """The reason in an exporter's error, without the IR, the source locations and the request for a pull request."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = next((line for line in lines if "Unsupported" in line), None) or (lines[0] if lines else "")
    reason = reason.split("  [Caused by")[0].split(" Please feel free to request support")[0]
    return f"{type(error).__name__}: {reason}"[:300]


def export_onnx(
    model: nn.Module,
    path: str | Path,
    example_input: Tensor | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    check_input: Tensor | None = None,
    opset: int | None = None,
    exporter: str = "auto",
    dynamic_batch: bool = True,
    check: bool = True,
    atol: float = 1e-4,
    seed: int = 0,
) -> OnnxExport:
    """Export any ``nn.Module`` to ONNX with standard operators only and check the file against PyTorch.

    Args:
        model: the model (not changed; a copy is exported on the CPU in float32, evaluation mode).
        path: the ``.onnx`` file to write.
        example_input: a batch shaped like the model's input (e.g. ``torch.randn(1, 1, 28, 28)``); default: the
            first two rows of ``check_input``, or random inputs of ``input_shape``.
        input_shape: the shape of one input without the batch dimension (``(1, 28, 28)``), when neither
            ``example_input`` nor ``check_input`` is given.
        check_input: the batch the check runs on, ideally real samples of the data (default: ``example_input``
            when given, else 8 random inputs of ``input_shape``).
        opset: the ONNX opset (default: 17 for the TorchScript exporter, the exporter's own for dynamo).
        exporter: ``"torchscript"`` (``torch.onnx.export(dynamo=False)``), ``"dynamo"`` (``torch.export``-based,
            torch >= 2.5, needs onnxscript), or ``"auto"``: TorchScript, then dynamo when TorchScript fails to
            export or its file does not match PyTorch (dynamo only, on a torch without TorchScript export).
        dynamic_batch: make the batch dimension symbolic.
        check: run the file with onnxruntime on the check inputs and compare with the eager output.
        atol: the largest absolute difference ``check`` accepts.
        seed: seeds the random inputs.

    Returns:
        An [`OnnxExport`][rectlab.export.OnnxExport] (``describe()`` gives the one-line summary).

    Raises:
        ValueError: no input given and no ``input_shape``, or an unknown ``exporter``.
        OnnxExportError: no exporter wrote a file within ``atol`` of PyTorch (the message has each one's reason).
        ImportError: ``check=True`` without onnxruntime, or the dynamo exporter without onnxscript.
    """
    if exporter not in EXPORTERS:
        raise InputError(f"exporter={exporter!r} is not valid; choose one of: {', '.join(EXPORTERS)}")
    checked_on = "the inputs given"
    if example_input is None and check_input is None:
        if input_shape is None:
            raise InputError(
                "export_onnx needs example_input, check_input or input_shape (one input's shape "
                "without the batch dimension, e.g. (1, 28, 28))"
            )
        generator = torch.Generator().manual_seed(seed)
        check_input = torch.randn(8, *input_shape, generator=generator)
        checked_on = f"8 random inputs of shape {tuple(input_shape)}"
    elif check_input is None:
        check_input = example_input
        checked_on = f"{len(example_input)} example input(s)"  # type: ignore[arg-type]
    else:
        checked_on = f"{len(check_input)} input(s) given"
    assert check_input is not None  # set above in every branch
    example = (example_input if example_input is not None else check_input[:2]).detach().cpu().float()
    inputs = check_input.detach().cpu().float()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ready = onnx_ready(model)
    with torch.no_grad():
        expected = ready(inputs)

    if exporter == "auto":
        order = ["dynamo"] if _legacy_removed() else ["torchscript", "dynamo"]
    else:
        order = [exporter]
    reasons: dict[str, str] = {}
    for used in order:
        try:
            (_export_dynamo if used == "dynamo" else _export_torchscript)(ready, example, path, opset, dynamic_batch)
        except ImportError:
            if used == order[-1] and not reasons:
                raise
            reasons[used] = "onnxscript is not installed"
            continue
        except Exception as e:  # torch.onnx raises many types; the next exporter may succeed
            reasons[used] = _first_line(e)
            continue
        if not check:
            return OnnxExport(path, used, None, atol, "", reasons.get("torchscript"))
        diff = _max_abs_diff(path, inputs, expected)
        if diff <= atol:
            return OnnxExport(path, used, diff, atol, checked_on, reasons.get("torchscript"))
        reasons[used] = f"onnxruntime's output differs from PyTorch's by {diff:.3g} (> atol {atol:g})"
    path.unlink(missing_ok=True)
    raise OnnxExportError(
        f"{path}: no ONNX exporter succeeded: " + "; ".join(f"{name}: {why}" for name, why in reasons.items())
    )


def dataset_samples(config: Any, n: int = 16, data_dir: str | None = None) -> Tensor:
    """The first ``n`` test images of a run's dataset, normalized as training and evaluation see them.

    Raises:
        DatasetNotFoundError: the dataset is not found (and not downloaded).
    """
    data = rdata.load(config.dataset, data_dir=data_dir or config.data_dir)
    if data.test_x is not None:
        return rdata.normalize(data.test_x[:n], data.mean, data.std, torch.float32)
    test_set: Any = data.test_set
    return torch.stack([test_set[i][0] for i in range(min(n, len(test_set)))]).float()
