"""Probes: what the activations of a network do, measured with forward hooks on its activation call sites.

* [`DeadNeurons`][rectlab.probes.DeadNeurons] — per layer, the units that never fire over a data pass (the dead neuron
  rate) and
  the *dynamic* dead neuron rate: the fraction of units not firing for a given input, averaged over
  inputs (Liu et al. 2022, "AP: Selective Activation for De-sparsifying Pruned Neural Networks",
  arXiv 2212.06145).
* [`ActivationStats`][rectlab.probes.ActivationStats] — per layer, the mean and variance of the activations and the mean
  absolute per-channel mean: the "bias shift" of Clevert et al. 2015 (ELU, arXiv 1511.07289).
* [`slope_table`][rectlab.probes.slope_table] — the learned PReLU slopes / Swish betas per layer (He et al. 2015, Table
  1).
* [`prediction_difference`][rectlab.probes.prediction_difference] — how much two models' predictions differ (Shamir et
  al. 2020, arXiv 2010.09931).
* [`epoch_callbacks`][rectlab.probes.epoch_callbacks] — the probes as epoch callbacks of
  [`rectlab.training.loop.train_one`][rectlab.training.loop.train_one].

A probe hooks only while it is attached (``with DeadNeurons(model) as probe: ...``): a model without
an attached probe runs untouched, at no cost. Statistics accumulate on the model's device; the host is
only synchronised when `Probe.result` is read.

Call sites. A hook sits on an activation *module*. rectlab's models give every call site its own
module; when one module is called several times per forward (torchvision's ``self.relu``), each
call is counted as its own site (``layer1.0.relu``, ``layer1.0.relu#2``). Functional calls inside
``forward`` (``F.relu(x)``) have no module to hook: turn them into modules first with
[`rectlab.surgery.swap_activations`][rectlab.surgery.swap_activations], or pass ``sites={name: module}`` explicitly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from .activations import PReLU, Swish
from .activations.kinds import GATING_MODULES, module_op
from .data import augment
from .errors import InputError, InputTypeError

__all__ = [
    "ActivationStats",
    "DeadNeurons",
    "LayerActivationStats",
    "LayerDeadNeurons",
    "PROBES",
    "PredictionDifference",
    "Probe",
    "epoch_callbacks",
    "learned_slopes",
    "per_site_curves",
    "probe_batches",
    "predict_proba",
    "prediction_difference",
    "prediction_difference_from_probs",
    "probe_sites",
    "slope_table",
]


def probe_sites(model: nn.Module) -> dict[str, nn.Module]:
    """The modules a probe hooks by default: the nonlinearities of ``model`` by qualified name, in registration order.

    Recognised: every activation module [`rectlab.surgery.module_op`][rectlab.surgery.module_op] names (rectlab's and
        torch's:
    ``nn.ReLU``, ``nn.PReLU``, ``nn.GELU``, ...) except identities (an erased site has no nonlinearity left to
    probe), and the gating modules ``nn.Tanh`` and ``nn.Sigmoid``
    (`rectlab.surgery.sites.GATING_MODULES`). A module registered under two names appears once.
    Unlike [`rectlab.surgery.activation_sites`][rectlab.surgery.activation_sites], this lists modules, not call sites,
    and needs no tracing.

    Args:
        model: any ``nn.Module``.

    Returns:
        ``{name: module}``; empty when the model has no activation modules.
    """
    return {name: m for name, m in model.named_modules() if name and _is_probed(m)}


def _is_probed(module: nn.Module) -> bool:
    op = module_op(module)
    return (op is not None and op != "identity") or isinstance(module, GATING_MODULES)


P = TypeVar("P", bound="Probe")


class Probe:
    """Base class: forward hooks on activation call sites, attached only inside ``with`` (or attach/detach).

    Subclasses implement `_observe` (called with the site name, the activation's input and
    output, under ``torch.no_grad``), `reset` and `result`.

    Args:
        model: the network to observe.
        sites: ``{name: module}`` to hook; default [`probe_sites`][rectlab.probes.probe_sites] of ``model``.

    Raises:
        ValueError: when there is no site to hook (the message says how to provide one).
    """

    def __init__(self, model: nn.Module, sites: Mapping[str, nn.Module] | None = None) -> None:
        self.model = model
        self.sites = dict(sites) if sites is not None else probe_sites(model)
        if not self.sites:
            raise InputError(
                f"{type(model).__name__} has no activation modules to probe; if it calls activations functionally "
                "(F.relu), convert them with rectlab.surgery.swap_activations or pass sites={name: module}"
            )
        self._handles: list[Any] = []
        self._calls: dict[str, int] = {}
        self.reset()

    # -- hooks -----------------------------------------------------------------------------------------
    def attach(self) -> Probe:
        """Register the hooks (idempotent); returns ``self``."""
        if self._handles:
            return self
        self._handles.append(self.model.register_forward_pre_hook(self._new_forward))
        seen: set[int] = set()
        for name, module in self.sites.items():
            if id(module) in seen:
                continue
            seen.add(id(module))
            self._handles.append(module.register_forward_hook(self._make_hook(name)))
        return self

    def detach(self) -> None:
        """Remove the hooks; the accumulated statistics are kept."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def __enter__(self: P) -> P:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def _new_forward(self, module: nn.Module, args: Any) -> None:
        self._calls.clear()

    def _make_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            k = self._calls.get(name, 0) + 1
            self._calls[name] = k
            site = name if k == 1 else f"{name}#{k}"
            with torch.no_grad():
                self._observe(site, inputs[0].detach(), output.detach())

        return hook

    # -- to implement ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything observed."""
        raise NotImplementedError

    def _observe(self, site: str, x: Tensor, y: Tensor) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    # -- convenience ----------------------------------------------------------------------------------
    def run(self, batches: Iterable[Tensor | Sequence[Tensor]]) -> Any:
        """One data pass in eval mode without gradients; returns `result`.

        Args:
            batches: input tensors, or ``(x, y, ...)`` tuples whose first item is the input.
        """
        was_training = self.model.training
        self.model.eval()
        try:
            with self, torch.no_grad():
                for batch in batches:
                    x = batch if isinstance(batch, Tensor) else batch[0]
                    self.model(x)
        finally:
            self.model.train(was_training)
        return self.result()


def _channels_first(x: Tensor, channel_dim: int) -> Tensor:
    """View ``x`` as (N, C, rest...) with the channel dimension at 1."""
    if x.dim() < 2:
        raise InputError(f"probes need batched inputs (N, C, ...), got shape {tuple(x.shape)}")
    return x if channel_dim in (1, 1 - x.dim()) else x.movedim(channel_dim, 1)


@dataclass(frozen=True)
class LayerDeadNeurons:
    """Dead neurons of one activation site after a data pass.

    Attributes:
        site: the call site's name.
        units: number of units (channels, or every (channel, position) with ``unit="element"``).
        dead: units that never fired (input never above the threshold) over the pass.
        dead_rate: ``dead / units``.
        dynamic_rate: fraction of (example, element) pairs that did not fire, i.e. the per-input dead
            neuron rate averaged over inputs (the "dynamic DNR" of Liu et al. 2022).
        examples: inputs seen.
    """

    site: str
    units: int
    dead: int
    dead_rate: float
    dynamic_rate: float
    examples: int


class DeadNeurons(Probe):
    """Dead neuron rate per layer: a unit is dead when it never fires over the whole data pass.

    A unit *fires* on an input when the activation's input (its pre-activation) exceeds ``threshold``
    (default 0): the rectifier's positive, identity-like regime. For ReLU this is exactly "output > 0";
    using the input makes the definition the same for LReLU, PReLU, ELU and GELU, whose outputs are
    not zero on the negative side.

    Args:
        model, sites: see [`Probe`][rectlab.probes.Probe].
        unit: ``"channel"`` (a feature map is one unit: dead if it never fires at any position of any
            input) or ``"element"`` (every (channel, position) is a unit).
        channel_dim: the channel dimension of the activations (1 for (N, C, ...); -1 for (N, L, C)).
        threshold: the firing threshold on the pre-activation.
    """

    def __init__(
        self,
        model: nn.Module,
        sites: Mapping[str, nn.Module] | None = None,
        *,
        unit: str = "channel",
        channel_dim: int = 1,
        threshold: float = 0.0,
    ) -> None:
        if unit not in ("channel", "element"):
            raise InputError(f"unit must be 'channel' or 'element', got {unit!r}")
        self.unit, self.channel_dim, self.threshold = unit, channel_dim, float(threshold)
        super().__init__(model, sites)

    def reset(self) -> None:
        self._ever: dict[str, Tensor] = {}
        self._inactive: dict[str, Tensor] = {}
        self._elements: dict[str, int] = {}
        self._examples: dict[str, int] = {}

    def _observe(self, site: str, x: Tensor, y: Tensor) -> None:
        fired = _channels_first(x, self.channel_dim) > self.threshold
        if self.unit == "channel":
            ever = fired.flatten(2).any(2).any(0) if fired.dim() > 2 else fired.any(0)
        else:
            ever = fired.any(0)
        if site in self._ever:
            if self._ever[site].shape != ever.shape:
                raise InputError(
                    f"site {site!r} changed shape between batches ({tuple(self._ever[site].shape)} -> "
                    f"{tuple(ever.shape)}); use unit='channel' for variable input sizes"
                )
            self._ever[site] |= ever
            self._inactive[site] += (~fired).sum()
        else:
            self._ever[site] = ever.clone()
            self._inactive[site] = (~fired).sum().to(torch.int64)
        self._elements[site] = self._elements.get(site, 0) + fired.numel()
        self._examples[site] = self._examples.get(site, 0) + fired.shape[0]

    def result(self) -> dict[str, LayerDeadNeurons]:
        """``{site: LayerDeadNeurons}`` in call order; empty before any forward pass."""
        out = {}
        for site, ever in self._ever.items():
            units = ever.numel()
            dead = units - int(ever.sum())
            out[site] = LayerDeadNeurons(
                site, units, dead, dead / units, int(self._inactive[site]) / self._elements[site], self._examples[site]
            )
        return out

    def summary(self) -> dict[str, float]:
        """Whole-network rates: ``dead_rate`` (dead units / units) and ``dynamic_rate`` (element-weighted)."""
        res = self.result()
        units = sum(r.units for r in res.values())
        if not units:
            return {"dead_rate": math.nan, "dynamic_rate": math.nan}
        inactive = sum(int(self._inactive[s]) for s in res)
        return {
            "dead_rate": sum(r.dead for r in res.values()) / units,
            "dynamic_rate": inactive / sum(self._elements[s] for s in res),
        }


@dataclass(frozen=True)
class LayerActivationStats:
    """Activation statistics of one site over a data pass (all elements of all inputs pooled).

    Attributes:
        site: the call site's name.
        mean: mean activation (the bias shift the next layer sees; Clevert et al. 2015).
        var: population variance of the activations.
        mean_abs_channel_mean: the average over channels of ``|mean of that channel|``: small when
            units are centred, even if positive and negative channel means cancel in ``mean``.
        count: elements pooled.
    """

    site: str
    mean: float
    var: float
    mean_abs_channel_mean: float
    count: int


class ActivationStats(Probe):
    """Mean and variance per layer of the activations' outputs (or inputs).

    Batches are combined with Chan et al.'s parallel update in float64, so the result equals the
    statistics of the concatenated data up to float64 rounding.

    Args:
        model, sites: see [`Probe`][rectlab.probes.Probe].
        which: ``"output"`` (the activations, default) or ``"input"`` (the pre-activations).
        channel_dim: the channel dimension (for the per-channel means).
    """

    def __init__(
        self,
        model: nn.Module,
        sites: Mapping[str, nn.Module] | None = None,
        *,
        which: str = "output",
        channel_dim: int = 1,
    ) -> None:
        if which not in ("output", "input"):
            raise InputError(f"which must be 'output' or 'input', got {which!r}")
        self.which, self.channel_dim = which, channel_dim
        super().__init__(model, sites)

    def reset(self) -> None:
        # per site: [count, mean, M2] as float64 tensors + per-channel sums and counts
        self._state: dict[str, list[Any]] = {}

    def _observe(self, site: str, x: Tensor, y: Tensor) -> None:
        v = _channels_first(y if self.which == "output" else x, self.channel_dim).double()
        n = v.numel()
        mean_b = v.mean()
        m2_b = ((v - mean_b) ** 2).sum()
        ch_sum = v.transpose(0, 1).reshape(v.shape[1], -1).sum(1)
        per_channel = n // v.shape[1]
        if site not in self._state:
            self._state[site] = [n, mean_b, m2_b, ch_sum, per_channel]
            return
        s = self._state[site]
        count, mean, m2 = s[0], s[1], s[2]
        total = count + n
        delta = mean_b - mean
        s[1] = mean + delta * (n / total)
        s[2] = m2 + m2_b + delta**2 * (count * n / total)
        s[0] = total
        s[3] = s[3] + ch_sum
        s[4] += per_channel

    def result(self) -> dict[str, LayerActivationStats]:
        """``{site: LayerActivationStats}`` in call order."""
        out = {}
        for site, (count, mean, m2, ch_sum, per_channel) in self._state.items():
            out[site] = LayerActivationStats(
                site, float(mean), float(m2) / count, float((ch_sum / per_channel).abs().mean()), int(count)
            )
        return out


def learned_slopes(model: nn.Module) -> list[dict[str, Any]]:
    """Learned activation parameters per layer (He et al. 2015, Table 1): PReLU slopes and Swish betas."""
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, (PReLU, nn.PReLU)):
            values = module.weight.detach().float().cpu()
            kind = "prelu"
        elif isinstance(module, Swish) and module.learnable and isinstance(module.beta, Tensor):
            values = module.beta.detach().float().cpu()
            kind = "swish-beta"
        else:
            continue
        rows.append(
            {
                "layer": name,
                "kind": kind,
                "num_parameters": values.numel(),
                "mean": float(values.mean()),
                "std": float(values.std()) if values.numel() > 1 else 0.0,
                "min": float(values.min()),
                "max": float(values.max()),
            }
        )
    return rows


def slope_table(model: nn.Module, values: bool = False) -> list[dict[str, Any]]:
    """The learned activation parameters per layer: PReLU slopes ``a`` and learnable Swish ``beta``.

    He et al. 2015 (Table 1) report, for their 14-layer model, conv1 slopes of 0.681 (channel-shared)
    and 0.596 (channel-wise mean), and smaller slopes deeper in the network.

    Args:
        model: a trained model.
        values: also return every parameter value (``"values"``: a list; channel-wise slopes).

    Returns:
        One dict per layer in module order: layer, kind ("prelu" | "swish-beta"), num_parameters,
        mean, std, min, max (and values).
    """
    rows = learned_slopes(model)
    if values:
        for row in rows:
            module = model.get_submodule(row["layer"])
            param = module.get_parameter("weight" if row["kind"] == "prelu" else "beta")
            row["values"] = param.detach().float().cpu().tolist()
    return rows


@dataclass(frozen=True)
class PredictionDifference:
    """How differently two models predict the same examples (Shamir et al. 2020, arXiv 2010.09931).

    Attributes:
        top1: fraction of examples whose top-1 class differs (the Hamming prediction difference).
        l1: mean over examples of ``0.5 * sum_k |p_k - q_k|``, the total-variation distance of the two
            predicted class distributions, in [0, 1] (the multiclass form of the expected absolute PD).
        label_l1: mean ``|p_y - q_y|`` on the true label y (NaN without labels).
        n: examples compared.
    """

    top1: float
    l1: float
    label_l1: float
    n: int


@torch.no_grad()
def predict_proba(model: nn.Module, batches: Iterable[Tensor | Sequence[Tensor]]) -> Tensor:
    """Softmax class probabilities of ``model`` in eval mode, concatenated over ``batches`` (on the CPU, float64)."""
    was_training = model.training
    model.eval()
    try:
        out = [torch.softmax(model(b if isinstance(b, Tensor) else b[0]).double(), dim=1).cpu() for b in batches]
    finally:
        model.train(was_training)
    if not out:
        raise InputError("predict_proba got no batches")
    return torch.cat(out)


def prediction_difference_from_probs(p: Tensor, q: Tensor, labels: Tensor | None = None) -> PredictionDifference:
    """[`PredictionDifference`][rectlab.probes.PredictionDifference] of two (N, K) probability tensors (rows sum to
    1)."""
    if p.shape != q.shape or p.dim() != 2:
        raise InputError(
            f"need two (N, K) probability tensors of the same shape, got {tuple(p.shape)} and {tuple(q.shape)}"
        )
    top1 = float((p.argmax(1) != q.argmax(1)).double().mean())
    l1 = float(0.5 * (p - q).abs().sum(1).double().mean())
    label_l1 = math.nan
    if labels is not None:
        idx = labels.long().view(-1, 1).to(p.device)
        label_l1 = float((p.gather(1, idx) - q.gather(1, idx)).abs().double().mean())
    return PredictionDifference(top1, l1, label_l1, p.shape[0])


def prediction_difference(
    model_a: nn.Module, model_b: nn.Module, batches: Iterable[Tensor | Sequence[Tensor]], labels: Tensor | None = None
) -> PredictionDifference:
    """Prediction difference between two models on the same inputs.

    Args:
        model_a, model_b: the models (typically identical configs trained with different seeds).
        batches: input tensors or ``(x, y)`` tuples; iterated twice, so pass a list, not a generator.
        labels: the true labels (N,), for ``label_l1``; taken from ``(x, y)`` batches when omitted.
    """
    if isinstance(batches, Iterator):
        raise InputTypeError("batches is iterated once per model: pass a list, not an iterator or generator")
    batches = list(batches)
    if labels is None and batches and not isinstance(batches[0], Tensor) and len(batches[0]) > 1:
        labels = torch.cat([b[1].cpu() for b in batches])
    return prediction_difference_from_probs(predict_proba(model_a, batches), predict_proba(model_b, batches), labels)


# -- epoch callbacks ---------------------------------------------------------------------------------------

PROBES = ("dead-neurons", "activation-stats", "slopes")


def probe_batches(
    data: Any, config: Any, device: torch.device, limit: int = 1024, batch_size: int = 256
) -> list[Tensor]:
    """The fixed inputs the epoch probes pass through the model: the first ``limit`` training examples
    the run trains on (``config.train_limit`` respected), normalised, without augmentation."""
    n = min(limit, config.train_limit or limit)
    if getattr(data, "in_memory", True):
        x = data.train_x[:n]
        return [
            augment.normalize(x[i : i + batch_size].to(device), data.mean, data.std)
            for i in range(0, len(x), batch_size)
        ]
    items = [data.train_set[i][0] for i in range(min(n, len(data.train_set)))]
    return [torch.stack(items[i : i + batch_size]).to(device) for i in range(0, len(items), batch_size)]


def epoch_callbacks(names: Sequence[str], *, limit: int = 1024) -> list[Callable[[Any], None]]:
    """Probes as [`rectlab.training.loop.train_one`][rectlab.training.loop.train_one] epoch callbacks (what a study's
    ``probes = [...]`` runs).

    After every epoch, the data probes make one pass in eval mode over the first ``limit`` training
    examples and add scalar metrics to that epoch's row:

    * ``"dead-neurons"``: ``dnr`` / ``dnr_dynamic`` (whole network) and ``dnr/<site>`` /
      ``dnr_dynamic/<site>`` per site (channel units; see [`DeadNeurons`][rectlab.probes.DeadNeurons]).
    * ``"activation-stats"``: ``act_mean/<site>``, ``act_var/<site>``, ``act_abs_channel_mean/<site>``.
    * ``"slopes"``: ``slope/<layer>`` (mean learned PReLU slope or Swish beta of each layer).

    After the last epoch the per-layer tables also go into the run's extras under ``"probes"``.

    Args:
        names: probe names from `PROBES`.
        limit: training examples per probe pass.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        raise InputError(f"unknown probe(s) {', '.join(map(repr, unknown))}; known probes: {', '.join(PROBES)}")
    callbacks: list[Callable[[Any], None]] = []
    data_probes = [n for n in names if n in ("dead-neurons", "activation-stats")]
    if data_probes:
        callbacks.append(_DataProbeCallback(tuple(data_probes), limit))
    if "slopes" in names:
        callbacks.append(_slopes_callback)
    return callbacks


class _DataProbeCallback:
    """One data pass per epoch feeding every requested data probe (hooks attached only during the pass)."""

    def __init__(self, names: tuple[str, ...], limit: int) -> None:
        self.names, self.limit = names, limit

    def __call__(self, state: Any) -> None:
        model = state.model
        probes: list[Probe] = []
        if "dead-neurons" in self.names:
            probes.append(DeadNeurons(model))
        if "activation-stats" in self.names:
            probes.append(ActivationStats(model))
        batches = probe_batches(state.data, state.config, state.device, self.limit)
        was_training = model.training
        model.eval()
        try:
            for p in probes:
                p.attach()
            with torch.no_grad():
                for x in batches:
                    model(x)
        finally:
            for p in probes:
                p.detach()
            model.train(was_training)
        tables: dict[str, list[dict[str, Any]]] = {}
        for p in probes:
            if isinstance(p, DeadNeurons):
                state.metrics.update({"dnr": p.summary()["dead_rate"], "dnr_dynamic": p.summary()["dynamic_rate"]})
                rows = list(p.result().values())
                for r in rows:
                    state.metrics[f"dnr/{r.site}"] = r.dead_rate
                    state.metrics[f"dnr_dynamic/{r.site}"] = r.dynamic_rate
                tables["dead_neurons"] = [r.__dict__ for r in rows]
            else:
                stats = list(p.result().values())
                for s in stats:
                    state.metrics[f"act_mean/{s.site}"] = s.mean
                    state.metrics[f"act_var/{s.site}"] = s.var
                    state.metrics[f"act_abs_channel_mean/{s.site}"] = s.mean_abs_channel_mean
                tables["activation_stats"] = [s.__dict__ for s in stats]
        if state.epoch == state.config.epochs:
            state.extras.setdefault("probes", {}).update(tables)


def _slopes_callback(state: Any) -> None:
    rows = slope_table(state.model)
    for row in rows:
        state.metrics[f"slope/{row['layer']}"] = row["mean"]


def per_site_curves(epochs: Sequence[Mapping[str, Any]], prefix: str) -> dict[str, list[float]]:
    """``{site: [value per epoch]}`` from epoch rows with ``prefix/<site>`` metrics (see
    [`epoch_callbacks`][rectlab.probes.epoch_callbacks])."""
    sites = list(
        dict.fromkeys(
            itertools.chain.from_iterable(
                [k[len(prefix) + 1 :] for k in e if k.startswith(prefix + "/")] for e in epochs
            )
        )
    )
    return {s: [float(e.get(f"{prefix}/{s}", math.nan)) for e in epochs] for s in sites}
