"""``nn.Module`` forms of the activations, registered by name.

Each module runs one op of the op table (`rectlab.activations.ops`), named by its ``op`` attribute; the
table says which fast paths the op has. Every module accepts ``inplace=False`` (honoured where the operation
can be done in place without breaking autograd, otherwise documented as ignored) and ``backend="auto"``:
``"auto"`` runs the fused Triton kernel on CUDA tensors when Triton is available (after its self-check,
`rectlab.activations.selfcheck.use_fused`), the fast CPU path of `rectlab.activations.cpu` on CPU tensors where the
op has one, and the plain-torch reference otherwise; ``"torch"`` always runs the reference, ``"triton"``
always runs the kernel (an error if it cannot).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..registry import Registry
from . import cpu, fused, selfcheck
from . import functional as AF

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "RReLU",
    "PReLU",
    "PReLUShared",
    "ELU",
    "CELU",
    "SELU",
    "GELU",
    "GELUTanh",
    "Swish",
    "SwishLearnable",
    "SwishChannelwise",
    "SiLU",
    "Mish",
    "Softplus",
    "SmeLU",
    "HeLU",
    "GCU",
    "Identity",
    "ReLUClassifier",
]

ACTIVATIONS: Registry[type[nn.Module]] = Registry("activation")


class Activation(nn.Module):
    """Base class of rectlab's activation modules.

    Class attributes:
        op: the op the module runs, a name of the op table (`rectlab.activations.ops`); ``""`` for
            activations outside it (plugins, the activation search), which have no fast path.
        wants_channels: True when the registered default is per-channel and needs the channel count
            (``create(name, channels=C)`` fills ``num_parameters``).
        save_mask: set ``module.save_mask = True`` on a module whose op has ``save_mask`` in the op table
            (ReLU, LeakyReLU, RReLU, HeLU, and PReLU with a frozen weight) to have the fused kernel keep a
            1-bit mask instead of the input for the backward (see ``fused``).
    """

    op: str = ""
    wants_channels: bool = False
    save_mask: bool = False

    def __init__(self, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__()
        self.inplace = bool(inplace)
        self.backend = fused.check_backend(backend)

    def _use_fused(self, x: Tensor) -> bool:
        return selfcheck.use_fused(x, self.backend, self.op)

    def _use_cpu(self, x: Tensor, *params: object) -> bool:
        return cpu.use_cpu(x, self.backend, self.op, *params)

    def negative_slope(self) -> float | None:
        """Slope on the negative side for piecewise-linear rectifiers (used by He init), else None."""
        return None

    def extra_repr(self) -> str:
        parts = [f"{k}={v}" for k, v in self._repr_fields().items()]
        if self.inplace:
            parts.append("inplace=True")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        return ", ".join(parts)

    def _repr_fields(self) -> dict[str, object]:
        return {}


@ACTIVATIONS.register("relu")
class ReLU(Activation):
    """ReLU: ``max(0, x)``. Nair & Hinton 2010; the rectifier of He et al. 2015."""

    op = "relu"

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.relu(x, save_mask=self.save_mask)
        return AF.relu(x, inplace=self.inplace)

    def negative_slope(self) -> float:
        return 0.0


@ACTIVATIONS.register("leaky-relu")
class LeakyReLU(Activation):
    """Leaky ReLU (Maas et al. 2013): ``x`` if ``x > 0`` else ``negative_slope * x``.

    Args:
        negative_slope: slope for negative inputs (default 0.01; He et al. 2015 also use 0.25 for "VLReLU").
    """

    op = "leaky-relu"

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(inplace, backend)
        self.negative_slope_value = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.leaky_relu(x, self.negative_slope_value, save_mask=self.save_mask)
        return AF.leaky_relu(x, self.negative_slope_value, inplace=self.inplace)

    def negative_slope(self) -> float:
        return self.negative_slope_value

    def _repr_fields(self) -> dict[str, object]:
        return {"negative_slope": self.negative_slope_value}


@ACTIVATIONS.register("rrelu")
class RReLU(Activation):
    """Randomized leaky ReLU (Xu et al. 2015, arXiv 1505.00853).

    Training: a slope ``a ~ U(lower, upper)`` per element; evaluation: the mean slope.
    ``inplace`` is ignored (the op is always out of place).

    Args:
        lower: lower bound of the slope (default 1/8).
        upper: upper bound of the slope (default 1/3).
    """

    op = "rrelu"

    def __init__(
        self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False, backend: str = "auto"
    ) -> None:
        super().__init__(inplace, backend)
        if not 0 <= lower <= upper:
            raise InputError(f"RReLU needs 0 <= lower <= upper, got lower={lower}, upper={upper}")
        self.lower = float(lower)
        self.upper = float(upper)

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.rrelu(x, self.lower, self.upper, self.training, save_mask=self.save_mask)
        if self.training and self._use_cpu(x):
            return cpu.rrelu(x, self.lower, self.upper, training=True)
        return AF.rrelu(x, self.lower, self.upper, self.training)

    def negative_slope(self) -> float:
        return (self.lower + self.upper) / 2

    def _repr_fields(self) -> dict[str, object]:
        return {"lower": round(self.lower, 6), "upper": round(self.upper, 6)}


@ACTIVATIONS.register("prelu")
class PReLU(Activation):
    """Parametric ReLU (He et al. 2015, arXiv 1502.01852, eq. 1): ``x`` if ``x > 0`` else ``a * x``.

    ``a`` is learned: one value shared by all channels (``num_parameters=1``) or one per channel
    (``num_parameters=C``). The paper initializes ``a = 0.25`` and applies no weight decay to it
    (see `rectlab.optim.param_groups`). The registered name ``prelu`` is channel-wise and needs
    the channel count (``create("prelu", channels=C)``); ``prelu-shared`` is channel-shared.

    Args:
        num_parameters: 1 (channel-shared) or the number of channels C (channel-wise).
        init: initial value of ``a`` (default 0.25).
        dim: the channel dimension: 1 for (N, C, ...) inputs, -1 for (N, L, C).
        inplace: ignored (kept for a uniform constructor).
    """

    op = "prelu"
    wants_channels = True

    def __init__(
        self,
        num_parameters: int = 1,
        init: float = 0.25,
        dim: int = 1,
        inplace: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(inplace, backend)
        if not isinstance(num_parameters, int) or num_parameters < 1:
            raise InputError(
                f"PReLU num_parameters must be a positive int (1 or the channel count), got {num_parameters!r}"
            )
        self.num_parameters = num_parameters
        self.dim = int(dim)
        self.init = float(init)
        self.weight = nn.Parameter(torch.full((num_parameters,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.prelu(x, self.weight, self.dim, save_mask=self.save_mask)
        if self._use_cpu(x, self.weight):
            return cpu.prelu(x, self.weight, self.dim)
        return AF.prelu(x, self.weight, self.dim)

    def negative_slope(self) -> float:
        return float(self.weight.detach().float().mean())

    def _repr_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {"num_parameters": self.num_parameters, "init": self.init}
        if self.dim != 1:
            fields["dim"] = self.dim
        return fields


@ACTIVATIONS.register("prelu-shared")
class PReLUShared(PReLU):
    """Channel-shared PReLU: a single learned slope per layer (He et al. 2015)."""

    wants_channels = False

    def __init__(self, init: float = 0.25, dim: int = 1, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(1, init, dim, inplace, backend)


@ACTIVATIONS.register("elu")
class ELU(Activation):
    """ELU (Clevert et al. 2015, arXiv 1511.07289): ``x`` if ``x > 0`` else ``alpha (exp(x) - 1)``."""

    op = "elu"

    def __init__(self, alpha: float = 1.0, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(inplace, backend)
        if alpha < 0:
            raise InputError(f"ELU alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.elu(x, self.alpha)
        return AF.elu(x, self.alpha, inplace=self.inplace)

    def _repr_fields(self) -> dict[str, object]:
        return {"alpha": self.alpha}


@ACTIVATIONS.register("celu")
class CELU(Activation):
    """CELU (Barron 2017, arXiv 1704.07483): ``max(0, x) + min(0, alpha (exp(x / alpha) - 1))``."""

    op = "celu"

    def __init__(self, alpha: float = 1.0, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(inplace, backend)
        if alpha <= 0:
            raise InputError(f"CELU alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.celu(x, self.alpha)
        return AF.celu(x, self.alpha, inplace=self.inplace)

    def _repr_fields(self) -> dict[str, object]:
        return {"alpha": self.alpha}


@ACTIVATIONS.register("selu")
class SELU(Activation):
    """SELU (Klambauer et al. 2017, arXiv 1706.02515): ``scale * elu(x, alpha)``, alpha≈1.6733, scale≈1.0507."""

    op = "selu"

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.selu(x)
        return AF.selu(x, inplace=self.inplace)


@ACTIVATIONS.register("gelu")
class GELU(Activation):
    """GELU (Hendrycks & Gimpel 2016, arXiv 1606.08415): ``x * Phi(x)``.

    Args:
        approximate: ``"none"`` (exact, erf) or ``"tanh"``. ``inplace`` is ignored.
    """

    op = "gelu"

    def __init__(self, approximate: str = "none", inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(inplace, backend)
        if approximate not in ("none", "tanh"):
            raise InputError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.gelu(x, self.approximate)
        return AF.gelu(x, self.approximate)

    def _repr_fields(self) -> dict[str, object]:
        return {"approximate": repr(self.approximate)}


@ACTIVATIONS.register("gelu-tanh")
class GELUTanh(GELU):
    """GELU with the tanh approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""

    def __init__(self, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__("tanh", inplace, backend)


@ACTIVATIONS.register("swish")
class Swish(Activation):
    """Swish (Ramachandran et al. 2017, arXiv 1710.05941): ``x * sigmoid(beta * x)``.

    Args:
        beta: fixed value, or the initial value when ``learnable``.
        learnable: learn beta (never weight-decayed; see `rectlab.optim.param_groups`).
        num_parameters: 1 (one beta) or C (one per channel; needs ``learnable=True``).
        dim: channel dimension for per-channel beta.
        inplace: ignored.
    """

    op = "swish"

    def __init__(
        self,
        beta: float = 1.0,
        learnable: bool = False,
        num_parameters: int = 1,
        dim: int = 1,
        inplace: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(inplace, backend)
        if beta < 0:
            raise InputError(f"Swish beta must be >= 0 (beta=0 is x/2, large beta approaches ReLU), got {beta}")
        if not isinstance(num_parameters, int) or num_parameters < 1:
            raise InputError(f"Swish num_parameters must be a positive int, got {num_parameters!r}")
        if num_parameters > 1 and not learnable:
            raise InputError("a per-channel Swish beta must be learnable: pass learnable=True")
        self.learnable = bool(learnable)
        self.num_parameters = num_parameters
        self.dim = int(dim)
        self.beta_init = float(beta)
        # A fixed beta stays a Python float so it is exact in every dtype the module is cast to.
        self.beta: nn.Parameter | float = (
            nn.Parameter(torch.full((num_parameters,), float(beta))) if self.learnable else float(beta)
        )

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.swish(x, self.beta, self.dim)
        if self._use_cpu(x, self.beta):
            return cpu.swish(x, self.beta, self.dim)
        return AF.swish(x, self.beta, self.dim)

    def _repr_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {"beta": self.beta_init}
        if self.learnable:
            fields["learnable"] = True
            fields["num_parameters"] = self.num_parameters
        return fields


@ACTIVATIONS.register("swish-learnable")
class SwishLearnable(Swish):
    """Swish with one learnable beta per layer (initialized to 1)."""

    def __init__(self, beta: float = 1.0, dim: int = 1, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(beta, True, 1, dim, inplace, backend)


@ACTIVATIONS.register("swish-channelwise")
class SwishChannelwise(Swish):
    """Swish with a learnable beta per channel (needs the channel count: ``num_parameters=C``)."""

    wants_channels = True

    def __init__(
        self, num_parameters: int, beta: float = 1.0, dim: int = 1, inplace: bool = False, backend: str = "auto"
    ) -> None:
        super().__init__(beta, True, num_parameters, dim, inplace, backend)


@ACTIVATIONS.register("silu")
class SiLU(Activation):
    """SiLU: ``x * sigmoid(x)`` (Elfwing et al. 2017; Swish with beta = 1)."""

    op = "silu"

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.silu(x)
        return AF.silu(x, inplace=self.inplace)


@ACTIVATIONS.register("mish")
class Mish(Activation):
    """Mish (Misra 2019, arXiv 1908.08681): ``x * tanh(softplus(x))``."""

    op = "mish"

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.mish(x)
        if not self.inplace and self._use_cpu(x):
            return cpu.mish(x)
        return AF.mish(x, inplace=self.inplace)


@ACTIVATIONS.register("softplus")
class Softplus(Activation):
    """Softplus: ``log(1 + exp(beta x)) / beta`` (Dugas et al. 2001). ``inplace`` is ignored."""

    op = "softplus"

    def __init__(
        self, beta: float = 1.0, threshold: float = 20.0, inplace: bool = False, backend: str = "auto"
    ) -> None:
        super().__init__(inplace, backend)
        if beta <= 0:
            raise InputError(f"Softplus beta must be > 0, got {beta}")
        self.beta = float(beta)
        self.threshold = float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.softplus(x, self.beta, self.threshold)
        return AF.softplus(x, self.beta, self.threshold)

    def _repr_fields(self) -> dict[str, object]:
        return {"beta": self.beta, "threshold": self.threshold}


@ACTIVATIONS.register("smelu")
class SmeLU(Activation):
    """Smooth ReLU (Shamir et al. 2020, arXiv 2010.09931).

    ``0`` for ``x <= -beta``, ``(x + beta)^2 / (4 beta)`` for ``|x| <= beta``, ``x`` for ``x >= beta``.

    Args:
        beta: half-width of the quadratic region, > 0 (default 1.0). ``inplace`` is ignored.
    """

    op = "smelu"

    def __init__(self, beta: float = 1.0, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(inplace, backend)
        if beta <= 0:
            raise InputError(f"SmeLU beta must be > 0 (the half-width of the quadratic region), got {beta}")
        self.beta = float(beta)

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.smelu(x, self.beta)
        if self._use_cpu(x):
            return cpu.smelu(x, self.beta)
        return AF.smelu(x, self.beta)

    def _repr_fields(self) -> dict[str, object]:
        return {"beta": self.beta}


@ACTIVATIONS.register("helu")
class HeLU(Activation):
    """Hysteresis ReLU (Kimhi et al. 2024, arXiv 2411.10573): ReLU forward, gradient for ``x > -alpha``.

    Args:
        alpha: backward threshold shift, >= 0 (default 0.05). ``inplace`` is ignored.
    """

    op = "helu"

    def __init__(self, alpha: float = 0.05, inplace: bool = False, backend: str = "auto") -> None:
        super().__init__(inplace, backend)
        if alpha < 0:
            raise InputError(f"HeLU alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.helu(x, self.alpha, save_mask=self.save_mask)
        if self._use_cpu(x):
            return cpu.helu(x, self.alpha)
        return AF.helu(x, self.alpha)

    def negative_slope(self) -> float:
        return 0.0

    def _repr_fields(self) -> dict[str, object]:
        return {"alpha": self.alpha}


@ACTIVATIONS.register("gcu")
class GCU(Activation):
    """Growing Cosine Unit (Noel et al. 2021, arXiv 2108.12943): ``x * cos(x)``."""

    op = "gcu"

    def forward(self, x: Tensor) -> Tensor:
        if self._use_fused(x):
            return fused.gcu(x)
        if self._use_cpu(x):
            return cpu.gcu(x)
        return AF.gcu(x)


@ACTIVATIONS.register("identity")
class Identity(Activation):
    """Identity: returns its input; what EraseReLU puts in place of an erased ReLU (Dong et al. 2017)."""

    op = "identity"

    def forward(self, x: Tensor) -> Tensor:
        return x

    def negative_slope(self) -> float:
        return 1.0


class ReLUClassifier(nn.Module):
    """ReLU as the classification function (Agarap 2018, arXiv 1803.08375).

    Wraps a linear head: the scores are ``relu(W h + b)``; the prediction is their ``argmax`` (ties, e.g.
    all zero, resolve to the lowest index).

    Args:
        in_features: size of the input features.
        num_classes: number of classes.
        normalize: what ``forward`` returns for training. ``False``: the rectified scores themselves (so a
            cross-entropy loss applies softmax to them). ``True``: Agarap's Keras set-up, where
            ``categorical_crossentropy`` on the ReLU outputs divides them by their sum (no softmax) and clips
            the result to ``[1e-7, 1 - 1e-7]``: ``forward`` returns ``log(clip(r / sum(r)))``, so that the
            usual cross-entropy equals Keras' loss (up to the clipped values not summing exactly to 1). An
            all-zero row, which Keras would divide 0 by 0 on, gives the clipped value 1e-7 for every class;
            its gradient is 0 either way (every ReLU is off).
    """

    EPSILON = 1e-7  # keras.backend.epsilon()

    def __init__(self, in_features: int, num_classes: int, normalize: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)
        self.normalize = normalize

    def scores(self, x: Tensor) -> Tensor:
        """The rectified scores ``relu(W x + b)``."""
        return torch.relu(self.fc(x))

    def forward(self, x: Tensor) -> Tensor:
        r = self.scores(x)
        if not self.normalize:
            return r
        p = r / r.sum(-1, keepdim=True).clamp_min(torch.finfo(r.dtype).tiny)
        return p.clamp(self.EPSILON, 1 - self.EPSILON).log()

    def extra_repr(self) -> str:
        return f"normalize={self.normalize}"

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Class indices: argmax of the rectified scores."""
        return self.scores(x).argmax(dim=-1)
