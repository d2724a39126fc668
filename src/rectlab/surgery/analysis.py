"""Find activation call sites: trace with torch.fx, fall back to module enumeration, record shapes and calls."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor, nn

from .. import activations
from ..activations import ReLUClassifier
from ..errors import InputError, InputTypeError
from .sites import Site, SurgeryError, SurgeryWarning, _node_op, module_op, original_type

__all__ = ["ExampleInput", "activation_sites", "analyze"]

ExampleInput = Tensor | Sequence[Tensor] | None


class _Tracer(fx.Tracer):
    """Keeps activation modules (and ``opaque`` paths) as leaves and records the module-call stack.

    With ``shallow=True`` every submodule is a leaf: only the root's own ``forward`` is traced.
    ``failed_in`` names the innermost submodule whose ``forward`` raised during tracing.
    """

    def __init__(self, opaque: frozenset[str] = frozenset(), shallow: bool = False) -> None:
        super().__init__()
        self.opaque = opaque
        self.shallow = shallow
        self.call_stack: list[str] = []
        self.failed_in: str | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self.shallow or module_qualified_name in self.opaque:
            return True
        if module_op(m) is not None or isinstance(m, ReLUClassifier):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        path = self.path_of_module(m)
        self.call_stack.append(path)
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None and not self.is_leaf_module(m, path):
                self.failed_in = path
            raise
        finally:
            self.call_stack.pop()

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta["rectlab_scope"] = tuple(self.call_stack)
        return node


@dataclass
class _Analysis:
    """Everything surgery and init need to know about a model's activation sites."""

    model: nn.Module
    sites: list[Site]
    graph: fx.Graph | None
    nodes: dict[int, fx.Node]  # site index -> graph node, for traced sites
    opaque: dict[str, str]  # submodule path fx could not trace (or treats as a leaf) -> why
    root_error: str | None  # why the whole model could not be traced
    calls_known: bool  # call counts inside untraced parts come from an example run
    opaque_nodes: dict[str, list[int]] = field(default_factory=dict)  # opaque leaf target -> its site indices

    def calls(self, target: str) -> int:
        return sum(1 for s in self.sites if s.target == target)

    def site_by_target(self, path: str) -> Site | None:
        return next((s for s in self.sites if s.target == path), None)

    def opaque_first_site(self, path: str) -> Site | None:
        indices = self.opaque_nodes.get(path, [])
        return self.sites[indices[0]] if indices else None

    def site_module(self, site: Site) -> nn.Module:
        """The module a site calls, or an equivalent module for a function call (used for gains)."""
        if site.kind == "module" and site.target is not None:
            return self.model.get_submodule(site.target)
        return _functional_equivalent(self.nodes[site.index], site.op, self.model)

    def region_of(self, site: Site) -> str:
        """The untraceable submodule a non-traced site lives in (``""`` when the whole model is)."""
        target = site.target or ""
        for path in self.opaque:
            if target == path or target.startswith(path + "."):
                return path
        return ""

    def why(self, region: str) -> str:
        return self.opaque.get(region, self.root_error or "")


def _arg(node: fx.Node, i: int, name: str, default: Any) -> Any:
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[i] if len(node.args) > i else default


def _functional_equivalent(node: fx.Node, op: str, root: nn.Module) -> nn.Module:
    if op == "leaky-relu":
        return activations.LeakyReLU(float(_arg(node, 1, "negative_slope", 0.01)))
    if op in ("elu", "celu"):
        return activations.create(op, alpha=float(_arg(node, 1, "alpha", 1.0)))
    if op == "rrelu":
        return activations.RReLU(float(_arg(node, 1, "lower", 1 / 8)), float(_arg(node, 2, "upper", 1 / 3)))
    if op == "softplus":
        return activations.Softplus(float(_arg(node, 1, "beta", 1.0)), float(_arg(node, 2, "threshold", 20.0)))
    if op == "prelu":
        weight = _arg(node, 1, "weight", None)
        if isinstance(weight, fx.Node) and weight.op == "get_attr":
            owner, _, name = str(weight.target).rpartition(".")
            value = getattr(root.get_submodule(owner) if owner else root, name)
            return activations.LeakyReLU(float(value.detach().float().mean()))
        return activations.PReLUShared()
    if op == "relu6":
        return nn.ReLU6()
    if op == "hardswish":
        return nn.Hardswish()
    return activations.create(op)


def _as_args(example_input: ExampleInput) -> tuple[Tensor, ...] | None:
    if example_input is None:
        return None
    if isinstance(example_input, Tensor):
        return (example_input,)
    if isinstance(example_input, (tuple, list)) and all(isinstance(t, Tensor) for t in example_input):
        return tuple(example_input)
    raise InputTypeError(
        f"example_input must be a tensor (e.g. torch.randn(1, 3, 32, 32)) or a tuple of the forward's "
        f"positional tensors, got {type(example_input).__name__}"
    )


@contextmanager
def _probing(model: nn.Module) -> Iterator[None]:
    """Evaluation mode and no grad for an example run, restoring every module's mode afterwards.

    Evaluation mode keeps BatchNorm running statistics and dropout untouched by the probe.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, training in modes:
            m.training = training


def _shape(out: Any) -> tuple[int, ...] | None:
    return tuple(out.shape) if isinstance(out, Tensor) else None


def _channels(shape: tuple[int, ...] | None) -> int | None:
    if not shape:
        return None
    return shape[1] if len(shape) >= 2 else shape[0]


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(e).__name__}: {first}"


def _parents(path: str) -> tuple[str, ...]:
    parts = path.split(".")[:-1]
    return tuple(".".join(parts[: i + 1]) for i in range(len(parts)))


def _activation_modules(root: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    found = []
    for path, m in root.named_modules(prefix=prefix):
        if module_op(m) is not None:
            found.append((path, m))
    return found


class _Recorder(fx.Interpreter):
    """Runs the traced graph on the example input; records shapes at sites and calls inside opaque leaves."""

    def __init__(self, gm: fx.GraphModule, watch: set[fx.Node]) -> None:
        super().__init__(gm)
        self.watch = watch
        self.shapes: dict[fx.Node, tuple[int, ...] | None] = {}
        self.current: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        out = super().run_node(n)
        if n in self.watch:
            self.shapes[n] = _shape(out)
        return out


def _trace(model: nn.Module) -> tuple[fx.Graph | None, dict[str, str], str | None]:
    """Trace ``model``, turning each submodule fx fails on into an opaque leaf; ``None`` if the root fails."""
    opaque: dict[str, str] = {}
    for _ in range(sum(1 for _ in model.modules()) + 1):
        tracer = _Tracer(frozenset(opaque))
        try:
            return tracer.trace(model), opaque, None
        except Exception as e:  # fx raises many kinds (TraceError, TypeError, NotImplementedError, ...)
            path = tracer.failed_in
            if path is None or path in opaque:
                return None, opaque, _short(e)
            # Instances of one class fail the same way: make them all leaves at once instead of one per retry.
            failed = type(model.get_submodule(path))
            for p, m in model.named_modules():
                if type(m) is failed and not any(p.startswith(o + ".") for o in opaque):
                    opaque[p] = _short(e)
    return None, opaque, "tracing did not converge"


def analyze(model: nn.Module, example_input: ExampleInput = None) -> _Analysis:
    """Find every activation site of ``model`` (see [`activation_sites`][rectlab.surgery.activation_sites])."""
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"model must be an nn.Module, got {type(model).__name__}")
    args = _as_args(example_input)
    graph, opaque, root_error = _trace(model)
    if graph is None:
        analysis = _analyze_untraced(model, args, opaque, root_error)
    else:
        analysis = _analyze_graph(model, graph, args, opaque)
    _warn_untraced(analysis)
    return analysis


def _run_example(model: nn.Module, fn: Callable[[], Any]) -> None:
    try:
        with _probing(model):
            fn()
    except Exception as e:
        raise InputError(
            f"the model failed on example_input ({_short(e)}); pass a tensor shaped like its real input, "
            f"e.g. torch.randn(1, 3, 32, 32) for CIFAR or torch.randn(1, 1, 28, 28) for Fashion-MNIST"
        ) from e


def _hook_calls(modules: list[tuple[str, nn.Module]], record: Callable[[str, Any], None]) -> list[Any]:
    handles = []
    for path, m in modules:
        handles.append(m.register_forward_hook(lambda _m, _i, out, path=path: record(path, out)))
    return handles


def _analyze_graph(
    model: nn.Module, graph: fx.Graph, args: tuple[Tensor, ...] | None, opaque: dict[str, str]
) -> _Analysis:
    act_nodes: list[tuple[fx.Node, str]] = []
    leaves: dict[str, list[tuple[str, nn.Module]]] = {}  # opaque leaf target -> activation modules inside it
    for node in graph.nodes:
        op = _node_op(node, model)
        if op is not None:
            act_nodes.append((node, op))
        elif node.op == "call_module":
            inner = _activation_modules(model.get_submodule(node.target), node.target)
            if inner:
                leaves[node.target] = inner
                opaque.setdefault(node.target, "a torch.nn module that torch.fx treats as a leaf")

    shapes: dict[fx.Node, tuple[int, ...] | None] = {}
    leaf_calls: dict[str, list[tuple[str, tuple[int, ...] | None]]] = defaultdict(list)
    if args is not None:
        gm = fx.GraphModule(model, graph)
        recorder = _Recorder(gm, {n for n, _ in act_nodes})
        handles = _hook_calls(
            [pm for inner in leaves.values() for pm in inner],
            lambda path, out: leaf_calls[str(recorder.current.target if recorder.current else "")].append(
                (path, _shape(out))
            ),
        )
        try:
            _run_example(model, lambda: recorder.run(*[a.clone() for a in args]))
        finally:
            for h in handles:
                h.remove()
        shapes = recorder.shapes

    sites: list[Site] = []
    nodes: dict[int, fx.Node] = {}
    opaque_nodes: dict[str, list[int]] = {}
    calls: dict[str, int] = defaultdict(int)
    ops = dict(act_nodes)
    for node in graph.nodes:
        if node in ops:
            stack = node.meta.get("rectlab_scope", ())
            is_module = node.op == "call_module"
            scope = stack[:-1] if is_module else stack
            target = node.target if is_module else None
            shape = shapes.get(node)
            sites.append(
                _make_site(
                    model,
                    len(sites),
                    ops[node],
                    node.op.removeprefix("call_"),
                    scope,
                    target,
                    calls,
                    node.name,
                    shape,
                    True,
                )
            )
            nodes[len(sites) - 1] = node
        elif node.op == "call_module" and node.target in leaves:
            called: list[tuple[str, tuple[int, ...] | None]] = (
                leaf_calls[node.target] if args is not None else [(p, None) for p, _ in leaves[node.target]]
            )
            opaque_nodes[node.target] = []
            for path, leaf_shape in called:
                opaque_nodes[node.target].append(len(sites))
                sites.append(
                    _make_site(
                        model,
                        len(sites),
                        _op_of(model.get_submodule(path)),
                        "module",
                        _parents(path),
                        path,
                        calls,
                        None,
                        leaf_shape,
                        False,
                    )
                )
    return _Analysis(model, sites, graph, nodes, opaque, None, args is not None, opaque_nodes)


def _analyze_untraced(
    model: nn.Module, args: tuple[Tensor, ...] | None, opaque: dict[str, str], root_error: str | None
) -> _Analysis:
    modules = _activation_modules(model)
    if args is not None:
        seen: list[tuple[str, tuple[int, ...] | None]] = []
        handles = _hook_calls(modules, lambda path, out: seen.append((path, _shape(out))))
        try:
            _run_example(model, lambda: model(*[a.clone() for a in args]))
        finally:
            for h in handles:
                h.remove()
    else:
        seen = [(p, None) for p, _ in modules]
    calls: dict[str, int] = defaultdict(int)
    sites = [
        _make_site(model, i, _op_of(model.get_submodule(p)), "module", _parents(p), p, calls, None, shape, False)
        for i, (p, shape) in enumerate(seen)
    ]
    return _Analysis(model, sites, None, {}, {}, root_error, args is not None)


def _op_of(module: nn.Module) -> str:
    """The op of a module found by enumerating activation modules (so it has one)."""
    op = module_op(module)
    if op is None:
        raise SurgeryError(f"{type(module).__name__} is not an activation module")
    return op


def _make_site(
    model: nn.Module,
    index: int,
    op: str,
    kind: str,
    scope: tuple[str, ...],
    target: str | None,
    calls: dict[str, int],
    node: str | None,
    shape: tuple[int, ...] | None,
    traced: bool,
) -> Site:
    owner = scope[-1] if scope else ""
    call = 0
    if target is not None:
        call = calls[target]
        calls[target] += 1
    owner_module = model.get_submodule(owner) if owner else model
    return Site(
        index=index,
        op=op,
        kind=kind,
        owner=owner,
        owner_type=original_type(owner_module).__name__,
        target=target,
        call=call,
        node=node,
        channels=_channels(shape),
        shape=shape,
        scope=tuple(scope),
        traced=traced,
    )


def _warn_untraced(analysis: _Analysis) -> None:
    if analysis.root_error is not None:
        warnings.warn(
            f"torch.fx could not trace the model ({analysis.root_error}); its activation modules were found by "
            f"module enumeration, and function calls such as F.relu inside its forward are not seen",
            SurgeryWarning,
            stacklevel=4,
        )
        return
    # Every opaque part, with or without activation modules: function calls inside any of them are invisible.
    failed = analysis.opaque
    if failed:
        listed = "; ".join(f"{p!r} ({why})" for p, why in list(failed.items())[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        warnings.warn(
            f"torch.fx could not trace into {listed}{more}: activation modules inside were found by module "
            f"enumeration, and function calls such as F.relu inside their forward are not seen",
            SurgeryWarning,
            stacklevel=4,
        )


def activation_sites(model: nn.Module, example_input: ExampleInput = None) -> list[Site]:
    """Every activation call site of ``model``, in call order.

    Args:
        model: any ``nn.Module``; it is not changed (an example run uses evaluation mode and no grad, and
            restores every module's mode).
        example_input: a tensor shaped like the model's input (or a tuple of the forward's positional
            tensors). Optional; gives each site its ``shape`` and ``channels``, and counts calls inside
            submodules torch.fx cannot trace.

    Returns:
        A list of [`Site`][rectlab.surgery.Site], in the order the forward pass reaches them.

    Example:
        >>> import torch, torchvision
        >>> sites = activation_sites(torchvision.models.resnet18(weights=None), torch.randn(1, 3, 64, 64))
        >>> len(sites), sites[2].owner, sites[2].target, sites[2].call
        (17, 'layer1.0', 'layer1.0.relu', 1)
    """
    return list(analyze(model, example_input).sites)
