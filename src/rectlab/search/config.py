"""What a search does, read from a TOML file (``rectlab/specs/activation-search.toml``) at a scale.

::

    [search]
    strategy = "halving"          # exhaustive | random | halving
    candidates = 0                # random / halving: how many distinct candidates to sample (0 = the whole space)
    eta = 3                       # halving: keep the best 1/eta after each rung
    top_k = 4                     # winners: the finalists of the comparison
    seed = 0                      # seeds the sampling
    baselines = ["relu", "swish"] # compared with the winners in the final study
    validation = "fashion-mnist-val"

    [space]                       # see rectlab.search.SearchSpace
    unary = ["x", "scale", "sigmoid", ...]
    binary = ["add", "mul", "max", "sigmul"]
    units = 1

    [child]                       # TrainConfig fields of every run (the child network)
    model = "mlp"

    [[rungs]]                     # budgets: TrainConfig fields (epochs, train_limit, test_limit) and seeds
    epochs = 2
    seeds = 1

    [final]                       # the comparison of winners and baselines, on the real test split
    dataset = "fashion-mnist"
    seeds = 8

    [scales.quick]                # per scale: tables replace keys of the tables above; rungs are replaced whole
    search = { top_k = 4 }
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import activations
from ..errors import MissingFileError
from ..training.config import ConfigError, field_names, from_dict
from .space import SearchSpace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["STRATEGIES", "SearchConfig", "config_from_dict", "load_config"]

STRATEGIES = ("exhaustive", "random", "halving")
SECTIONS = ("search", "space", "child", "rungs", "final", "scales")
SEARCH_KEYS = ("strategy", "candidates", "eta", "top_k", "seed", "baselines", "validation", "max_exhaustive")


@dataclass(frozen=True)
class SearchConfig:
    """A resolved search (see the module docstring for the meaning of each field).

    ``rungs`` are ``(train-config overrides, seeds)`` pairs; exhaustive and random search train every
    candidate at the last rung's budget, successive halving climbs them all.
    """

    space: SearchSpace
    child: dict[str, Any]
    rungs: tuple[tuple[dict[str, Any], int], ...]
    final: dict[str, Any]
    final_seeds: int
    strategy: str = "halving"
    candidates: int = 0
    eta: int = 3
    top_k: int = 4
    seed: int = 0
    baselines: tuple[str, ...] = ("relu", "swish")
    validation: str = "fashion-mnist-val"
    max_exhaustive: int = 20_000

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"strategy {self.strategy!r} is not valid; choose one of {', '.join(STRATEGIES)} (the "
                "paper's RL controller is not implemented)"
            )
        if not self.rungs:
            raise ConfigError("a search needs at least one [[rungs]] budget")
        if self.eta < 2:
            raise ConfigError(f"eta must be >= 2, got {self.eta}")
        if self.top_k < 1 or self.candidates < 0 or self.final_seeds < 2:
            raise ConfigError(
                f"top_k >= 1, candidates >= 0 and final seeds >= 2 are needed, got {self.top_k}, "
                f"{self.candidates}, {self.final_seeds}"
            )
        if self.strategy == "random" and not self.candidates:
            raise ConfigError("strategy 'random' needs candidates = N (how many to sample)")
        for name in self.baselines:
            activations.get(name)
        for overrides, seeds in self.rungs:
            from_dict({**self.child, **overrides, "dataset": self.validation}, where="[[rungs]]")
            if seeds < 1:
                raise ConfigError(f"every rung needs seeds >= 1, got {seeds}")
        from_dict({**self.child, **self.final}, where="[final]")

    def run_config(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The TrainConfig fields of a rung (on the validation split)."""
        return {**self.child, **overrides, "dataset": self.validation}

    def final_config(self) -> dict[str, Any]:
        return {**self.child, **self.final}


def _merge(raw: dict[str, Any], scale: str | None, where: str) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items() if k != "scales"}
    if scale is None:
        return out
    scales = raw.get("scales", {})
    if scale not in scales:
        raise ConfigError(f"{where}: no [scales.{scale}] table; valid scales: {', '.join(scales) or 'none'}")
    for key, value in scales[scale].items():
        if key not in SECTIONS or key == "scales":
            raise ConfigError(
                f"{where}: unknown key {key!r} in [scales.{scale}]; valid: "
                f"{', '.join(s for s in SECTIONS if s != 'scales')}"
            )
        if key == "rungs":
            out[key] = value
        else:
            out[key] = {**out.get(key, {}), **value}
    return out


def config_from_dict(raw: dict[str, Any], scale: str | None = None, where: str = "search config") -> SearchConfig:
    """Validate a parsed search TOML (optionally at ``scale``) into a [`SearchConfig`][rectlab.search.SearchConfig].

    Raises:
        ConfigError: unknown sections or keys, bad values; the message names the file and the valid keys.
    """
    bad = set(raw) - set(SECTIONS) - {"study"}  # [study]: the claim of `rectlab reproduce activation-search`
    if bad:
        raise ConfigError(f"{where}: unknown section(s) {sorted(bad)}; valid: {', '.join(SECTIONS)}, study")
    d = _merge({k: v for k, v in raw.items() if k != "study"}, scale, where)
    search = dict(d.get("search", {}))
    bad = set(search) - set(SEARCH_KEYS)
    if bad:
        raise ConfigError(f"{where}: unknown [search] key(s) {sorted(bad)}; valid: {', '.join(SEARCH_KEYS)}")
    valid = field_names()
    child = dict(d.get("child", {}))
    final = dict(d.get("final", {}))
    final_seeds = int(final.pop("seeds", 5))
    for section, table in (("child", child), ("final", final)):
        unknown = [k for k in table if k not in valid or k == "seed"]
        if unknown:
            raise ConfigError(
                f"{where}: unknown [{section}] key(s) {unknown}; valid: TrainConfig fields "
                f"({', '.join(f for f in valid if f != 'seed')})"
            )
    rungs = []
    for i, rung in enumerate(d.get("rungs", [])):
        rung = dict(rung)
        seeds = int(rung.pop("seeds", 1))
        unknown = [k for k in rung if k not in valid or k in ("seed", "activation", "dataset")]
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown} in rung {i + 1}; valid: TrainConfig fields")
        rungs.append((rung, seeds))
    try:
        space = SearchSpace.from_dict(d.get("space", {}))
    except ValueError as e:
        raise ConfigError(f"{where} [space]: {e}") from None
    if "baselines" in search:
        search["baselines"] = tuple(search["baselines"])
    return SearchConfig(space=space, child=child, rungs=tuple(rungs), final=final, final_seeds=final_seeds, **search)


def load_config(path: str | Path, scale: str | None = None) -> SearchConfig:
    """Read a search TOML file at ``scale``."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"search config {path} does not exist; pass a .toml file like rectlab/specs/activation-search.toml"
        )
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return config_from_dict(raw, scale, str(path))
