"""Study specifications: a TOML file (or CLI flags) -> a frozen :class:`StudySpec`.

A study is a grid over any run-config fields (activations x models x datasets x transforms ...)
times a list of seeds, plus the baseline every cell is compared with::

    [study]
    name = "prelu-vs-relu"
    seeds = 3                       # or a list: [0, 1, 2]
    baseline = { activation = "relu" }

    [base]                          # rectlab.config.TrainConfig fields shared by every run
    model = "resnet20"
    dataset = "fashion-mnist"
    epochs = 10

    [grid]                          # each key is a TrainConfig field with a list of values
    activation = ["relu", "prelu", "gelu"]
    erase_relu = [0.0, 1.0]

Unknown sections, keys and names are errors that point at the line and list the valid values.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, TrainConfig, field_names, from_dict, unknown_key_message

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["StudySpec", "SpecError", "load_spec", "parse_spec", "spec_from_dict"]

STUDY_KEYS = ("name", "description", "seeds", "baseline", "metric", "claim", "paper", "verdict_rule", "probes",
              "reproduce")
SECTIONS = ("study", "base", "grid", "scales")
METRICS = ("test_error", "test_top5_error", "test_loss", "train_loss", "train_error")


class SpecError(ConfigError):
    """A study spec is invalid; the message names the file, line and valid values."""


@dataclass(frozen=True)
class StudySpec:
    """A resolved study.

    Attributes:
        name: study name (used for the report title).
        base: run config shared by every run.
        grid: ordered ``{field: [values]}``; cells are the cartesian product.
        seeds: the seeds every cell is run with.
        baseline: ``{field: value}`` identifying the reference cell (within the same values of the
            other grid fields); defaults to the first value of the first grid field.
        metric: the metric compared (lower is better), default ``test_error``.
        description, claim, paper: free text shown in the report.
        extra: anything a reproduction study adds (e.g. ``verdict_rule``).
    """

    name: str
    base: TrainConfig
    grid: dict[str, tuple[Any, ...]]
    seeds: tuple[int, ...]
    baseline: dict[str, Any]
    metric: str = "test_error"
    description: str = ""
    claim: str = ""
    paper: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": {
                "name": self.name,
                "seeds": list(self.seeds),
                "baseline": self.baseline,
                "metric": self.metric,
                "description": self.description,
                "claim": self.claim,
                "paper": self.paper,
                **self.extra,
            },
            "base": {k: v for k, v in self.base.to_dict().items() if v is not None},
            "grid": {k: list(v) for k, v in self.grid.items()},
        }


def _line_of(text: str | None, key: str) -> str:
    if not text:
        return ""
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=", re.MULTILINE)
    m = pattern.search(text)
    if m is None:
        m = re.compile(rf"^\s*\[{re.escape(key)}", re.MULTILINE).search(text)
    return f" (line {text.count(chr(10), 0, m.start()) + 1})" if m else ""


def _check_names(field_name: str, values: list[Any], where: str, text: str | None) -> None:
    """Check registry names (activation/model/dataset) so typos fail before any training."""
    registries = {"activation": "activations", "model": "models", "dataset": "data"}
    if field_name not in registries:
        return
    import importlib

    module = importlib.import_module(f"rectlab.{registries[field_name]}")
    known = module.names()
    for v in values:
        if field_name == "activation" and isinstance(v, str) and ":" in v:  # search:<expression>, built by name
            try:
                module.get(v)
            except (LookupError, ValueError, OSError) as e:
                raise SpecError(f"{where}{_line_of(text, field_name)}: {e}") from None
            continue
        if not isinstance(v, str) or v.lower().replace("_", "-") not in known:
            raise SpecError(
                f"{where}{_line_of(text, field_name)}: unknown {field_name} {v!r}; valid values: {', '.join(known)}"
            )


def spec_from_dict(raw: dict[str, Any], where: str = "study spec", text: str | None = None,
                   scale: str | None = None) -> StudySpec:
    """Validate a parsed TOML/dict spec and build a :class:`StudySpec`.

    Args:
        raw: the parsed document with ``study``, ``base``, ``grid`` and optional ``scales`` tables.
        where: the file name, for messages.
        text: the raw TOML text, used to point at line numbers.
        scale: the name of a ``[scales.NAME]`` table whose keys override ``base`` (and ``seeds``; a
            ``[scales.NAME.grid]`` sub-table replaces the values of those grid fields).
    """
    for section in raw:
        if section not in SECTIONS:
            raise SpecError(
                f"{where}{_line_of(text, section)}: unknown section [{section}]; valid: {', '.join(SECTIONS)}"
            )
    study = dict(raw.get("study", {}))
    for key in study:
        if key not in STUDY_KEYS:
            raise SpecError(f"{where}{_line_of(text, key)}: " + unknown_key_message(key, list(STUDY_KEYS), "[study]"))
    base = dict(raw.get("base", {}))
    scales = raw.get("scales", {})
    grid_overrides: dict[str, Any] = {}
    if scale is not None:
        if scale not in scales:
            valid = ", ".join(scales) or "none defined"
            raise SpecError(f"{where}: no [scales.{scale}] table; valid scales: {valid}")
        overrides = dict(scales[scale])
        if "seeds" in overrides:
            study["seeds"] = overrides.pop("seeds")
        grid_overrides = overrides.pop("grid", {})  # [scales.NAME.grid] replaces those grid fields' values
        base.update(overrides)
    valid_fields = field_names()
    for key in base:
        if key not in valid_fields:
            raise SpecError(f"{where}{_line_of(text, key)}: " + unknown_key_message(key, valid_fields, "[base]"))
    grid_raw = {**raw.get("grid", {}), **grid_overrides}
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_raw.items():
        if key not in valid_fields or key == "seed":
            hint = " (seeds are set with [study] seeds = N)" if key == "seed" else ""
            raise SpecError(
                f"{where}{_line_of(text, key)}: " + unknown_key_message(key, [f for f in valid_fields if f != "seed"],
                                                                         "[grid]") + hint
            )
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}{_line_of(text, key)}: [grid] {key} must be a non-empty list, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise SpecError(f"{where}{_line_of(text, key)}: [grid] {key} lists a value twice: {values!r}")
        grid[key] = tuple(values)
    for key in ("activation", "model", "dataset"):
        _check_names(key, list(grid.get(key, ())) + ([base[key]] if key in base else []), where, text)
    try:
        base_cfg = from_dict(base, where=f"{where} [base]")
        for key, values in grid.items():
            for v in values:
                base_cfg.replace(**{key: v})
    except ConfigError as e:
        raise SpecError(f"{where}: {e}") from None

    seeds_raw = study.get("seeds", 3)
    if isinstance(seeds_raw, bool) or not isinstance(seeds_raw, (int, list)):
        raise SpecError(f"{where}{_line_of(text, 'seeds')}: seeds must be a count or a list of ints, got {seeds_raw!r}")
    if isinstance(seeds_raw, int):
        if seeds_raw < 1:
            raise SpecError(f"{where}{_line_of(text, 'seeds')}: seeds must be >= 1, got {seeds_raw}")
        seeds = tuple(range(seeds_raw))
    else:
        if not seeds_raw or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds_raw):
            raise SpecError(
                f"{where}{_line_of(text, 'seeds')}: seeds must be a non-empty list of ints, got {seeds_raw!r}"
            )
        seeds = tuple(seeds_raw)

    baseline = study.get("baseline")
    if baseline is None:
        baseline = {next(iter(grid)): next(iter(grid.values()))[0]} if grid else {}
    if not isinstance(baseline, dict):
        raise SpecError(
            f"{where}{_line_of(text, 'baseline')}: baseline must be a table like {{ activation = \"relu\" }}"
        )
    for key, value in baseline.items():
        if key not in grid:
            raise SpecError(
                f"{where}{_line_of(text, 'baseline')}: baseline key {key!r} is not a [grid] field; grid fields: "
                f"{', '.join(grid) or 'none'}"
            )
        if value not in grid[key]:
            raise SpecError(
                f"{where}{_line_of(text, 'baseline')}: baseline {key}={value!r} is not among the grid values "
                f"{list(grid[key])}"
            )
    metric = study.get("metric", "test_error")
    if metric not in METRICS:
        raise SpecError(f"{where}{_line_of(text, 'metric')}: metric {metric!r} is not valid; choose one of {METRICS}")
    name = study.get("name") or (Path(where).stem if where.endswith(".toml") else "study")
    extra = {k: v for k, v in study.items() if k not in ("name", "seeds", "baseline", "metric", "description",
                                                          "claim", "paper")}
    return StudySpec(
        name=str(name),
        base=base_cfg,
        grid=grid,
        seeds=seeds,
        baseline=dict(baseline),
        metric=metric,
        description=str(study.get("description", "")),
        claim=str(study.get("claim", "")),
        paper=str(study.get("paper", "")),
        extra=extra,
    )


def parse_spec(text: str, where: str = "study spec", scale: str | None = None) -> StudySpec:
    """Parse TOML text into a :class:`StudySpec`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{where}: not valid TOML: {e}") from None
    return spec_from_dict(raw, where=where, text=text, scale=scale)


def load_spec(path: str | Path, scale: str | None = None) -> StudySpec:
    """Read a study TOML file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"study spec {path} does not exist; pass the path of a .toml file (see studies/)")
    return parse_spec(path.read_text(), where=str(path), scale=scale)
