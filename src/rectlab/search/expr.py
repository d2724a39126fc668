"""Activation expressions: a small tree language, its canonical text, a safe parser and a torch evaluator.

An expression is a scalar function of ``x`` built from the operations of the activation search
(Ramachandran, Zoph & Le 2017, arXiv 1710.05941, section 3). Its canonical text is a Python-syntax
string such as ``sigmoid(beta*x)*x`` or ``max(x,tanh(x))``; it names the activation everywhere
(``search:sigmoid(beta*x)*x``), so a worker process can rebuild the function from the name alone.

Symbols: ``x`` (the pre-activation), ``beta``, ``beta1``, ``beta2``, ... (learnable scalars, all
initialized to 1; the same name is the same parameter), ``eps`` (1e-7, the paper's epsilon in
``log(|x| + eps)`` and ``x1 / (x2 + eps)``) and numbers. Operators ``+ - * / **`` (integer powers)
and the functions in `FUNCTIONS`. Parsing walks Python's ``ast`` with a whitelist: nothing is
ever evaluated by Python itself.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import InputError, RectlabError

__all__ = [
    "EPS",
    "FUNCTIONS",
    "BinOp",
    "Call",
    "Const",
    "Expr",
    "ExprError",
    "Neg",
    "Param",
    "Pow",
    "Var",
    "evaluate",
    "num_params",
    "param_names",
    "parse",
    "render",
]

EPS = 1e-7


class ExprError(RectlabError, ValueError):
    """An activation expression is not valid; the message says what is allowed."""


def _sinc(x: Tensor) -> Tensor:
    # The paper's sinc(x) = sin(x) / x (unnormalized); torch.sinc is sin(pi x) / (pi x).
    return torch.sinc(x / math.pi)


FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
    "abs": (1, torch.abs),
    "sqrt": (1, torch.sqrt),
    "log": (1, torch.log),
    "exp": (1, torch.exp),
    "sin": (1, torch.sin),
    "cos": (1, torch.cos),
    "sinh": (1, torch.sinh),
    "cosh": (1, torch.cosh),
    "tanh": (1, torch.tanh),
    "asinh": (1, torch.asinh),
    "atan": (1, torch.atan),
    "sinc": (1, _sinc),
    "sigmoid": (1, torch.sigmoid),
    "softplus": (1, torch.nn.functional.softplus),  # log(1 + e^x), computed stably
    "erf": (1, torch.erf),
    "max": (2, torch.maximum),
    "min": (2, torch.minimum),
}


# -- the tree ----------------------------------------------------------------------------------------------


class Expr:
    """Base class of expression nodes (immutable; equal trees compare equal)."""


@dataclass(frozen=True)
class Var(Expr):
    """The input ``x``."""


@dataclass(frozen=True)
class Const(Expr):
    """A number; ``name`` is set for named constants (``eps``)."""

    value: float
    name: str = ""


@dataclass(frozen=True, eq=False)
class Param(Expr):
    """A learnable scalar (``beta``). Identity matters: one object used twice is one parameter."""

    label: str = ""  # the name it was parsed from, if any (renumbered when rendered)


@dataclass(frozen=True)
class Neg(Expr):
    arg: Expr


@dataclass(frozen=True)
class Pow(Expr):
    base: Expr
    exponent: int


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # one of + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call(Expr):
    fn: str
    args: tuple[Expr, ...]


# -- rendering ---------------------------------------------------------------------------------------------

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_ATOM, _NEG, _POW = 100, 3, 4


def _params(e: Expr, out: list[Param]) -> None:
    if isinstance(e, Param):
        if not any(p is e for p in out):
            out.append(e)
    elif isinstance(e, Neg):
        _params(e.arg, out)
    elif isinstance(e, Pow):
        _params(e.base, out)
    elif isinstance(e, BinOp):
        _params(e.left, out)
        _params(e.right, out)
    elif isinstance(e, Call):
        for a in e.args:
            _params(a, out)


def param_names(e: Expr) -> list[str]:
    """The canonical names of the learnable parameters in order of appearance: ``beta`` or ``beta1, beta2...``."""
    params: list[Param] = []
    _params(e, params)
    return ["beta"] if len(params) == 1 else [f"beta{i + 1}" for i in range(len(params))]


def num_params(e: Expr) -> int:
    """How many learnable scalars ``e`` has."""
    params: list[Param] = []
    _params(e, params)
    return len(params)


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def render(e: Expr) -> str:
    """The canonical text of ``e`` (no spaces, minimal parentheses, parameters numbered by first appearance).

    ``parse(render(e))`` renders to the same text.
    """
    params: list[Param] = []
    _params(e, params)
    names = {id(p): n for p, n in zip(params, param_names(e))}

    def go(node: Expr) -> tuple[str, int]:
        if isinstance(node, Var):
            return "x", _ATOM
        if isinstance(node, Param):
            return names[id(node)], _ATOM
        if isinstance(node, Const):
            if node.name:
                return node.name, _ATOM
            text = _fmt_number(abs(node.value))
            return (text, _ATOM) if node.value >= 0 else (f"-{text}", _NEG)
        if isinstance(node, Call):
            return f"{node.fn}({','.join(go(a)[0] for a in node.args)})", _ATOM
        if isinstance(node, Neg):
            text, prec = go(node.arg)
            return "-" + (text if prec > _NEG else f"({text})"), _NEG
        if isinstance(node, Pow):
            text, prec = go(node.base)
            return (text if prec == _ATOM else f"({text})") + f"**{node.exponent}", _POW
        if isinstance(node, BinOp):
            p = _PREC[node.op]
            lt, lp = go(node.left)
            rt, rp = go(node.right)
            if lp < p:
                lt = f"({lt})"
            if rp <= p or rp == _NEG:  # keep the tree's grouping; never write x*-y
                rt = f"({rt})"
            return f"{lt}{node.op}{rt}", p
        raise TypeError(f"not an expression node: {node!r}")

    return go(e)[0]


# -- parsing -----------------------------------------------------------------------------------------------

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
HELP = "use x, beta/beta1/beta2..., eps, numbers, + - * / **N (integer N) and the functions " + ", ".join(
    f"{k}({', '.join('ab'[:n])})" for k, (n, _) in FUNCTIONS.items()
)


def parse(text: str) -> Expr:
    """Parse an activation expression (see the module docstring).

    Raises:
        ExprError: for anything outside the language, naming what was wrong and what is allowed.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExprError(f"an activation expression must be a non-empty string, got {text!r}; {HELP}")
    try:
        tree = ast.parse(text.strip().lower(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"{text!r} is not a valid expression ({e.msg}); {HELP}") from None
    params: dict[str, Param] = {}

    def go(node: ast.AST) -> Expr:
        if isinstance(node, ast.Name):
            if node.id == "x":
                return Var()
            if node.id == "eps":
                return Const(EPS, "eps")
            if node.id == "beta" or (node.id.startswith("beta") and node.id[4:].isdigit()):
                return params.setdefault(node.id, Param(node.id))
            raise ExprError(f"unknown symbol {node.id!r} in {text!r}; {HELP}")
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            if not math.isfinite(node.value):
                raise ExprError(f"numbers must be finite in {text!r}")
            return Const(float(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            arg = go(node.operand)
            if isinstance(node.op, ast.UAdd):
                return arg
            return Const(-arg.value) if isinstance(arg, Const) and not arg.name else Neg(arg)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exp = node.right
            if isinstance(exp, ast.UnaryOp) or not (
                isinstance(exp, ast.Constant)
                and isinstance(exp.value, int)
                and not isinstance(exp.value, bool)
                and 1 <= exp.value <= 9
            ):
                raise ExprError(f"only integer powers 1..9 are allowed (x**2, x**3), in {text!r}")
            return Pow(go(node.left), int(exp.value))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return BinOp(_BINOPS[type(node.op)], go(node.left), go(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            name = node.func.id
            if name not in FUNCTIONS:
                raise ExprError(f"unknown function {name!r} in {text!r}; {HELP}")
            arity = FUNCTIONS[name][0]
            if len(node.args) != arity:
                raise ExprError(f"{name} takes {arity} argument(s), got {len(node.args)} in {text!r}")
            return Call(name, tuple(go(a) for a in node.args))
        raise ExprError(f"{ast.unparse(node)!r} is not allowed in an activation expression; {HELP}")

    expr = go(tree.body)
    if not _uses_x(expr):
        raise ExprError(f"{text!r} does not depend on x: an activation must be a function of x")
    return expr


def _uses_x(e: Expr) -> bool:
    if isinstance(e, Var):
        return True
    if isinstance(e, Neg):
        return _uses_x(e.arg)
    if isinstance(e, Pow):
        return _uses_x(e.base)
    if isinstance(e, BinOp):
        return _uses_x(e.left) or _uses_x(e.right)
    if isinstance(e, Call):
        return any(_uses_x(a) for a in e.args)
    return False


# -- evaluation --------------------------------------------------------------------------------------------


def evaluate(e: Expr, x: Tensor, betas: Sequence[Tensor | float] = ()) -> Tensor:
    """``e`` applied elementwise to ``x`` with the parameters ``betas`` (in `param_names` order).

    Plain torch operations, so autograd gives the gradient with respect to ``x`` and every beta.
    """
    params: list[Param] = []
    _params(e, params)
    if len(betas) != len(params):
        raise InputError(f"{render(e)} has {len(params)} parameter(s), got {len(betas)} values")
    index = {id(p): i for i, p in enumerate(params)}

    def go(node: Expr) -> Tensor | float:
        if isinstance(node, Var):
            return x
        if isinstance(node, Param):
            return betas[index[id(node)]]
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Neg):
            return -go(node.arg)
        if isinstance(node, Pow):
            return go(node.base) ** node.exponent
        if isinstance(node, BinOp):
            a, b = go(node.left), go(node.right)
            if node.op == "+":
                return a + b
            if node.op == "-":
                return a - b
            if node.op == "*":
                return a * b
            return a / b
        if isinstance(node, Call):
            args = [go(a) for a in node.args]
            args = [a if isinstance(a, Tensor) else torch.as_tensor(a, dtype=x.dtype, device=x.device) for a in args]
            return FUNCTIONS[node.fn][1](*args)
        raise TypeError(f"not an expression node: {node!r}")

    out = go(e)
    if isinstance(out, Tensor) and out.shape == x.shape:
        return out
    return torch.zeros_like(x) + out  # an expression without x (a sub-term such as beta) is constant over x
