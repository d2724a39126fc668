"""Study specifications: a TOML file (or CLI flags) -> a frozen [`StudySpec`][rectlab.study.StudySpec].

A study is a grid over any run-config fields (activations x models x datasets x transforms ...)
times a list of seeds, plus the baseline every cell is compared with::

    [study]
    name = "prelu-vs-relu"
    seeds = 3                       # or a list: [0, 1, 2]
    baseline = { activation = "relu" }

    [base]                          # rectlab.training.config.TrainConfig fields shared by every run
    model = "resnet20"
    dataset = "fashion-mnist"
    epochs = 10

    [grid]                          # each key is a TrainConfig field with a list of values
    activation = ["relu", "prelu", "gelu"]
    erase_relu = [0.0, 1.0]

A *function study* names the user's own training function in ``[base]`` instead of a model; its ``[base]``
and ``[grid]`` keys are then any parameters the function reads (see `rectlab.study.function`)::

    [study]
    seeds = 5
    baseline = { activation = "relu" }
    metric = "val_accuracy"
    goal = "max"                    # higher is better (default "min")

    [base]
    function = "mytrain:train"      # or "path/to/mytrain.py:train"
    epochs = 10

    [grid]
    activation = ["relu", "gelu"]
    lr = [0.01, 0.1]

Unknown sections, keys and names are errors that point at the line and list the valid values.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .. import activations, data, models
from ..errors import MissingFileError
from ..plugins import PluginError, import_modules, normalize_imports
from ..probes import PROBES
from ..training.config import (
    EXECUTION_FIELDS,
    LATER_FIELDS,
    ConfigError,
    TrainConfig,
    field_names,
    from_dict,
    unknown_key_message,
)
from .function import EXECUTION_KEYS, RESERVED_KEYS, FunctionConfig, FunctionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "MAX_RUNS",
    "MAX_SEEDS",
    "METRICS",
    "SCALES",
    "StudySpec",
    "SpecError",
    "load_spec",
    "merge_specs",
    "parse_spec",
    "spec_differences",
    "spec_from_dict",
    "studies_dir",
]

STUDY_KEYS = (
    "name",
    "description",
    "seeds",
    "baseline",
    "metric",
    "goal",
    "claim",
    "paper",
    "published",
    "verdict_rule",
    "probes",
    "reproduce",
    "imports",
)
GOALS = ("min", "max")
TEXT_KEYS = ("name", "description", "claim", "paper", "published")
SECTIONS = ("study", "base", "grid", "scales")
METRICS = ("test_error", "test_top5_error", "test_loss", "train_loss", "train_error")
# The [scales.NAME] tables every shipped study defines, and the values of `rectlab reproduce --scale`.
SCALES = ("smoke", "quick", "full")
# Bounds that turn a typo (seeds = 1000000000) into a message instead of an out-of-memory kill.
MAX_SEEDS = 10_000
MAX_RUNS = 100_000


class SpecError(ConfigError):
    """A study spec is invalid; the message names the file, line and valid values."""


@dataclass(frozen=True)
class StudySpec:
    """A resolved study.

    Attributes:
        name: study name (used for the report title).
        base: run config shared by every run: a TrainConfig, or a FunctionConfig for a study of the user's
            own training function (its grid keys are then the function's parameters).
        grid: ordered ``{field: [values]}``; cells are the cartesian product.
        seeds: the seeds every cell is run with.
        baseline: ``{field: value}`` identifying the reference cell (within the same values of the
            other grid fields); defaults to the first value of the first grid field.
        metric: the metric compared, default ``test_error``.
        goal: ``"min"`` (lower is better, the default) or ``"max"`` (higher is better; function studies).
        description, claim, paper: free text shown in the report.
        extra: anything a reproduction study adds (e.g. ``verdict_rule``).
    """

    name: str
    base: TrainConfig | FunctionConfig
    grid: dict[str, tuple[Any, ...]]
    seeds: tuple[int, ...]
    baseline: dict[str, Any]
    metric: str = "test_error"
    goal: str = "min"
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
                **({"goal": self.goal} if self.goal != "min" else {}),
                "description": self.description,
                "claim": self.claim,
                "paper": self.paper,
                **self.extra,
            },
            # a function's parameters keep their None values (they are part of what it computes)
            "base": self.base.to_dict()
            if isinstance(self.base, FunctionConfig)
            else {k: v for k, v in self.base.to_dict().items() if v is not None},
            "grid": {k: list(v) for k, v in self.grid.items()},
        }

    def identity(self) -> dict[str, Any]:
        """What the study computes: the base config (minus execution fields and grid fields), the grid, the
        seeds, the baseline, the metric and the extras (probes, reproduction options). Names and descriptions
        are not part of it."""
        skip = {*EXECUTION_FIELDS, *self.grid, "seed"}
        if isinstance(self.base, FunctionConfig):  # the function's import path and its parameters
            base = self.base.identity(skip=list(self.grid))
        else:  # fields added later count only when set, so older study directories keep their digest
            base = {
                k: v
                for k, v in self.base.to_dict().items()
                if k not in skip and not (k in LATER_FIELDS and v == LATER_FIELDS[k])
            }
        return {
            "base": base,
            "grid": {k: list(v) for k, v in self.grid.items()},
            "seeds": sorted(self.seeds),
            "baseline": self.baseline,
            "metric": self.metric,
            **({"goal": self.goal} if self.goal != "min" else {}),
            # Where plugin names come from (a module, a file path) is not what the study computes.
            "extra": {k: v for k, v in self.extra.items() if k != "imports"},
        }

    @property
    def digest(self) -> str:
        """16-hex-digit hash of `identity`: a study directory belongs to one digest."""
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def num_runs(self) -> int:
        return math.prod(len(v) for v in self.grid.values()) * len(self.seeds)


class _Doc:
    """Where a spec came from, to prefix every error with the file and the line of the key."""

    def __init__(self, where: str, text: str | None) -> None:
        self.where, self.text = where, text

    def line(self, key: str) -> str:
        if not self.text:
            return ""
        m = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=", re.MULTILINE).search(self.text)
        if m is None:
            m = re.compile(rf"^\s*\[{re.escape(key)}", re.MULTILINE).search(self.text)
        return f" (line {self.text.count(chr(10), 0, m.start()) + 1})" if m else ""

    def error(self, key: str | None, message: str) -> SpecError:
        return SpecError(f"{self.where}{self.line(key) if key else ''}: {message}")


def _table(doc: _Doc, raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise doc.error(name, f"[{name}] must be a table, got {value!r}")
    return dict(value)


def _check_names(doc: _Doc, field_name: str, values: list[Any]) -> None:
    """Check registry names (activation/model/dataset) so typos fail before any training, with the registry's
    "did you mean" and list of known names."""
    lookup: Any = {"activation": activations.get, "model": models.check_name, "dataset": data.DATASETS.get}[field_name]
    for v in values:
        if not isinstance(v, str):
            raise doc.error(field_name, f"{field_name} must be a name (a string), got {v!r}")
        try:
            lookup(v)
        except (LookupError, ImportError, ValueError, OSError) as e:
            raise doc.error(field_name, str(e)) from None


def _apply_scale(
    doc: _Doc, raw: dict[str, Any], study: dict[str, Any], base: dict[str, Any], scale: str
) -> dict[str, Any]:
    """Apply ``[scales.NAME]`` to ``study`` (seeds) and ``base``; return its ``[scales.NAME.grid]`` overrides."""
    scales = _table(doc, raw, "scales")
    if scale not in scales:
        raise doc.error(None, f"no [scales.{scale}] table; valid scales: {', '.join(scales) or 'none defined'}")
    overrides = dict(scales[scale])
    if "seeds" in overrides:
        study["seeds"] = overrides.pop("seeds")
    grid = overrides.pop("grid", {})
    base.update(overrides)
    return grid


def _grid(doc: _Doc, grid_raw: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    valid = [f for f in field_names() if f != "seed"]
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_raw.items():
        if key not in valid:
            hint = " (seeds are set with [study] seeds = N)" if key == "seed" else ""
            raise doc.error(key, unknown_key_message(key, valid, "[grid]") + hint)
        if not isinstance(values, list) or not values:
            raise doc.error(key, f"[grid] {key} must be a non-empty list, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise doc.error(key, f"[grid] {key} lists a value twice: {values!r}")
        grid[key] = tuple(values)
    return grid


def _base_config(doc: _Doc, base: dict[str, Any], grid: dict[str, tuple[Any, ...]]) -> TrainConfig:
    valid = field_names()
    for key in base:
        if key not in valid:
            raise doc.error(key, unknown_key_message(key, valid, "[base]"))
    for key in ("activation", "model", "dataset"):
        _check_names(doc, key, list(grid.get(key, ())) + ([base[key]] if key in base else []))
    try:
        config = from_dict(base, where=f"{doc.where} [base]")
    except ConfigError as e:
        raise doc.error(next((k for k in base if str(e).startswith(k)), None), str(e)) from None
    for key, values in grid.items():
        for v in values:
            try:
                config.replace(**{key: v})
            except ConfigError as e:
                raise doc.error(key, f"[grid] {key}: {e}") from None
    return config


def _seeds(doc: _Doc, seeds_raw: Any) -> tuple[int, ...]:
    if isinstance(seeds_raw, bool) or not isinstance(seeds_raw, (int, list)):
        raise doc.error("seeds", f"seeds must be a count or a list of ints, got {seeds_raw!r}")
    if isinstance(seeds_raw, int):
        if seeds_raw < 1:
            raise doc.error("seeds", f"seeds must be >= 1, got {seeds_raw}")
        if seeds_raw > MAX_SEEDS:
            raise doc.error(
                "seeds",
                f"seeds must be at most {MAX_SEEDS}, got {seeds_raw}; a study of that "
                "many seeds would not fit in memory",
            )
        return tuple(range(seeds_raw))
    if not seeds_raw or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds_raw):
        raise doc.error("seeds", f"seeds must be a non-empty list of ints >= 0, got {seeds_raw!r}")
    if len(seeds_raw) > MAX_SEEDS:
        raise doc.error("seeds", f"at most {MAX_SEEDS} seeds, got {len(seeds_raw)}")
    if len(set(seeds_raw)) != len(seeds_raw):
        raise doc.error("seeds", f"seeds lists a seed twice: {seeds_raw!r} (the same seed gives the same run)")
    return tuple(seeds_raw)


def _baseline(doc: _Doc, baseline: Any, grid: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    if baseline is None:
        return {next(iter(grid)): next(iter(grid.values()))[0]} if grid else {}
    if not isinstance(baseline, dict):
        raise doc.error("baseline", 'baseline must be a table like { activation = "relu" }')
    for key, value in baseline.items():
        if key not in grid:
            raise doc.error(
                "baseline", f"baseline key {key!r} is not a [grid] field; grid fields: {', '.join(grid) or 'none'}"
            )
        if value not in grid[key]:
            raise doc.error("baseline", f"baseline {key}={value!r} is not among the grid values {list(grid[key])}")
    return dict(baseline)


def _function_grid(doc: _Doc, grid_raw: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The grid of a function study: any parameter names (not the reserved keys), each a list of values."""
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_raw.items():
        if key in RESERVED_KEYS:
            where = "[study] seeds = N" if key == "seed" else f"[base] {key} (or the command line)"
            raise doc.error(key, f"[grid] cannot vary {key!r}; it is set with {where}")
        if not isinstance(values, list) or not values:
            raise doc.error(key, f"[grid] {key} must be a non-empty list, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise doc.error(key, f"[grid] {key} lists a value twice: {values!r}")
        grid[key] = tuple(values)
    return grid


def _function_config(doc: _Doc, base: dict[str, Any], grid: dict[str, tuple[Any, ...]]) -> FunctionConfig:
    fields = {k: base[k] for k in RESERVED_KEYS if k in base}
    params = {k: v for k, v in base.items() if k not in RESERVED_KEYS}
    try:
        config = FunctionConfig(**fields, params=params)
    except (FunctionError, TypeError) as e:
        raise doc.error(
            next((k for k in (*EXECUTION_KEYS, "function", "seed") if k in str(e)), "function"), str(e)
        ) from None
    for key, values in grid.items():
        for v in values:
            try:
                config.replace(**{key: v})
            except FunctionError as e:
                raise doc.error(key, f"[grid] {key}: {e}") from None
    return config


def _extra(doc: _Doc, study: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in study.items() if k not in (*TEXT_KEYS, "seeds", "baseline", "metric", "goal")}
    probes = extra.get("probes", [])
    if probes and (not isinstance(probes, list) or any(p not in PROBES for p in probes)):
        raise doc.error("probes", f"probes must be a list of: {', '.join(PROBES)}; got {probes!r}")
    return extra


def spec_from_dict(
    raw: dict[str, Any], where: str = "study spec", text: str | None = None, scale: str | None = None
) -> StudySpec:
    """Validate a parsed TOML/dict spec and build a [`StudySpec`][rectlab.study.StudySpec].

    Args:
        raw: the parsed document with ``study``, ``base``, ``grid`` and optional ``scales`` tables.
        where: the file name, for messages.
        text: the raw TOML text, used to point at line numbers.
        scale: the name of a ``[scales.NAME]`` table whose keys override ``base`` (and ``seeds``; a
            ``[scales.NAME.grid]`` sub-table replaces the values of those grid fields).

    Raises:
        SpecError: for anything invalid, with the file, the line and the valid values.
    """
    doc = _Doc(where, text)
    for section in raw:
        if section not in SECTIONS:
            raise doc.error(section, f"unknown section [{section}]; valid: {', '.join(SECTIONS)}")
    study, base = _table(doc, raw, "study"), _table(doc, raw, "base")
    for key in study:
        if key not in STUDY_KEYS:
            raise doc.error(key, unknown_key_message(key, list(STUDY_KEYS), "[study]"))
    grid_overrides = _apply_scale(doc, raw, study, base, scale) if scale is not None else {}
    grid_raw = {**_table(doc, raw, "grid"), **grid_overrides}
    if not base and not grid_raw:
        raise doc.error(
            None,
            "nothing to train: the spec sets no [base] or [grid] fields (see the study files "
            "shipped in rectlab/specs/ for examples)",
        )
    function = "function" in base  # the user's own training function instead of a built-in model
    grid = _function_grid(doc, grid_raw) if function else _grid(doc, grid_raw)
    if "imports" in study:  # plugin modules that register the spec's names (workers import them too)
        try:
            study["imports"] = normalize_imports(study["imports"])
            import_modules(study["imports"])
        except PluginError as e:
            raise doc.error("imports", str(e)) from None
    seeds = _seeds(doc, study.get("seeds", 3))
    cells = math.prod(len(v) for v in grid.values())
    if cells * len(seeds) > MAX_RUNS:
        raise doc.error(
            None,
            f"the study has {cells} cells x {len(seeds)} seeds = {cells * len(seeds)} runs, more "
            f"than the limit of {MAX_RUNS}; split it into several studies",
        )
    base_cfg = _function_config(doc, base, grid) if function else _base_config(doc, base, grid)
    metric = study.get("metric", "test_error")
    goal = study.get("goal", "min")
    if goal not in GOALS:
        raise doc.error("goal", f'goal must be "min" (lower is better) or "max" (higher is better), got {goal!r}')
    if function:
        if not isinstance(metric, str) or not metric:
            raise doc.error("metric", f"metric must name a value the function logs or returns, got {metric!r}")
        if study.get("probes"):
            raise doc.error(
                "probes",
                "probes run inside rectlab's own training loop; a function study cannot use "
                "them (log such values from the function with trial.log)",
            )
    elif metric not in METRICS:
        raise doc.error("metric", f"metric {metric!r} is not valid; choose one of: {', '.join(METRICS)}")
    elif goal != "min":
        raise doc.error(
            "goal",
            f'the built-in metrics ({", ".join(METRICS)}) are lower-is-better; goal = "max" is '
            "for the metrics of a function study",
        )
    name = study.get("name") or (Path(where).stem if where.endswith(".toml") else "study")
    return StudySpec(
        name=str(name),
        base=base_cfg,
        grid=grid,
        seeds=seeds,
        baseline=_baseline(doc, study.get("baseline"), grid),
        metric=metric,
        goal=goal,
        description=str(study.get("description", "")),
        claim=str(study.get("claim", "")),
        paper=str(study.get("paper", "")),
        extra=_extra(doc, study),
    )


def parse_spec(text: str, where: str = "study spec", scale: str | None = None) -> StudySpec:
    """Parse TOML text into a [`StudySpec`][rectlab.study.StudySpec]."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{where}: not valid TOML: {e}") from None
    return spec_from_dict(raw, where=where, text=text, scale=scale)


def load_spec(path: str | Path, scale: str | None = None) -> StudySpec:
    """Read a study TOML file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(
            f"study spec {path} does not exist; pass the path of a .toml file (see rectlab/specs/ for examples)"
        )
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read study spec {path}: {e}") from None
    return parse_spec(text, where=str(path), scale=scale)


def studies_dir(explicit: str | Path | None = None) -> Path:
    """The folder of the study specs.

    Looked up in order: ``explicit`` (``--studies DIR``), ``$RECTLAB_STUDIES``, and the specs shipped
    inside the package (``rectlab/specs/*.toml``, found with `importlib.resources`, so an installed
    wheel reproduces from any folder).

    Raises:
        FileNotFoundError: naming every place that was tried and how to point at the folder.
    """
    tried: list[Path] = []
    if explicit is not None:
        tried.append(Path(explicit))
    elif os.environ.get("RECTLAB_STUDIES"):
        tried.append(Path(os.environ["RECTLAB_STUDIES"]))
    else:
        tried.append(Path(str(resources.files("rectlab") / "specs")))
    for path in tried:
        if (path / "prelu.toml").is_file():
            return path
    raise MissingFileError(
        f"the study specs (*.toml) were not found; tried: {', '.join(map(str, tried))}. "
        "Pass --studies DIR or set RECTLAB_STUDIES to a folder of study specs (a copy of rectlab/specs/)"
    )


def _short(values: list[Any]) -> str:
    if (
        len(values) > 3
        and all(isinstance(v, int) for v in values)
        and values == list(range(values[0], values[0] + len(values)))
    ):
        return f"{values[0]}..{values[-1]}"
    return "[" + ", ".join(map(str, values)) + "]"


def spec_differences(old: StudySpec, new: StudySpec) -> list[str]:
    """What ``new`` computes differently from ``old``, one short phrase per difference ("epochs 6 -> 3")."""
    a, b = old.identity(), new.identity()
    out = []
    for key in sorted(set(a["base"]) | set(b["base"])):
        if a["base"].get(key) != b["base"].get(key) or (key in a["base"]) != (key in b["base"]):
            out.append(f"{key} {a['base'].get(key)!r} -> {b['base'].get(key)!r}")
    for key in dict.fromkeys([*a["grid"], *b["grid"]]):
        if a["grid"].get(key) != b["grid"].get(key):
            old_v = _short(a["grid"][key]) if key in a["grid"] else "not in the grid"
            new_v = _short(b["grid"][key]) if key in b["grid"] else "not in the grid"
            out.append(f"grid {key} {old_v} -> {new_v}")
    if a["seeds"] != b["seeds"]:
        out.append(f"seeds {_short(a['seeds'])} -> {_short(b['seeds'])}")
    for key in ("baseline", "metric", "goal", "extra"):
        if a.get(key, "min" if key == "goal" else None) != b.get(key, "min" if key == "goal" else None):
            out.append(f"{key} {a.get(key, 'min')!r} -> {b.get(key, 'min')!r}")
    return out


def merge_specs(old: StudySpec, new: StudySpec) -> StudySpec | None:
    """``old`` grown by the seeds and grid values of ``new``, or None when they are not compatible (anything
    else differs: base config, grid fields, baseline, metric, probes). Text fields come from ``new``."""
    a, b = old.identity(), new.identity()
    if any(a.get(k) != b.get(k) for k in ("base", "baseline", "metric", "goal", "extra")) or list(a["grid"]) != list(
        b["grid"]
    ):
        return None
    grid = {k: tuple(dict.fromkeys([*old.grid[k], *new.grid[k]])) for k in old.grid}
    seeds = tuple(sorted(set(old.seeds) | set(new.seeds)))

    return replace(new, grid=grid, seeds=seeds)
