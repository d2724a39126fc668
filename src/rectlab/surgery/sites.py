"""Which calls are activation sites, and the `Site` record.

What counts as an activation (`module_op`, `GATING_MODULES`, `negative_slope`, `op_names`) is defined by
[rectlab.activations.kinds][]; this module re-exports those names for the call-site analysis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch.fx as fx
from torch import nn

from ..activations.kinds import GATING_MODULES, function_op, method_op, module_op, negative_slope, op_names
from ..errors import RectlabError

__all__ = [
    "GATING_MODULES",
    "Site",
    "SurgeryError",
    "SurgeryWarning",
    "format_sites",
    "module_op",
    "negative_slope",
    "op_names",
    "original_type",
]


class SurgeryError(RectlabError, RuntimeError):
    """A requested edit cannot be made; the message names the submodule and what to pass instead."""


class SurgeryWarning(UserWarning):
    """Something the user should know about an analysis or edit (untraceable parts, nothing to erase)."""


_ORIGINAL_TYPE = "rectlab_original_type"


def _node_op(node: fx.Node, root: nn.Module) -> str | None:
    if node.op == "call_module":
        return module_op(root.get_submodule(str(node.target)))
    if node.op == "call_function":
        return function_op(node.target, node.kwargs)
    if node.op == "call_method":
        return method_op(node.target)
    return None


def original_type(module: nn.Module) -> type[nn.Module]:
    """The class a module had before surgery rewrote its forward into a ``GraphModule`` (else its class)."""
    if isinstance(module, fx.GraphModule):
        return module.meta.get(_ORIGINAL_TYPE, type(module))
    return type(module)


@dataclass(frozen=True)
class Site:
    """One activation call site.

    Attributes:
        index: position in call order over the whole forward pass (0-based).
        op: registry-style op name (``"relu"``, ``"leaky-relu"``, ``"relu6"``, ``"identity"``, ...).
        kind: ``"module"`` (an activation module is called), ``"function"`` (``F.relu(x)``) or
            ``"method"`` (``x.relu()``).
        owner: path of the module whose ``forward`` makes the call (``""``: the model itself). For
            torchvision's ResNet-18 both ``self.relu`` calls of a block are owned by ``"layer1.0"``.
        owner_type: class name of the owner (its class before any surgery).
        target: path of the called module for module sites, else ``None``. Several sites share a target
            when one module is called several times.
        call: for module sites, how many earlier sites call the same target (0 for the first call).
        node: the ``torch.fx`` node name, or ``None`` for sites found without tracing.
        channels: channel count at the site (dim 1 of its output) from the example input, else ``None``.
        shape: output shape at the site from the example input, else ``None``.
        scope: paths of the modules whose ``forward`` was running at the call, outermost first, ending
            with ``owner`` (empty for the model itself).
        traced: ``True`` when found in the fx graph; ``False`` when found by module enumeration inside a
            submodule fx could not trace.
    """

    index: int
    op: str
    kind: str
    owner: str
    owner_type: str
    target: str | None
    call: int
    node: str | None
    channels: int | None
    shape: tuple[int, ...] | None
    scope: tuple[str, ...]
    traced: bool

    def __str__(self) -> str:
        where = str(self.target) if self.kind == "module" else f"{self.owner or '<model>'}: {self.node}"
        if self.kind == "module" and self.call:
            where += f" (call {self.call})"
        ch = "" if self.channels is None else f" C={self.channels}"
        return f"#{self.index} {self.op} [{self.kind}] {where}{ch}"


def format_sites(sites: Iterable[Site]) -> str:
    """A plain-text table of sites: index, op, kind, owner, target or node, channels."""
    rows = [("#", "op", "kind", "owner", "target / node", "C")]
    for s in sites:
        what = s.target if s.kind == "module" else s.node
        if s.kind == "module" and s.call:
            what = f"{what} (call {s.call})"
        rows.append(
            (str(s.index), s.op, s.kind, s.owner or "<model>", str(what), "" if s.channels is None else str(s.channels))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
