"""The op table: one row per activation op, read by every implementation of the op and by its tests.

An *op* is a computation (``prelu``: ``x if x > 0 else a * x``). A registered activation is a module that runs
one op with a given parameterisation (``prelu`` and ``prelu-shared`` both run ``prelu``; each module names its op
in `rectlab.activations.Activation.op`). Each row of `TABLE` gives:

* the op's name and its plain-torch reference, the spec in `rectlab.activations.functional`;
* its parameters, with example values that the self-check (`rectlab.activations.selfcheck`) and the tests
  use (`cases`);
* whether its forward is piecewise linear (the fast paths must then match the spec's output exactly in
  float32), and whether the fused kernels can keep a 1-bit mask instead of the input for the backward;
* which fast paths exist: a CPU path in `rectlab.activations.cpu` and the Triton kernel programs of
  `rectlab.kernels` that `rectlab.activations.fused` launches for it.

Names: op names are registry style, with dashes (``leaky-relu``, ``gelu-tanh``), in the table, in module ``op``
attributes and as the programs of the Triton kernels. The functions that implement an op in ``functional``,
``fused`` and ``cpu`` are Python identifiers, named by `ident` (``leaky_relu``): the one place where the
two spellings meet.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ..registry import UnknownNameError
from . import functional as AF

__all__ = ["FORMS", "TABLE", "Case", "Op", "Param", "cases", "get", "ident", "names"]

FORMS = ("number", "shared", "channel")
"""How a parameter can be passed: a Python number, a 1-element tensor, or a tensor of one value per channel."""


@dataclass(frozen=True)
class Param:
    """A parameter of an op, by the keyword its functions take.

    Attributes:
        name: the keyword (``negative_slope``, ``beta``, ``weight``); rectlab's modules keep the value in an
            attribute of the same name.
        examples: values the tests and the self-check use. The first is used everywhere; the others are edge
            values the CPU tests add: where a fast path takes another branch (Swish's ``beta == 1``), and the
            range a tensor parameter's values are spread over (PReLU's negative slopes). A parameter with
            string values is a choice (GELU's ``approximate``), and every choice is used everywhere.
        forms: how it may be passed, a subset of `FORMS`; tensors are learnable parameters.
    """

    name: str
    examples: tuple[float | str, ...]
    forms: tuple[str, ...] = ("number",)

    def __post_init__(self) -> None:
        if not self.examples or not set(self.forms) <= set(FORMS):
            raise ValueError(f"parameter {self.name!r}: give at least one example and forms among {FORMS}")

    @property
    def choice(self) -> bool:
        """The parameter takes one of a few strings."""
        return isinstance(self.examples[0], str)

    @property
    def tensor_forms(self) -> tuple[str, ...]:
        """The tensor forms (``"shared"``, ``"channel"``) it may take."""
        return tuple(f for f in self.forms if f != "number")


@dataclass(frozen=True)
class Op:
    """One row of the op table.

    Attributes:
        name: the op's name (dashes).
        reference: the plain-torch spec, ``reference(x, **params)``.
        params: the op's parameters.
        piecewise_linear: the forward is piecewise linear: fast paths give the spec's float32 output exactly.
        save_mask: the fused kernels take ``save_mask=True`` and keep a packed 1-bit mask instead of the input
            for the backward (PReLU only with a frozen weight: its weight gradient needs the input).
        cpu: `rectlab.activations.cpu` has a fast path, the function ``cpu.<ident>``; the other ops' specs
            are PyTorch's own native ops already.
        triton: the Triton kernel programs it launches, ``"family:program"`` (`rectlab.kernels`); empty
            for no fused kernel. The public function is ``fused.<ident>``.
        random: in training mode the op draws random numbers (RReLU's slopes), so a fast path is compared with
            the spec under one seed (CPU) or by the statistics of its draws (Triton), besides evaluation mode.
        surrogate_gradient: the backward is not the derivative of the forward (HeLU), so numerical gradient
            checks do not apply.
    """

    name: str
    reference: Callable[..., Tensor]
    params: tuple[Param, ...] = ()
    piecewise_linear: bool = False
    save_mask: bool = False
    cpu: bool = False
    triton: tuple[str, ...] = ()
    random: bool = False
    surrogate_gradient: bool = False

    @property
    def tensor_params(self) -> tuple[Param, ...]:
        """The parameters that may be tensors."""
        return tuple(p for p in self.params if p.tensor_forms)

    @property
    def ident(self) -> str:
        """The Python name of the op's functions (``leaky_relu``)."""
        return ident(self.name)

    def programs(self, family: str) -> tuple[str, ...]:
        """The programs of kernel ``family`` the op launches."""
        return tuple(p.split(":", 1)[1] for p in self.triton if p.split(":", 1)[0] == family)


def ident(name: str) -> str:
    """The Python identifier of op ``name``: ``leaky-relu`` -> ``leaky_relu``."""
    return name.replace("-", "_")


_SLOPE = Param("negative_slope", (0.2,))

TABLE: tuple[Op, ...] = (
    Op("relu", AF.relu, piecewise_linear=True, save_mask=True, triton=("elementwise:relu",)),
    Op("leaky-relu", AF.leaky_relu, (_SLOPE,), piecewise_linear=True, save_mask=True,
       triton=("elementwise:leaky-relu",)),
    # evaluation mode is leaky ReLU with the mean slope, on the elementwise family's program
    Op("rrelu", AF.rrelu, (Param("lower", (0.1,)), Param("upper", (0.3,))), piecewise_linear=True, save_mask=True,
       cpu=True, triton=("rrelu:rrelu", "elementwise:leaky-relu"), random=True),
    Op("prelu", AF.prelu, (Param("weight", (0.25, -0.3, 0.6), ("channel", "shared")),), piecewise_linear=True,
       save_mask=True, cpu=True, triton=("channel:prelu",)),
    Op("elu", AF.elu, (Param("alpha", (1.3,)),), triton=("elementwise:elu",)),
    Op("celu", AF.celu, (Param("alpha", (0.7,)),), triton=("elementwise:celu",)),
    Op("selu", AF.selu, triton=("elementwise:selu",)),
    Op("gelu", AF.gelu, (Param("approximate", ("none", "tanh")),),
       triton=("elementwise:gelu", "elementwise:gelu-tanh")),
    # beta = 1 is SiLU on the CPU path, beta = 0 is x / 2
    Op("swish", AF.swish, (Param("beta", (1.7, 1.0, 0.0), FORMS),), cpu=True, triton=("channel:swish",)),
    Op("silu", AF.silu, triton=("elementwise:silu",)),
    Op("mish", AF.mish, cpu=True, triton=("elementwise:mish",)),
    Op("softplus", AF.softplus, (Param("beta", (2.0,)), Param("threshold", (3.0,))), triton=("elementwise:softplus",)),
    # beta = 1 skips a scaling pass on the CPU path
    Op("smelu", AF.smelu, (Param("beta", (0.5, 1.0, 1.3)),), cpu=True, triton=("elementwise:smelu",)),
    Op("helu", AF.helu, (Param("alpha", (0.1,)),), piecewise_linear=True, save_mask=True, cpu=True,
       triton=("elementwise:helu",), surrogate_gradient=True),
    Op("gcu", AF.gcu, cpu=True, triton=("elementwise:gcu",)),
    Op("identity", AF.identity, piecewise_linear=True),
)  # fmt: skip
"""Every op, with its spec, parameters and fast paths."""

_BY_NAME = {op.name: op for op in TABLE}


def get(name: str) -> Op:
    """The row of op ``name``.

    Raises:
        UnknownNameError: for a name that is not in the table (the message lists the known ones).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownNameError(f"unknown activation op {name!r}; known ops: {', '.join(_BY_NAME)}") from None


def names(*, cpu: bool | None = None, triton: bool | None = None, save_mask: bool | None = None) -> list[str]:
    """Op names in table order, optionally only those with (True) or without (False) a CPU path, a fused
    kernel, or the 1-bit mask memory saver."""
    return [
        op.name
        for op in TABLE
        if (cpu is None or op.cpu == cpu)
        and (triton is None or bool(op.triton) == triton)
        and (save_mask is None or op.save_mask == save_mask)
    ]


@dataclass(frozen=True)
class Case:
    """One way to call an op, for the self-check and the tests: its numbers and choices, its tensor parameters
    and whether the memory saver is on.

    Attributes:
        op: the op.
        id: a name for test ids and messages (``gelu-tanh``, ``prelu-channel-mask``).
        numbers: keyword -> value of the number and choice parameters.
        tensors: ``(keyword, form, value, learnable)`` of the tensor parameters, in the order `bind`'s
            callable takes them.
        save_mask: ``save_mask=True`` is passed to the fast path (never to the spec).
    """

    op: Op
    id: str
    numbers: tuple[tuple[str, float | str], ...] = ()
    tensors: tuple[tuple[str, str, float, bool], ...] = ()
    save_mask: bool = False

    def bind(self, fn: Callable[..., Tensor], *, fast: bool = True) -> Callable[..., Tensor]:
        """``fn`` called as ``f(x, *tensor_values)`` with this case's numbers; ``fast=False`` for the spec (no
        ``save_mask``)."""
        kwargs: dict[str, Any] = dict(self.numbers)
        if self.save_mask and fast:
            kwargs["save_mask"] = True
        keys = [t[0] for t in self.tensors]

        def call(x: Tensor, *tensors: Tensor) -> Tensor:
            return fn(x, **kwargs, **dict(zip(keys, tensors)))

        return call

    def spec(self) -> Callable[..., Tensor]:
        """The op's reference, bound like `bind`."""
        return self.bind(self.op.reference, fast=False)


def cases(op: Op | str, every_example: bool = False) -> list[Case]:
    """The cases of an op: its first examples, every choice, every tensor form (learnable), and the memory
    saver where the op has it (PReLU's with a frozen per-channel weight).

    Args:
        op: a row or an op name.
        every_example: also one case per further example of each number parameter (``smelu-beta1``).
    """
    op = get(op) if isinstance(op, str) else op
    scalars = [p for p in op.params if not p.tensor_forms]
    choices = [p for p in scalars if p.choice]
    numbers = {p.name: p.examples[0] for p in scalars if not p.choice}
    tensor_params = op.tensor_params
    if len(tensor_params) > 1:
        raise NotImplementedError(f"op {op.name!r}: cases() handles at most one tensor parameter")
    variants: list[tuple[str, dict[str, Any]]] = []
    for combo in itertools.product(*(p.examples for p in choices)):
        suffix = "".join(f"-{v}" for p, v in zip(choices, combo) if v != p.examples[0])
        variants.append((op.name + suffix, {**numbers, **{p.name: v for p, v in zip(choices, combo)}}))
    if every_example:
        for p in scalars:
            if not p.choice:
                variants += [(f"{op.name}-{p.name}{v:g}", {**numbers, p.name: v}) for v in p.examples[1:]]
    out: list[Case] = []
    for vid, values in variants:
        if not tensor_params:
            out.append(Case(op, vid, tuple(values.items())))
            continue
        (p,) = tensor_params
        if "number" in p.forms:
            examples = p.examples if every_example else p.examples[:1]
            out += [Case(op, f"{vid}-{v:g}", tuple({**values, p.name: v}.items())) for v in examples]
        for form in p.tensor_forms:
            out.append(Case(op, f"{vid}-{form}", tuple(values.items()), ((p.name, form, float(p.examples[0]), True),)))
    if op.save_mask:
        first = out[0]
        frozen = tuple((name, form, value, False) for name, form, value, _ in first.tensors)
        out.append(Case(op, first.id + "-mask", first.numbers, frozen, save_mask=True))
    return out
