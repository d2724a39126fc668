"""Models by name from torchvision (``tv:NAME``) and timm (``timm:NAME``), adapted to the data.

``create("tv:resnet18", activation="prelu", num_classes=10, in_channels=1, example_input=x)`` builds
torchvision's ResNet-18 and then

* sets the classifier to ``num_classes`` outputs and the first convolution to ``in_channels``;
* for small images (side <= 64, e.g. Fashion-MNIST, CIFAR, digits) gives CNNs a small stem: the first
  convolution gets stride 1 and a max-pool right after it is removed, so a 28x28 image is downsampled
  8x instead of 32x (the CIFAR setting of He et al. 2016); patch-based models (ViT) get ``img_size``
  set to the input size instead;
* swaps every activation call site to ``activation`` through
  [`rectlab.surgery.swap_activations`][rectlab.surgery.swap_activations] (``activation=None`` keeps the model's own
  activations).

Pretrained weights stay loadable: ``pretrained=True`` (the library's default weights, from its cache or
a download), a torchvision weights name (``"IMAGENET1K_V1"``), or the path of a local ``state_dict``
file; the first convolution is adapted to ``in_channels`` (summed over RGB for one channel, as timm does)
and the classifier is re-initialized when its size differs. timm does the same natively.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ..errors import InputError, MissingFileError, MissingPackageError, UnavailableError
from ..registry import UnknownNameError
from ..surgery import swap_activations
from .common import make_head

__all__ = ["SOURCES", "STEMS", "available", "check_name", "create", "is_external", "load_adapted_state_dict"]

SOURCES = {"tv": "torchvision", "timm": "timm"}
STEMS = ("auto", "small", "native")
M = TypeVar("M", bound=nn.Module)
SMALL_INPUT = 64  # images with a side up to this get the small stem under stem="auto"


def is_external(name: object) -> bool:
    """True for ``tv:NAME`` and ``timm:NAME`` model names."""
    return isinstance(name, str) and ":" in name and name.split(":", 1)[0].strip().lower() in SOURCES


def _split(name: str) -> tuple[str, str]:
    source, arch = name.split(":", 1)
    source, arch = source.strip().lower(), arch.strip()
    if source not in SOURCES:
        raise UnknownNameError(
            f"unknown model source {source!r} in {name!r}; use one of: " + ", ".join(f"{s}:NAME" for s in SOURCES)
        )
    if not arch:
        raise UnknownNameError(f"model name {name!r} has no architecture after the colon, e.g. {source}:resnet18")
    return source, arch


def _timm() -> Any:
    try:
        import timm  # optional: pip install 'rectlab[timm]'
    except ImportError:
        raise MissingPackageError(
            "timm: model names need timm: pip install 'rectlab[timm]' (or pip install timm)"
        ) from None
    return timm


def available(source: str) -> list[str]:
    """Architecture names of ``source`` ("tv" or "timm"): torchvision's classification models, or every timm model."""
    if source == "tv":
        import torchvision.models as tvm  # lazy: torchvision's model zoo is slow to import

        return sorted(tvm.list_models(module=tvm))
    if source == "timm":
        return sorted(_timm().list_models())
    raise UnknownNameError(f"unknown model source {source!r}; use one of: {', '.join(SOURCES)}")


def check_name(name: str) -> None:
    """Raise [`UnknownNameError`][rectlab.registry.UnknownNameError] (with close matches) unless ``name`` can be
    built."""
    source, arch = _split(name)
    if source == "timm":
        timm = _timm()
        if timm.is_model(arch.split(".")[0]):  # "vit_small_patch16_224.augreg_in21k": a pretrained tag
            return
    elif arch in available(source):
        return
    close = difflib.get_close_matches(arch, available(source), n=3)
    hint = f" Did you mean {', '.join(f'{source}:{c}' for c in close)}?" if close else ""
    listing = "torchvision.models.list_models()" if source == "tv" else "timm.list_models('PATTERN*')"
    raise UnknownNameError(f"unknown {SOURCES[source]} model {arch!r}.{hint} See {listing} for the names")


# -- building --------------------------------------------------------------------------------------------


def _first(model: nn.Module, kind: type[M]) -> tuple[str, M] | None:
    return next(((p, m) for p, m in model.named_modules() if isinstance(m, kind)), None)


def _pair(value: tuple[int, ...]) -> tuple[int, int]:
    """A 2-D convolution's size argument as the pair it is."""
    return value[0], value[1]


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _classifier(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The classifier: the last ``nn.Linear`` in module order (``fc``, ``classifier.6``, ``heads.head``, ``head``)."""
    found = [(p, m) for p, m in model.named_modules() if isinstance(m, nn.Linear)]
    return found[-1] if found else None


def adapt_input_conv(weight: Tensor, in_channels: int) -> Tensor:
    """A pretrained first-layer kernel ``(O, 3, k, k)`` for ``in_channels`` inputs.

    One channel: the sum over the RGB kernels (a gray image is the sum of equal R, G and B). Otherwise the
    RGB kernels repeated and scaled by ``3 / in_channels`` so activations keep their scale (timm's rule).
    """
    if weight.shape[1] == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(1, keepdim=True)
    reps = math.ceil(in_channels / weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)


def _replace_input_conv(model: nn.Module, in_channels: int) -> None:
    found = _first(model, nn.Conv2d)
    if found is None:
        raise InputError("this model has no nn.Conv2d to adapt to in_channels; use in_channels=3")
    path, conv = found
    if conv.in_channels == in_channels:
        return
    if conv.groups != 1:
        raise InputError(f"the first convolution {path!r} is grouped; in_channels cannot be adapted, use 3")
    padding = conv.padding if isinstance(conv.padding, str) else _pair(conv.padding)
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        _pair(conv.kernel_size),
        _pair(conv.stride),
        padding,
        _pair(conv.dilation),
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    _set(model, path, new)


def _small_stem(model: nn.Module) -> list[str]:
    """Stride 1 in the first convolution and no max-pool right after the stem; returns what changed."""
    changed: list[str] = []
    convs = [(p, m) for p, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        return changed
    path, conv = convs[0]
    if conv.stride != (1, 1):
        conv.stride = (1, 1)
        k = conv.kernel_size
        if isinstance(conv.padding, str) or any(p < (kk - 1) // 2 for p, kk in zip(conv.padding, k)):
            conv.padding = tuple((kk - 1) // 2 for kk in k)  # keep the size, as the stride-1 CIFAR stem does
        changed.append(f"{path}: stride 1")
    # A max-pool before the third convolution belongs to the stem (ResNet, DenseNet, VGG-11's first stage).
    third = convs[2][0] if len(convs) > 2 else None
    for p, m in model.named_modules():
        if p == third:
            break
        if isinstance(m, nn.MaxPool2d):
            _set(model, p, nn.Identity())
            changed.append(f"{p}: removed")
            break
    return changed


def _unwrap_state_dict(obj: Any, path: str) -> dict[str, Tensor]:
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise InputError(f"{path} does not hold a state_dict (a dict of tensors, or one under 'state_dict'/'model')")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_adapted_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], where: str = "weights") -> list[str]:
    """Load pretrained weights into a model adapted to other data; return the re-initialized keys.

    Tensors of equal shape are copied; the first convolution's kernel is adapted to the model's input
    channels ([`adapt_input_conv`][rectlab.models.external.adapt_input_conv]); a classifier of another size keeps its
    fresh initialization. Anything else that does not fit is an error naming the keys.
    """
    own = model.state_dict()
    first = _first(model, nn.Conv2d)
    stem_key = f"{first[0]}.weight" if first else None
    head = _classifier(model)
    head_keys = {f"{head[0]}.weight", f"{head[0]}.bias"} if head else set()
    new: dict[str, Tensor] = {}
    skipped, bad = [], []
    for key, value in state_dict.items():
        if key not in own:
            bad.append(f"{key} (not in the model)")
        elif own[key].shape == value.shape:
            new[key] = value
        elif (
            key == stem_key
            and value.dim() == 4
            and value.shape[0] == own[key].shape[0]
            and value.shape[2:] == own[key].shape[2:]
        ):
            new[key] = adapt_input_conv(value, own[key].shape[1])
        elif key in head_keys:
            skipped.append(key)
        else:
            bad.append(f"{key} (shape {tuple(value.shape)}, model {tuple(own[key].shape)})")
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked") and k not in head_keys]
    if bad or missing:
        problems = bad + [f"{k} (missing)" for k in missing]
        raise InputError(
            f"{where} do not fit this model: {', '.join(problems[:6])}"
            + (f" and {len(problems) - 6} more" if len(problems) > 6 else "")
        )
    model.load_state_dict(new, strict=False)
    return skipped


def _tv_weights(arch: str, pretrained: bool | str) -> dict[str, Tensor]:
    import torchvision.models as tvm  # lazy: torchvision's model zoo is slow to import

    if isinstance(pretrained, str) and Path(pretrained).expanduser().is_file():
        path = str(Path(pretrained).expanduser())
        return _unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True), path)
    enum = tvm.get_model_weights(arch)
    name = "DEFAULT" if pretrained is True else str(pretrained)
    try:
        weights = enum.DEFAULT if name == "DEFAULT" else enum[name.replace(enum.__name__ + ".", "")]
    except KeyError:
        raise InputError(
            f"tv:{arch} has no weights {name!r} and no such file exists; weights: "
            f"{', '.join(w.name for w in enum)}, or the path of a state_dict file"
        ) from None
    try:
        return weights.get_state_dict(progress=False)
    except OSError as e:  # URLError and friends: no network and not in the cache
        raise UnavailableError(
            f"could not load {weights} ({e}); put the file in torch's hub cache "
            f"({torch.hub.get_dir()}/checkpoints) or pass pretrained='/path/to/weights.pth'"
        ) from None


def _build_tv(
    arch: str,
    num_classes: int,
    in_channels: int,
    hw: tuple[int, int] | None,
    pretrained: bool | str,
    kwargs: dict[str, Any],
) -> tuple[nn.Module, bool]:
    import torchvision.models as tvm  # lazy: torchvision's model zoo is slow to import

    patch_based = arch.startswith("vit_")
    if patch_based and hw is not None:
        if hw[0] != hw[1]:
            raise InputError(f"tv:{arch} needs square images, got {hw[0]}x{hw[1]}")
        kwargs.setdefault("image_size", hw[0])
    model = tvm.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    if in_channels != 3:
        _replace_input_conv(model, in_channels)
    if pretrained:
        load_adapted_state_dict(model, _tv_weights(arch, pretrained), f"pretrained weights for tv:{arch}")
    return model, patch_based


def _build_timm(
    arch: str,
    num_classes: int,
    in_channels: int,
    hw: tuple[int, int] | None,
    pretrained: bool | str,
    kwargs: dict[str, Any],
) -> tuple[nn.Module, bool]:
    timm = _timm()
    if hw is not None and "img_size" not in kwargs:
        with torch.device("meta"):  # is it patch-based? find out without allocating or initializing weights
            probe = timm.create_model(arch, pretrained=False, **kwargs)
        embed = getattr(probe, "patch_embed", None)
        if embed is not None and tuple(getattr(embed, "img_size", None) or ()) != tuple(hw):
            kwargs["img_size"] = tuple(hw)
    patch_based = "img_size" in kwargs
    if isinstance(pretrained, str):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise MissingFileError(f"pretrained={pretrained!r}: no such file; pass True for timm's own weights")
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
    model = timm.create_model(
        arch, pretrained=bool(pretrained), num_classes=num_classes, in_chans=in_channels, **kwargs
    )
    return model, patch_based


def _check_runs(model: nn.Module, example: Tensor) -> None:
    """One forward pass in eval mode (a clear error now beats a shape error in the first training step)."""
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()
            model(example)
    finally:
        model.train(was_training)


def create(
    name: str,
    activation: Any = "relu",
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    example_input: Tensor | None = None,
    pretrained: bool | str = False,
    stem: str = "auto",
    head: str = "linear",
    activation_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build ``tv:NAME`` (torchvision) or ``timm:NAME`` adapted to the data (see the module docstring).

    Args:
        name: ``"tv:resnet18"``, ``"timm:resnet50"``, ``"timm:convnext_tiny"``, ...
        activation: what every activation site becomes (a registered name, a class, or
            ``make(channels) -> nn.Module``); ``None`` keeps the model's own activations.
        num_classes, in_channels: the data's classes and image channels.
        example_input: a batch shaped like the data: picks the stem and gives per-channel activations their
            channel counts (default: a 3x224x224 / in_channels x 224 x 224 image).
        pretrained: ``False``; ``True`` (the library's default weights); a torchvision weights name; or a
            ``state_dict`` file path.
        stem: ``"auto"`` (small stem for images up to 64x64), ``"small"`` or ``"native"``.
        head: ``"linear"`` (the model's own classifier) or ``"relu-classifier"`` (Agarap 2018).
        activation_kwargs: constructor arguments for ``activation`` when it is a name or a class.
        **kwargs: passed to ``torchvision.models.get_model`` / ``timm.create_model`` (``drop_rate``,
            ``patch_size``, ...).

    Raises:
        UnknownNameError: an unknown architecture (the message lists close matches).
        ValueError: the adapted model cannot run on ``example_input``, or weights that do not fit.
    """
    if stem not in STEMS:
        raise InputError(f"stem={stem!r} is not valid; choose one of: {', '.join(STEMS)}")
    check_name(name)
    source, arch = _split(name)
    hw = (int(example_input.shape[-2]), int(example_input.shape[-1])) if example_input is not None else None
    build = _build_tv if source == "tv" else _build_timm
    try:
        model, patch_based = build(arch, num_classes, in_channels, hw, pretrained, dict(kwargs))
    except (TypeError, AssertionError) as e:  # the library's own complaint about an option or a size
        raise InputError(f"{name}: {type(e).__name__}: {e}") from None
    small = stem == "small" or (stem == "auto" and hw is not None and max(hw) <= SMALL_INPUT and not patch_based)
    if small:
        _small_stem(model)
    size = hw or (224, 224)
    example = torch.zeros(2, in_channels, *size)  # batch of 2: BatchNorm traced in training mode needs > 1 value
    if example_input is not None and example_input.shape[0] >= 2:
        example = example_input[:2].detach().float().cpu()
    try:
        _check_runs(model, example)
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise InputError(
            f"{name} cannot run on {in_channels}x{size[0]}x{size[1]} images ({type(e).__name__}: {first}); try "
            f"model_kwargs stem='small' (CNNs), img_size/patch_size (ViTs), or a model made for small images"
        ) from None
    if head != "linear":
        classifier = _classifier(model)
        if classifier is None:
            raise InputError(f"{name} has no nn.Linear classifier to replace with head={head!r}")
        path, linear = classifier
        _set(model, path, make_head(head, linear.in_features, num_classes))
    if activation is not None:
        model = swap_activations(
            model, activation, example_input=example, inplace=True, **dict(activation_kwargs or {})
        )
    return model
