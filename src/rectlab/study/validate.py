"""Check a whole study before its first run: datasets where the user said they are, every cell's model
buildable, the devices present. Bad input ends here with one line, not in the middle of a study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import data as rdata
from ..errors import MissingFileError
from ..training.config import TrainConfig
from ..training.loop import model_for, resolve_device
from .function import FunctionConfig, resolve_function
from .grid import Run
from .spec import SpecError

__all__ = ["check_data_dir", "validate_runs"]


def check_data_dir(dataset: str, data_dir: str | Path | None) -> None:
    """A ``data_dir`` (``--data-dir``) must hold the dataset: never fall back silently to another copy.

    When no copy exists anywhere, loading will download into ``data_dir`` (or say how to get the files).

    Raises:
        FileNotFoundError: ``data_dir`` does not exist, or the dataset would be read from somewhere else.
    """
    if data_dir is None:
        return
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise MissingFileError(f"--data-dir {data_dir} does not exist; pass the folder that holds {dataset}")
    where = rdata.find(dataset, root)
    if where is None:
        return
    try:
        where.resolve().relative_to(root.resolve())
    except ValueError:
        raise MissingFileError(
            f"--data-dir {data_dir} does not hold {dataset} (it would be read from {where} instead); put the files "
            f"in {root} or {root / dataset}, or drop --data-dir to use that copy"
        ) from None


def validate_runs(runs: list[Run]) -> dict[tuple[str, str | None], Any]:
    """Check every distinct dataset, device and model of ``runs`` (each model built once, on the CPU).

    Returns:
        The datasets loaded on the way, ``{(name, data_dir): LoadedData}``, for the local executor to reuse.

    Raises:
        SpecError: a cell whose model cannot be built (unknown keyword argument, bad value), naming the cell.
        FileNotFoundError, DataError: a dataset that is not where ``data_dir`` says, or unreadable.
        RuntimeError: a device that is not present.
    """
    loaded: dict[tuple[str, str | None], Any] = {}
    seen_models: set[str] = set()
    for run in runs:
        config = run.config
        if isinstance(config, FunctionConfig):  # the user's function: importable, on a device that is present
            if config.function not in seen_models:
                resolve_function(config.function)
                seen_models.add(config.function)
            resolve_device(config.device)
            continue
        key = (config.dataset, config.data_dir)
        if key not in loaded:
            check_data_dir(config.dataset, config.data_dir)
            loaded[key] = rdata.load(config.dataset, data_dir=config.data_dir)
        resolve_device(config.device)
        what = _model_identity(config)
        if what in seen_models:
            continue
        seen_models.add(what)
        try:
            model_for(config, loaded[key])
        except Exception as e:  # any failure to build is the user's input: say which cell
            message = str(e).splitlines()[0] if str(e) else ""
            kind = type(e).__name__
            if type(e).__module__ == "rectlab.errors":  # a general input error: named by the built-in it refines
                kind = next((c.__name__ for c in type(e).__mro__ if c.__module__ == "builtins"), kind)
            raise SpecError(f"cell {run.cell.label}: cannot build the model ({kind}: {message})") from None
    return loaded


def _model_identity(config: TrainConfig) -> str:
    """The fields that decide what the model is (not how it is trained)."""
    keys = (
        "model",
        "activation",
        "activation_kwargs",
        "model_kwargs",
        "head",
        "dataset",
        "erase_relu",
        "erase_location",
        "init",
        "backend",
    )
    return repr([(k, getattr(config, k)) for k in keys])
