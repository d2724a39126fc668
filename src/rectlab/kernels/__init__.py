"""Triton kernels for rectlab's activations, one module per family.

Nothing here is imported by ``import rectlab``: `rectlab.activations.fused` calls `load` at
the first fused call, which imports Triton and the family module then.

Families (which op launches which program of which family is the ``triton`` column of the op table,
`rectlab.activations.ops`; each family lists its programs in ``PROGRAMS``):
    ``elementwise``  activations without a tensor parameter: one forward and one backward kernel, the
                     program a constexpr.
    ``channel``      activations with a per-channel or shared parameter: PReLU and Swish ``x * sigmoid(beta x)``
                     (fixed or learnable beta); the parameter gradient reduced in the same backward pass.
    ``rrelu``        RReLU in training mode: per-element slopes from a counter-based RNG (Philox),
                     regenerated in backward from the seed instead of being stored.

Shared pieces, one job each: ``_jit`` (the ``@triton.jit`` helpers the kernels call), ``_launch`` (launch
planning and the host loops every family uses), ``_layout`` (memory layouts; no Triton).

**Interpreter or compiler, and the family contract.** The Triton interpreter (``TRITON_INTERPRET=1``, CPU
tensors) is decided per kernel *object*: ``triton.jit`` returns an interpreted function when the variable
is set at decoration time, and a kernel calls the helper objects that were current when its module ran.
`load` therefore re-executes ``_jit`` and then a family module whenever the variable changed since
they ran. To take part, a family module ``rectlab/kernels/<family>.py`` must

1. be listed in `FAMILIES`;
2. take its shared ``@triton.jit`` helpers from ``_jit`` (``from ._jit import _sigmoid, ...``), never from
   another family, and use only Triton builtins (no ``tl.sum`` / ``tl.sigmoid`` / ``tl.rand``: those are
   ``@triton.jit`` functions fixed when ``triton`` was first imported);
3. end with ``BUILD = build_of(<one of its kernels>)`` (`rectlab.kernels._jit.build_of`), which
   records whether its kernels are interpreted and which ``_jit`` execution they call.

`load` checks 3 (and that every kernel of the module agrees with ``BUILD``) each time it (re)loads a
family, and refuses a module that breaks it with a message that says what is missing. Import families
through `load`, not directly, so that they always match the current ``TRITON_INTERPRET``.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from types import ModuleType

__all__ = ["FAMILIES", "Build", "check_family", "interpret_requested", "load"]

FAMILIES = ("elementwise", "channel", "rrelu")


@dataclass(frozen=True)
class Build:
    """What a family module's kernels were built with (``BUILD`` of the family; see the contract above).

    Attributes:
        interpret: the kernels are Triton-interpreter functions (``TRITON_INTERPRET=1`` when decorated).
        helpers: the ``_jit.EXECUTION`` whose helper objects the kernels call.
    """

    interpret: bool
    helpers: object


def interpret_requested() -> bool:
    """True when ``TRITON_INTERPRET`` asks for the Triton interpreter (as Triton parses it)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def load(family: str) -> ModuleType:
    """Import the kernel module of ``family``, built for the current ``TRITON_INTERPRET`` setting.

    Args:
        family: one of `FAMILIES`.

    Returns:
        The module ``rectlab.kernels.<family>``; its kernels are interpreted when ``TRITON_INTERPRET=1``
        and compiled otherwise.

    Raises:
        ValueError: for an unknown family. TypeError: for a family module that breaks the contract.
    """
    want = interpret_requested()
    module = _LOADED.get(family)
    if module is not None and _is_current(module, want):
        return module  # the common case: already built for this mode
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; known: {', '.join(FAMILIES)}")
    jit = importlib.import_module("rectlab.kernels._jit")
    if want != jit.INTERPRET:
        importlib.reload(jit)
    module = importlib.import_module(f"rectlab.kernels.{family}")
    if not _is_current(module, want):
        module = importlib.reload(module)
    check_family(module)
    _LOADED[family] = module
    return module


def check_family(module: ModuleType) -> Build:
    """Check that a family module keeps the contract above; return its `Build`.

    Raises:
        TypeError: ``BUILD`` is missing or is not a `Build`, or one of the module's kernels was built
            for the other mode than ``BUILD`` says.
    """
    build = getattr(module, "BUILD", None)
    if not isinstance(build, Build):
        raise TypeError(
            f"kernel family module {module.__name__} does not define BUILD = build_of(<one of its kernels>) "
            "(from rectlab.kernels._jit); every family must (see the contract in rectlab.kernels)"
        )
    from triton.runtime.interpreter import InterpretedFunction  # lazy: Triton only when a kernel loads
    from triton.runtime.jit import JITFunction

    for name, obj in vars(module).items():
        ours = isinstance(obj, (JITFunction, InterpretedFunction)) and obj.fn.__module__ == module.__name__
        if ours and isinstance(obj, InterpretedFunction) != build.interpret:
            mode = "the Triton interpreter" if isinstance(obj, InterpretedFunction) else "the Triton compiler"
            raise TypeError(
                f"{module.__name__}.{name} was built for {mode} but BUILD says interpret={build.interpret}: "
                "import kernel families through rectlab.kernels.load, which rebuilds them when TRITON_INTERPRET "
                "changes, and define BUILD after the kernels"
            )
    return build


def _is_current(module: ModuleType, want: bool) -> bool:
    build = getattr(module, "BUILD", None)
    jit = sys.modules.get("rectlab.kernels._jit")
    return isinstance(build, Build) and build.interpret == want and jit is not None and build.helpers is jit.EXECUTION


_LOADED: dict[str, ModuleType] = {}
"""Modules `load` returned, checked against the mode at each call (a cache, not a setting)."""
