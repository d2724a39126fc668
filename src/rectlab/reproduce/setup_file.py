"""Settings of the custom-runner reproductions: one TOML table plus ``[scales.NAME]`` overrides, into a dataclass."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["load_setup_table"]

T = TypeVar("T")


def load_setup_table(path: str | Path, section: str, scale: str, cls: type[T]) -> T:
    """``cls(**values)`` from the ``[section]`` table of ``path`` updated with its ``[scales.SCALE]`` table.

    Lists become tuples for the dataclass fields annotated as tuples. A ``[study]`` table (the claim and its
    design, read by the reproduction) is allowed beside them.

    Raises:
        ValueError: for unknown sections or keys, or a missing scale (the message lists the valid ones).
    """
    raw = tomllib.loads(Path(path).read_text())
    unknown = set(raw) - {"study", section, "scales"}
    if unknown:
        raise InputError(f"{path}: unknown section(s) {sorted(unknown)}; valid: [study], [{section}], [scales.NAME]")
    values: dict[str, Any] = dict(raw.get(section, {}))
    scales = raw.get("scales", {})
    if scale not in scales:
        raise InputError(f"{path}: no [scales.{scale}] table; valid scales: {', '.join(scales) or 'none'}")
    values.update(scales[scale])
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    bad = [k for k in values if k not in fields]
    if bad:
        raise InputError(f"{path}: unknown key(s) {bad} in [{section}]; valid keys: {', '.join(fields)}")
    for key, value in values.items():
        if isinstance(value, list) and str(fields[key].type).startswith("tuple"):
            values[key] = tuple(value)
    return cls(**values)
