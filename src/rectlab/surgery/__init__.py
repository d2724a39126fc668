"""Model surgery on activation *call sites*: find them, swap them, erase them (EraseReLU).

A call site is one place where a forward pass applies an activation: a call of an activation module
(``self.relu(x)``) or of an activation function (``F.relu(x)``, ``torch.relu(x)``, ``x.relu_()``).
torchvision's ResNet blocks call one ``self.relu`` module twice, so "the last ReLU of a block" is a call
site, not a module. rectlab finds call sites by tracing the model with ``torch.fx`` (activation modules
are kept as leaves, and every node remembers the stack of modules whose ``forward`` was running), and
edits them by

* replacing the module, where a site's module is called only there (parameter names of every other
  layer stay as they were, and the model keeps its classes); or
* rewriting the forward graph of the *owner* (the module whose ``forward`` contains the call) into a
  ``torch.fx.GraphModule`` that calls a new module at that site, where a module is called at several
  sites or the site is a function call. The owner's children, parameters and buffers keep their names,
  so ``state_dict``s still load; the GraphModule remembers the owner's original class.

Submodules that ``torch.fx`` cannot trace (Python control flow on tensor values, ...) are kept as opaque
leaves: the activation modules inside them are found by enumerating modules (and, with an
``example_input``, by forward hooks that count their calls and see their shapes) and are edited by module
replacement. Function calls inside such submodules are invisible; a [`SurgeryWarning`][rectlab.surgery.SurgeryWarning]
names them. When an edit needs more than module replacement can do there, [`SurgeryError`][rectlab.surgery.SurgeryError]
names the submodule and says what to pass instead.

Which calls are sites: the torch.nn modules ReLU, ReLU6, LeakyReLU, PReLU, RReLU, ELU, CELU, SELU, GELU,
SiLU, Mish, Softplus, Hardswish; every rectlab [`Activation`][rectlab.activations.Activation], including
rectlab's ``Identity`` (what EraseReLU leaves behind, so erased sites keep their index and can be swapped
back); and the functions ``F.relu``/``torch.relu``/``relu_``, ``relu6``, ``leaky_relu``, ``prelu``, ``rrelu``,
``elu``, ``celu``, ``selu``, ``gelu``, ``silu``, ``mish``, ``softplus``, ``hardswish`` and the methods
``Tensor.relu``/``relu_``. ``torch.nn.Identity`` (used for many non-activation purposes) and gating
functions (``sigmoid``, ``tanh``; [`GATING_MODULES`][rectlab.surgery.GATING_MODULES]) are not sites, and neither is the
ReLU inside [`ReLUClassifier`][rectlab.activations.ReLUClassifier], which is the classification function, not a hidden
unit.

Papers: Dong et al. 2017, "EraseReLU: A Simple Way to Ease the Training of Deep Convolution Neural
Networks" (arXiv 1709.07634).
"""

from __future__ import annotations

from .analysis import ExampleInput, activation_sites
from .erase import BasicModule, EraseReport, erase_relu
from .rewrite import Match, swap_activations
from .sites import (
    GATING_MODULES,
    Site,
    SurgeryError,
    SurgeryWarning,
    format_sites,
    module_op,
    negative_slope,
    op_names,
    original_type,
)

__all__ = [
    "BasicModule",
    "EraseReport",
    "ExampleInput",
    "GATING_MODULES",
    "Match",
    "Site",
    "SurgeryError",
    "SurgeryWarning",
    "activation_sites",
    "erase_relu",
    "format_sites",
    "module_op",
    "negative_slope",
    "op_names",
    "original_type",
    "swap_activations",
]
