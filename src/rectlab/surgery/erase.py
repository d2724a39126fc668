"""EraseReLU (Dong et al. 2017, arXiv 1709.07634): basic-module rules, location and proportion."""

from __future__ import annotations

import copy
import math
import random
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn

from .. import activations
from ..errors import InputError, InputTypeError
from .analysis import ExampleInput, analyze
from .rewrite import Match, _matcher, _rewrite
from .sites import Site, SurgeryError, SurgeryWarning, module_op, original_type

__all__ = ["BasicModule", "EraseReport", "erase_relu"]


class BasicModule(nn.Module):
    """Marker base class for a *basic module* in the sense of EraseReLU (Dong et al. 2017, arXiv 1709.07634).

    A basic module is the repeated unit of an architecture (a residual block, a VGG stage, one layer of a
    plain net). [`rectlab.surgery.erase_relu`][rectlab.surgery.erase_relu] finds the activation sites inside every
    ``BasicModule`` without further configuration; subclass it in your own models to get the same.
    """


@dataclass(frozen=True)
class _Rule:
    """How to recognise a basic module by class, and whether that class is linear at its output by design."""

    qualname: str
    linear_output: str = ""  # non-empty: why "last" finds nothing to erase


_TORCHVISION_RULES = (
    _Rule("torchvision.models.resnet.BasicBlock"),
    _Rule("torchvision.models.resnet.Bottleneck"),
    _Rule("torchvision.models.densenet._DenseLayer"),
    _Rule(
        "torchvision.models.mobilenetv2.InvertedResidual",
        "MobileNetV2's inverted residual is already linear at its output (a linear bottleneck, Sandler et al. "
        "2018): there is no ReLU after its last convolution to erase",
    ),
)
_TIMM_LINEAR_BOTTLENECK = (
    "timm's EfficientNet/MobileNetV3 block is linear at its output (a linear bottleneck): the activations "
    "inside it sit before its last convolution or in its squeeze-excitation; use location='first' or an index"
)
# timm's repeated blocks (rectlab.models.external builds them as timm:NAME); matched by class name, timm is optional.
_TIMM_RULES = (
    _Rule("timm.models.resnet.BasicBlock"),
    _Rule("timm.models.resnet.Bottleneck"),
    _Rule("timm.models._efficientnet_blocks.ConvBnAct"),
    _Rule("timm.models._efficientnet_blocks.InvertedResidual", _TIMM_LINEAR_BOTTLENECK),
    _Rule("timm.models._efficientnet_blocks.DepthwiseSeparableConv", _TIMM_LINEAR_BOTTLENECK),
    _Rule("timm.models._efficientnet_blocks.EdgeResidual", _TIMM_LINEAR_BOTTLENECK),
    _Rule("timm.models.convnext.ConvNeXtBlock"),
    _Rule("timm.models.vision_transformer.Block"),
    _Rule("timm.models.vision_transformer.ResPostBlock"),
)
_VGG_QUALNAME = "torchvision.models.vgg.VGG"


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class EraseReport:
    """What [`erase_relu`][rectlab.surgery.erase_relu] did.

    Attributes:
        location: the location asked for.
        proportion: the proportion of basic modules asked for.
        rule: how basic modules were recognised.
        modules: every basic module found, in call order (paths, or ``features[0:6]`` for a VGG stage).
        selected: the basic modules whose site was erased, in call order.
        erased: the erased sites as found in the input model; in the returned model the same indices are
            ``identity`` sites.
        skipped: ``(basic module, reason)`` for modules with nothing to erase at ``location``.
    """

    location: str | int
    proportion: float
    rule: str
    modules: tuple[str, ...]
    selected: tuple[str, ...]
    erased: tuple[Site, ...]
    skipped: tuple[tuple[str, str], ...]

    @property
    def message(self) -> str:
        """One paragraph for logs."""
        text = (
            f"erased {len(self.erased)} activation site(s) at location {self.location!r} in "
            f"{len(self.selected)} of {len(self.modules)} basic modules ({self.rule})"
        )
        if self.skipped:
            reasons = sorted({why for _, why in self.skipped})
            text += f"; {len(self.skipped)} module(s) had nothing to erase: " + "; ".join(reasons)
        return text


def _basic_module_test(
    module_types: Iterable[type | str] | type | str | None,
    predicate: Callable[[str, nn.Module], bool] | None,
) -> tuple[Callable[[str, nn.Module], bool], str]:
    if isinstance(module_types, (str, type)):
        module_types = [module_types]
    types = list(module_types or [])
    for t in types:
        if not isinstance(t, (str, type)):
            raise InputTypeError(f"module_types takes classes or class names, got {t!r}")
    names = {t for t in types if isinstance(t, str)}
    classes = tuple(t for t in types if isinstance(t, type))

    def test(path: str, m: nn.Module) -> bool:
        kind = original_type(m)
        if classes and issubclass(kind, classes):
            return True
        if names and (kind.__name__ in names or _qualname(kind) in names):
            return True
        return predicate is not None and bool(predicate(path, m))

    described = []
    if types:
        described.append("module_types=" + ", ".join(t if isinstance(t, str) else t.__name__ for t in types))
    if predicate is not None:
        described.append("predicate")
    return test, " + ".join(described)


def _group_by_scope(
    model: nn.Module, sites: list[Site], test: Callable[[str, nn.Module], bool]
) -> dict[str, list[Site]]:
    basic = {p for p, m in model.named_modules() if p and test(p, m)}
    if test("", model):
        raise InputError("the whole model matched as a basic module; name the repeated blocks inside it instead")
    groups: dict[str, list[Site]] = {}
    for s in sites:
        inner = next((p for p in reversed(s.scope) if p in basic), None)
        if inner is not None:
            groups.setdefault(inner, []).append(s)
    return groups


def _pool_stages(model: nn.Module, sites: list[Site], container: str) -> dict[str, list[Site]]:
    """VGG: the sites in ``features`` between two max-poolings form one basic module (a stage)."""
    children = list(model.get_submodule(container).named_children())
    stage_of: dict[str, str] = {}
    start = 0
    for i, (_, child) in enumerate([*children, ("", nn.MaxPool2d(1))]):  # a sentinel pool closes the last stage
        if isinstance(child, (nn.MaxPool2d, nn.AvgPool2d)):
            for n, _ in children[start:i]:
                stage_of[f"{container}.{n}"] = f"{container}[{start}:{i}]"
            start = i + 1
    groups: dict[str, list[Site]] = {}
    for s in sites:
        if s.target in stage_of:
            groups.setdefault(stage_of[s.target], []).append(s)
    return groups


def _no_rule_error(model: nn.Module) -> SurgeryError:
    kinds = sorted({original_type(m).__name__ for p, m in model.named_modules() if p and module_op(m) is None})[:8]
    return SurgeryError(
        f"erase_relu has no basic-module rule for {original_type(model).__name__}: tell it which modules are the "
        f"repeated blocks, e.g. erase_relu(model, module_types=['MyBlock']) (classes or class names), or "
        f"erase_relu(model, predicate=lambda name, m: name.startswith('blocks.')). Module classes in this model "
        f"include: {', '.join(kinds)}. Known rules: rectlab BasicModule subclasses, torchvision ResNet/WRN/ResNeXt "
        f"blocks, VGG stages, DenseNet layers, MobileNetV2 inverted residuals; timm ResNet, EfficientNet, ConvNeXt and "
        f"ViT blocks"
    )


def _find_basic_modules(
    model: nn.Module,
    sites: list[Site],
    module_types: Iterable[type | str] | type | str | None,
    predicate: Callable[[str, nn.Module], bool] | None,
) -> tuple[dict[str, list[Site]], dict[str, str], str]:
    """Group sites by basic module. Returns (groups, {group: why it is linear at its output}, rule text)."""
    if module_types is not None or predicate is not None:
        test, rule = _basic_module_test(module_types, predicate)
        groups = _group_by_scope(model, sites, test)
        if not groups:
            raise SurgeryError(f"no activation site lies inside a module selected by {rule}; check the class names")
        return groups, {}, rule
    if _qualname(original_type(model)) == _VGG_QUALNAME:
        return _pool_stages(model, sites, "features"), {}, "torchvision VGG: stages between max-poolings"
    by_name = {r.qualname: r for r in (*_TORCHVISION_RULES, *_TIMM_RULES)}

    def builtin(path: str, m: nn.Module) -> bool:
        kind = original_type(m)
        return issubclass(kind, BasicModule) or _qualname(kind) in by_name

    groups = _group_by_scope(model, sites, builtin)
    if not groups:
        raise _no_rule_error(model)
    linear = {}
    for g in groups:
        known = by_name.get(_qualname(original_type(model.get_submodule(g))))
        if known is not None and known.linear_output:
            linear[g] = known.linear_output
    kinds = sorted({original_type(model.get_submodule(g)).__name__ for g in groups})
    return groups, linear, "built-in rule: " + ", ".join(kinds)


def _pick(
    group: str, sites: list[Site], location: str | int, linear: dict[str, str], match: Match
) -> tuple[Site | None, str]:
    if not sites:
        return None, f"no activation site matching {match!r}"
    if location == "last":
        if group in linear:
            return None, linear[group]
        site = sites[-1]
    elif location == "first":
        site = sites[0]
    else:
        if not isinstance(location, int) or not -len(sites) <= location < len(sites):
            raise SurgeryError(
                f"location={location} is out of range for basic module {group!r}, which has {len(sites)} activation "
                f"site(s) ({', '.join(s.op for s in sites)}); use 'first', 'last' or an index in "
                f"[{-len(sites)}, {len(sites) - 1}]"
            )
        site = sites[location]
    if site.op == "identity":
        return None, "already erased (an identity site)"
    return site, ""


def _choose(n: int, proportion: float, select: str, seed: int) -> list[int]:
    k = math.floor(proportion * n + 0.5)  # round half up: 0.5 of 3 modules erases 2
    if select == "first":
        return list(range(k))
    if select == "last":
        return list(range(n - k, n))
    return sorted(random.Random(seed).sample(range(n), k))


SELECTIONS = ("random", "first", "last")


def erase_relu(
    model: nn.Module,
    location: str | int = "last",
    proportion: float = 1.0,
    *,
    select: str = "random",
    seed: int = 0,
    match: Match = None,
    module_types: Iterable[type | str] | type | str | None = None,
    predicate: Callable[[str, nn.Module], bool] | None = None,
    example_input: ExampleInput = None,
    inplace: bool = False,
) -> tuple[nn.Module, EraseReport]:
    """EraseReLU (Dong et al. 2017, arXiv 1709.07634): replace one activation per basic module with identity.

    The paper finds two factors that matter: the *location* of the erased ReLU inside the basic module, and
    the *proportion* of basic modules it is erased in; erasing the last ReLU of every module usually helps.

    Basic modules are recognised by built-in rules: rectlab's blocks (any
    [`BasicModule`][rectlab.models.BasicModule]); torchvision ``BasicBlock`` and ``Bottleneck`` (ResNet, Wide-ResNet,
    ResNeXt; the last site is the ``self.relu`` call after the residual addition); VGG stages (the sites in
    ``features`` between two max-poolings); DenseNet ``_DenseLayer``; MobileNetV2 ``InvertedResidual``, which
    is linear at its output by design, so ``location="last"`` erases nothing there (a warning says so); timm's
    ResNet ``BasicBlock``/``Bottleneck``, ``ConvNeXtBlock``, ViT ``Block`` (the MLP's GELU) and EfficientNet /
    MobileNetV3 blocks (linear at their output like MobileNetV2's). For
    other models pass ``module_types`` (classes or class names) and/or ``predicate(name, module) -> bool``;
    these replace the built-in rules. A site belongs to the innermost basic module whose ``forward`` was
    running when it was called.

    Args:
        model: the model; not changed unless ``inplace=True``.
        location: which activation site of each basic module, in call order: ``"last"``, ``"first"``, or an
            index (negative counts from the end). Sites already erased count, so erasing twice is a no-op.
        proportion: fraction of the eligible basic modules to erase in, in [0, 1]; ``round(proportion * n)``
            modules (halves round up).
        select: which modules when ``proportion < 1``: ``"random"`` (seeded by ``seed``), ``"first"`` or
            ``"last"`` (by call order: shallow or deep modules).
        seed: seed for ``select="random"``; the same seed picks the same modules.
        match: which activations count, as in `swap_activations` (an op name such as ``"relu"``, a
            list, or a predicate on [`Site`][rectlab.surgery.Site]); ``None``: all. ``location`` indexes the matching
            sites of each module (plus its already-erased identity sites).
        module_types: classes or class names of the basic module, for architectures without a rule.
        predicate: ``f(name, module) -> bool`` marking basic modules by path or anything else.
        example_input: optional; needed only when an erased site lies in a part torch.fx cannot trace.
        inplace: edit ``model`` itself instead of a deep copy (use the returned model either way).

    Returns:
        ``(new_model, report)``: see [`EraseReport`][rectlab.surgery.EraseReport]; ``report.erased`` lists the erased
        sites.

    Raises:
        SurgeryError: no rule for the architecture (the message shows how to name its basic module), a
            location out of range, or a site that cannot be edited on its own.
        ValueError: bad ``location``, ``proportion`` or ``select``.

    Example:
        >>> import torchvision
        >>> net, report = erase_relu(torchvision.models.resnet18(weights=None))
        >>> len(report.erased), report.erased[0].target, report.erased[0].call
        (8, 'layer1.0.relu', 1)
    """
    _check_erase_args(location, proportion, select, match)
    work = model if inplace else copy.deepcopy(model)
    analysis = analyze(work, example_input)
    groups, linear, rule = _find_basic_modules(work, analysis.sites, module_types, predicate)
    eligible, skipped = _eligible_sites(groups, location, linear, match)
    chosen = [eligible[i] for i in _choose(len(eligible), float(proportion), select, seed)]
    report = EraseReport(
        location=location,
        proportion=float(proportion),
        rule=rule,
        modules=tuple(groups),
        selected=tuple(g for g, _ in chosen),
        erased=tuple(s for _, s in chosen),
        skipped=tuple(skipped),
    )
    if not chosen:
        warnings.warn("nothing to erase: " + report.message, SurgeryWarning, stacklevel=2)
        return work, report
    new_model = _rewrite(analysis, {s.index: activations.Identity() for _, s in chosen})
    return new_model, report


def _check_erase_args(location: str | int, proportion: float, select: str, match: Match) -> None:
    """Refuse bad arguments before the model is copied or traced."""
    if not (location in ("last", "first") or (isinstance(location, int) and not isinstance(location, bool))):
        raise InputError(f"location must be 'last', 'first' or an int index (negative from the end), got {location!r}")
    if isinstance(proportion, bool) or not isinstance(proportion, (int, float)) or not 0 <= proportion <= 1:
        raise InputError(
            f"proportion is the fraction of basic modules to erase in and must be in [0, 1], got {proportion!r}"
        )
    if select not in SELECTIONS:
        raise InputError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    if match is not None:
        _matcher(match)  # unknown op names fail here


def _eligible_sites(
    groups: dict[str, list[Site]], location: str | int, linear: dict[str, str], match: Match
) -> tuple[list[tuple[str, Site]], list[tuple[str, str]]]:
    """The site at ``location`` of each basic module: ``(eligible (module, site), skipped (module, why))``.

    ``location`` indexes the sites that ``match`` plus the already-erased identity sites, so erasing twice
    finds the identity and skips the module.
    """
    matches = (lambda s: True) if match is None else _matcher(match)
    eligible: list[tuple[str, Site]] = []
    skipped: list[tuple[str, str]] = []
    for group, group_sites in groups.items():
        counted = [s for s in group_sites if s.op == "identity" or matches(s)]
        site, why = _pick(group, counted, location, linear, match)
        if site is None:
            skipped.append((group, why))
        else:
            eligible.append((group, site))
    return eligible, skipped
