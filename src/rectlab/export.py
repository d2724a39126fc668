"""ONNX export of models with rectlab activations, in standard ONNX operators only.

:func:`export_onnx` exports a copy of the model in which every rectlab activation runs its plain-torch
reference form (never a fused Triton kernel or a ``rectlab::*`` custom op), so the file holds only
operators of the default ONNX domain:

* channel-wise PReLU (He et al. 2015) becomes ONNX ``PRelu`` with its slope shaped ``[C, 1, 1]`` (``[1]``
  channel-shared);
* HeLU (Kimhi et al. 2024) is ReLU in the forward pass (its shifted threshold only changes the backward),
  so it becomes ``Relu``; RReLU in evaluation mode is a leaky ReLU with the mean slope (``LeakyRelu``);
* SmeLU (Shamir et al. 2020) becomes ``Where``/``Pow``/arithmetic, Swish with a learned beta ``Sigmoid``
  and ``Mul`` with beta as an initializer, GELU ``Gelu`` or its ``Erf`` form, and so on.

The exported graph is then run with onnxruntime on the example input and compared with the eager model
(``check=True``). ``rectlab export-model CHECKPOINT --onnx out.onnx`` exports a study run's trained model
(rebuilt by [load_run_model][rectlab.study.trained.load_run_model]).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import HeLU, PReLU, RReLU
from .activations.modules import Activation
from .errors import InputError, MissingPackageError, UnavailableError

__all__ = ["EXPORTERS", "OnnxExport", "export_onnx", "onnx_ready"]

EXPORTERS = ("auto", "torchscript", "dynamo")


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
    """What :func:`export_onnx` wrote: the file, the exporter used, and the largest absolute difference
    between onnxruntime's and the eager model's outputs on the example input (``None`` without a check)."""

    path: Path
    exporter: str
    max_abs_diff: float | None


def _has_dynamo_flag() -> bool:
    return "dynamo" in inspect.signature(torch.onnx.export).parameters


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
        torch.onnx.export(model, (example,), str(path), **kwargs)


def _export_dynamo(model: nn.Module, example: Tensor, path: Path, opset: int | None, dynamic: bool) -> None:
    if not _has_dynamo_flag():
        raise UnavailableError(f"exporter='dynamo' needs torch >= 2.5 (this is {torch.__version__}); use 'torchscript'")
    kwargs: dict[str, Any] = {"input_names": ["input"], "output_names": ["output"], "dynamo": True,
                              "verbose": False}
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamic:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    torch.onnx.export(model, (example,), str(path), **kwargs)


def _max_abs_diff(path: Path, example: Tensor, expected: Tensor) -> float:
    try:
        import onnxruntime as ort  # optional: pip install 'rectlab[onnx]'
    except ImportError:
        raise MissingPackageError("checking the export needs onnxruntime: pip install 'rectlab[onnx]' (or pass "
                                  "check=False / --no-check)") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    return float((torch.from_numpy(got) - expected).abs().max())


def export_onnx(
    model: nn.Module,
    path: str | Path,
    example_input: Tensor,
    *,
    opset: int | None = None,
    exporter: str = "auto",
    dynamic_batch: bool = True,
    check: bool = True,
    atol: float = 1e-4,
) -> OnnxExport:
    """Export ``model`` to ONNX with standard operators only (see the module docstring).

    Args:
        model: the model (not changed; a copy is exported on the CPU in float32, evaluation mode).
        path: the ``.onnx`` file to write.
        example_input: a batch shaped like the model's input (e.g. ``torch.randn(1, 1, 28, 28)``).
        opset: the ONNX opset (default: 17 for the TorchScript exporter, the exporter's own for dynamo).
        exporter: ``"torchscript"`` (``torch.onnx.export(dynamo=False)``, torch >= 2.4), ``"dynamo"``
            (``torch.export``-based, torch >= 2.5, needs onnxscript), or ``"auto"``: TorchScript, and dynamo
            where a torch release no longer has it.
        dynamic_batch: make the batch dimension symbolic.
        check: run the file with onnxruntime on ``example_input`` and compare with the eager output.
        atol: the largest absolute difference ``check`` accepts.

    Returns:
        An :class:`OnnxExport`.

    Raises:
        ValueError: onnxruntime's output differs from the eager model's by more than ``atol``.
        ImportError: ``check=True`` without onnxruntime, or the dynamo exporter without onnxscript.

    Example:
        >>> from rectlab import models
        >>> net = models.create("small-cnn", activation="prelu", in_channels=1)
        >>> export_onnx(net, "net.onnx", torch.randn(2, 1, 28, 28)).exporter   # doctest: +SKIP
        'torchscript'
    """
    if exporter not in EXPORTERS:
        raise InputError(f"exporter={exporter!r} is not valid; choose one of: {', '.join(EXPORTERS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ready = onnx_ready(model)
    example = example_input.detach().cpu().float()
    used = "dynamo" if exporter == "dynamo" or (exporter == "auto" and _legacy_removed()) else "torchscript"
    (_export_dynamo if used == "dynamo" else _export_torchscript)(ready, example, path, opset, dynamic_batch)
    diff = None
    if check:
        with torch.no_grad():
            expected = ready(example)
        diff = _max_abs_diff(path, example, expected)
        if not diff <= atol:
            raise InputError(f"{path}: onnxruntime's output differs from the eager model's by {diff:.3g} (> {atol})")
    return OnnxExport(path, used, diff)


def _legacy_removed() -> bool:
    """True on a torch whose ``torch.onnx.export`` has no TorchScript path any more."""
    params = inspect.signature(torch.onnx.export).parameters
    return "dynamo" in params and "dynamic_axes" not in params
