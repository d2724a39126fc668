"""Edit call sites: module replacement where a module has one call, owner-graph rewrites elsewhere."""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import torch.fx as fx
from torch import nn

from .. import activations
from ..errors import InputError, InputTypeError
from .analysis import ExampleInput, _Analysis, _short, _Tracer, analyze
from .sites import _ORIGINAL_TYPE, Site, SurgeryError, SurgeryWarning, _node_op, op_names, original_type

__all__ = ["Match", "swap_activations"]

Match = str | Iterable[str] | Callable[[Site], bool] | None


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def _free_name(owner: nn.Module, dotted: str) -> str:
    parent_path, _, name = dotted.rpartition(".")
    parent = owner.get_submodule(parent_path) if parent_path else owner
    candidate, i = name, 2
    while hasattr(parent, candidate):
        candidate, i = f"{name}_{i}", i + 1
    return f"{parent_path}.{candidate}" if parent_path else candidate


def _shareable(modules: list[nn.Module]) -> bool:
    """One module may stand in for several calls only if it has no state that the calls would share."""
    first = modules[0]
    return all(
        type(m) is type(first) and m.extra_repr() == first.extra_repr() and not any(True for _ in m.parameters())
        for m in modules
    )


def _rewrite(analysis: _Analysis, replacements: dict[int, nn.Module]) -> nn.Module:
    """Make every site in ``replacements`` call its new module; returns the (possibly new) root."""
    model = analysis.model
    sites = analysis.sites
    changed = {i: sites[i] for i in replacements}
    module_swaps: dict[str, nn.Module] = {}
    owner_edits: dict[str, dict[int, nn.Module]] = defaultdict(dict)
    untraced: dict[str, list[Site]] = defaultdict(list)
    for i, site in changed.items():
        if not site.traced:  # found by enumerating modules: a module site
            untraced[site.target or ""].append(site)
        elif site.kind == "module" and site.target is not None and analysis.calls(site.target) == 1:
            module_swaps[site.target] = replacements[i]
        else:
            owner_edits[site.owner][i] = replacements[i]

    for target, group in untraced.items():
        module_swaps[target] = _untraced_replacement(analysis, target, group, replacements)

    # Deepest owners first: an ancestor's shallow trace then sees the rewritten child as a leaf.
    for owner in sorted(owner_edits, key=lambda p: -1 if p == "" else p.count("."), reverse=True):
        new_owner = _rewrite_owner(analysis, owner, owner_edits[owner], replacements)
        if owner == "":
            model = new_owner
        else:
            _set_submodule(model, owner, new_owner)
    # One module object can be registered under several paths (shared by two parents); fx names it by the
    # first, but the caller may hold it under another, so replace it wherever it is registered.
    paths: dict[int, list[str]] = defaultdict(list)
    for path, m in model.named_modules(remove_duplicate=False):
        paths[id(m)].append(path)
    for target, module in module_swaps.items():
        for path in paths[id(analysis.model.get_submodule(target))]:
            _set_submodule(model, path, module)
    return model


def _untraced_replacement(
    analysis: _Analysis, target: str, group: list[Site], replacements: dict[int, nn.Module]
) -> nn.Module:
    region = analysis.region_of(group[0])
    where = (
        f"submodule {region!r} ({original_type(analysis.model.get_submodule(region)).__name__})"
        if region
        else "the model"
    )
    why = analysis.why(region)
    if not analysis.calls_known:
        raise SurgeryError(
            f"{target!r} is inside {where}, which torch.fx could not trace ({why}); pass example_input=... so "
            f"rectlab can run the model once and count how often each activation module there is called"
        )
    all_calls = [s for s in analysis.sites if s.target == target]
    news = [replacements[s.index] for s in group]
    if len(group) == len(all_calls) and (len(group) == 1 or _shareable(news)):
        return news[0]
    problem = (
        f"only {len(group)} of its {len(all_calls)} calls are to change"
        if len(group) != len(all_calls)
        else f"its {len(all_calls)} calls would share one {type(news[0]).__name__} with parameters"
    )
    raise SurgeryError(
        f"cannot edit {target!r}: it is called at {len(all_calls)} sites inside {where}, which torch.fx could not "
        f"trace ({why}), so only the whole module can be replaced, and {problem}. Fixes: make the "
        f"forward of that submodule traceable (no Python control flow on tensor values), give each call its "
        f"own module, or choose sites that cover every call of {target!r} (match=... / location=...)"
    )


def _rewrite_owner(
    analysis: _Analysis, owner: str, edits: dict[int, nn.Module], replacements: dict[int, nn.Module]
) -> fx.GraphModule:
    """Rewrite the owner's own forward so that each edited site calls its own new module."""
    root = analysis.model
    owner_mod = root.get_submodule(owner) if owner else root
    label = f"{owner!r} ({original_type(owner_mod).__name__})" if owner else f"the model ({type(owner_mod).__name__})"
    try:
        graph = _Tracer(shallow=True).trace(owner_mod)
    except Exception as e:
        raise SurgeryError(f"could not re-trace {label} to edit its activation calls ({_short(e)})") from e
    local = [n for n in graph.nodes if _node_op(n, owner_mod) is not None]
    owned = [s for s in analysis.sites if s.traced and s.owner == owner]
    if not local or len(owned) % len(local):
        raise SurgeryError(
            f"the forward of {label} has {len(local)} activation calls but the whole-model trace saw {len(owned)}; "
            f"its forward seems to depend on where it is called from, which surgery cannot rewrite"
        )
    n_fn = 0
    for j, node in enumerate(local):
        group = owned[j :: len(local)]  # the same call in every invocation of the owner
        hit = [s for s in group if s.index in edits]
        if node.op != "call_module":
            n_fn += 1  # numbered among all function calls of the owner, edited or not
        if not hit:
            continue
        if len(hit) != len(group):
            raise SurgeryError(
                f"{label} runs {len(group)} times and only some of its runs should change site {hit[0].node!r}; "
                f"one forward cannot do both. Select the site in every run, or give each use its own module"
            )
        site, new = hit[0], edits[hit[0].index]
        if node.op == "call_module":
            all_calls = [s for s in analysis.sites if s.target == site.target]
            reuse = site.call == 0 and all(s.index in replacements for s in all_calls)
            name = node.target if reuse else _free_name(owner_mod, f"{node.target}_{site.call}")
            _set_submodule(owner_mod, name, new)
            node.target = name
        else:
            name = _free_name(owner_mod, f"{site.op.replace('-', '_')}_f{n_fn - 1}")
            _set_submodule(owner_mod, name, new)
            x = node.args[0] if node.args else next(iter(node.kwargs.values()))
            with graph.inserting_after(node):
                call = graph.call_module(name, (x,))
            call.meta.update(node.meta)
            node.replace_all_uses_with(call)
            graph.erase_node(node)
    graph.lint()
    return _graph_module(owner_mod, graph)


def _graph_module(owner_mod: nn.Module, graph: fx.Graph) -> fx.GraphModule:
    kind = original_type(owner_mod)
    gm = fx.GraphModule(owner_mod, graph, class_name=kind.__name__)
    # GraphModule copies only what the graph uses, and flattens dotted paths into plain Modules; put the
    # owner's own children, parameters and buffers back so classes, names and state_dict keys survive.
    for name, child in owner_mod.named_children():
        setattr(gm, name, child)
    for name, p in owner_mod.named_parameters(recurse=False):
        if name not in gm._parameters:
            gm.register_parameter(name, p)
    non_persistent: set[str] = getattr(owner_mod, "_non_persistent_buffers_set", set())
    for name, b in owner_mod.named_buffers(recurse=False):
        if name not in gm._buffers:
            gm.register_buffer(name, b, persistent=name not in non_persistent)
    gm.meta[_ORIGINAL_TYPE] = kind
    gm.training = owner_mod.training
    return gm


def _normalize_op(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _matcher(match: Match) -> Callable[[Site], bool]:
    if match is None:
        return lambda s: s.op != "identity"
    if callable(match) and not isinstance(match, str):
        return match
    wanted = {_normalize_op(match)} if isinstance(match, str) else {_normalize_op(m) for m in match}
    unknown = sorted(wanted - set(op_names()))
    if unknown:
        raise InputError(
            f"match names unknown op(s) {', '.join(map(repr, unknown))}; site ops are: {', '.join(op_names())}. "
            f"To select by anything else pass a predicate, e.g. match=lambda site: site.owner.startswith('layer3')"
        )
    return lambda s: s.op in wanted


def _wants_channels(to: Any, kwargs: dict[str, Any]) -> bool:
    cls = activations.get(to) if isinstance(to, str) else to if isinstance(to, type) else None
    return bool(getattr(cls, "wants_channels", False)) and "num_parameters" not in kwargs


def swap_activations(
    model: nn.Module,
    to: str | type[nn.Module] | Callable[[int | None], nn.Module],
    match: Match = None,
    *,
    example_input: ExampleInput = None,
    inplace: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Make every matching activation call site use activation ``to``, each site with its own new module.

    Args:
        model: the model; not changed unless ``inplace=True``.
        to: a registered activation name, an ``nn.Module`` class, or ``make(channels) -> nn.Module``
            (``channels`` is the site's channel count, ``None`` without an example input).
        match: which sites: ``None`` (every site except rectlab ``Identity`` sites, so erased ReLUs stay
            erased), an op name (``"relu"``), a list of op names, or a predicate ``f(site) -> bool``.
        example_input: a tensor shaped like the input; required when ``to`` is per-channel (``"prelu"``,
            ``"swish-channelwise"``) so each new module gets the channel count of its site.
        inplace: edit ``model`` itself instead of a deep copy. Use the returned model either way: when the
            model's own forward calls an activation function, the result is a new ``GraphModule``.
        **kwargs: constructor arguments for ``to`` (``negative_slope=0.2``, ``init=0.1``, ...).

    Returns:
        The edited model. A module called at several sites (torchvision's ``self.relu``) gets one new module
        per site (``relu`` for the first call, ``relu_1`` for the second); a function call ``F.relu`` becomes
        a call of a new module ``relu_f0`` of its owner. Other parameters keep their names.

    Raises:
        ValueError: for an unknown op name in ``match``, or a per-channel ``to`` without ``example_input``.
        TypeError: when ``to`` is a module instance (one instance would be shared by every site).
        SurgeryError: when a site inside a submodule torch.fx cannot trace cannot be edited on its own.

    Example:
        >>> import torch, torchvision
        >>> net = torchvision.models.resnet18(weights=None)
        >>> net2 = swap_activations(net, "prelu", example_input=torch.randn(1, 3, 64, 64))
        >>> net2.layer1[0].relu_1
        PReLU(num_parameters=64, init=0.25)
    """
    if isinstance(to, nn.Module):
        raise InputTypeError(
            f"to= must be a name, a class or a factory, not a {type(to).__name__} instance: one instance would be "
            f"shared by every site. Pass type(module) with its arguments, or lambda channels: MyAct(...)"
        )
    if isinstance(to, str):
        activations.get(to)  # unknown names fail here, listing the known ones
    if _wants_channels(to, kwargs) and example_input is None:
        raise InputError(
            f"{to!r} is per-channel and each site needs its channel count: pass example_input=torch.randn(1, C, H, W) "
            f"shaped like the model's input (or use a channel-shared variant such as 'prelu-shared')"
        )
    make = activations.factory(to, **kwargs)
    select = _matcher(match)
    work = model if inplace else copy.deepcopy(model)
    analysis = analyze(work, example_input)
    chosen = [s for s in analysis.sites if select(s)]
    if not chosen:
        ops = sorted({s.op for s in analysis.sites})
        warnings.warn(
            f"no activation site matched {match!r}; the model's site ops are {ops}", SurgeryWarning, stacklevel=2
        )
        return work
    replacements = {s.index: make(s.channels) for s in chosen}
    return _rewrite(analysis, replacements)
