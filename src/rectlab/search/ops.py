"""The unary and binary functions of the activation search space (Ramachandran, Zoph & Le 2017,
arXiv 1710.05941, section 3), each as a builder of `rectlab.search.expr` trees.

Unary functions: x, -x, |x|, x^2, x^3, sqrt(x), beta*x, x + beta, log(|x| + eps), exp(x), sin(x), cos(x),
sinh(x), cosh(x), tanh(x), sinh^-1(x), tan^-1(x), sinc(x), max(x, 0), min(x, 0), sigma(x), log(1 + e^x),
exp(-x^2), erf(x), beta.

Binary functions: x1 + x2, x1 * x2, x1 - x2, x1 / (x2 + eps), max(x1, x2), min(x1, x2), sigma(x1) * x2,
exp(-beta (x1 - x2)^2), exp(-beta |x1 - x2|), beta x1 + (1 - beta) x2.

Every ``beta`` is its own learnable scalar, initialized to 1 (the paper does not give its initial value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .expr import EPS, BinOp, Call, Const, Expr, Neg, Param, Pow, Var

__all__ = ["BINARY", "UNARY", "Binary", "Unary"]


@dataclass(frozen=True)
class Unary:
    """A unary function: ``build(arg) -> Expr``; ``paper`` is how the paper writes it."""

    name: str
    paper: str
    build: Callable[[Expr], Expr]


@dataclass(frozen=True)
class Binary:
    """A binary function: ``build(a, b) -> Expr``; ``symmetric`` when ``b(a, c) == b(c, a)``."""

    name: str
    paper: str
    build: Callable[[Expr, Expr], Expr]
    symmetric: bool = False


def _call(fn: str, *args: Expr) -> Expr:
    return Call(fn, tuple(args))


_ZERO = Const(0.0)
_EPS = Const(EPS, "eps")

UNARY: dict[str, Unary] = {
    u.name: u
    for u in (
        Unary("x", "x", lambda a: a),
        Unary("neg", "-x", lambda a: Neg(a)),
        Unary("abs", "|x|", lambda a: _call("abs", a)),
        Unary("square", "x^2", lambda a: Pow(a, 2)),
        Unary("cube", "x^3", lambda a: Pow(a, 3)),
        Unary("sqrt", "sqrt(x)", lambda a: _call("sqrt", a)),
        Unary("scale", "beta*x", lambda a: BinOp("*", Param(), a)),
        Unary("shift", "x + beta", lambda a: BinOp("+", a, Param())),
        Unary("logabs", "log(|x| + eps)", lambda a: _call("log", BinOp("+", _call("abs", a), _EPS))),
        Unary("exp", "exp(x)", lambda a: _call("exp", a)),
        Unary("sin", "sin(x)", lambda a: _call("sin", a)),
        Unary("cos", "cos(x)", lambda a: _call("cos", a)),
        Unary("sinh", "sinh(x)", lambda a: _call("sinh", a)),
        Unary("cosh", "cosh(x)", lambda a: _call("cosh", a)),
        Unary("tanh", "tanh(x)", lambda a: _call("tanh", a)),
        Unary("asinh", "sinh^-1(x)", lambda a: _call("asinh", a)),
        Unary("atan", "tan^-1(x)", lambda a: _call("atan", a)),
        Unary("sinc", "sinc(x)", lambda a: _call("sinc", a)),
        Unary("relu", "max(x, 0)", lambda a: _call("max", a, _ZERO)),
        Unary("negrelu", "min(x, 0)", lambda a: _call("min", a, _ZERO)),
        Unary("sigmoid", "sigma(x)", lambda a: _call("sigmoid", a)),
        Unary("softplus", "log(1 + e^x)", lambda a: _call("softplus", a)),
        Unary("gauss", "exp(-x^2)", lambda a: _call("exp", Neg(Pow(a, 2)))),
        Unary("erf", "erf(x)", lambda a: _call("erf", a)),
        Unary("const", "beta", lambda a: Param()),
    )
}


def _mix(a: Expr, b: Expr) -> Expr:
    beta = Param()  # one parameter used twice
    return BinOp("+", BinOp("*", beta, a), BinOp("*", BinOp("-", Const(1.0), beta), b))


BINARY: dict[str, Binary] = {
    b.name: b
    for b in (
        Binary("add", "x1 + x2", lambda a, b: BinOp("+", a, b), symmetric=True),
        Binary("mul", "x1 * x2", lambda a, b: BinOp("*", a, b), symmetric=True),
        Binary("sub", "x1 - x2", lambda a, b: BinOp("-", a, b)),
        Binary("div", "x1 / (x2 + eps)", lambda a, b: BinOp("/", a, BinOp("+", b, _EPS))),
        Binary("max", "max(x1, x2)", lambda a, b: _call("max", a, b), symmetric=True),
        Binary("min", "min(x1, x2)", lambda a, b: _call("min", a, b), symmetric=True),
        Binary("sigmul", "sigma(x1) * x2", lambda a, b: BinOp("*", _call("sigmoid", a), b)),
        Binary(
            "expsq",
            "exp(-beta (x1 - x2)^2)",
            lambda a, b: _call("exp", Neg(BinOp("*", Param(), Pow(BinOp("-", a, b), 2)))),
            symmetric=True,
        ),
        Binary(
            "expabs",
            "exp(-beta |x1 - x2|)",
            lambda a, b: _call("exp", Neg(BinOp("*", Param(), _call("abs", BinOp("-", a, b))))),
            symmetric=True,
        ),
        Binary("mix", "beta x1 + (1 - beta) x2", _mix),
    )
}

X = Var()
