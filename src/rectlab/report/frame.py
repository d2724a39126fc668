"""Study results as pandas DataFrames: [`to_frame`][rectlab.report.frame.to_frame], and CSV / Parquet files (``rectlab
export``).

pandas is optional (``pip install 'rectlab[frames]'``; Parquet also needs pyarrow). Rows hold plain
values, not JSON: one row per run (``per="run"``) or per finished epoch of every run (``per="epoch"``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingFileError, MissingPackageError
from ..files import atomic_path
from ..study.store import Store
from ..training.config import field_names

__all__ = ["FORMATS", "export", "records", "study_dirs", "to_frame"]

PER = ("run", "epoch")
FORMATS = ("csv", "parquet")
# Epoch-row keys renamed where they would collide with a config field or mean something else per run.
_RENAMED = {"lr": "epoch_lr"}


def _pandas() -> Any:
    try:
        import pandas  # optional: pip install 'rectlab[frames]'
    except ImportError:
        raise MissingPackageError(
            "to_frame needs pandas: pip install 'rectlab[frames]' (or pip install pandas)"
        ) from None
    return pandas


def study_dirs(path: str | Path) -> list[Path]:
    """The study directories at or under ``path``: ``path`` itself when it holds ``results.db``, else every
    folder below it that does (the parts of a reproduction), sorted."""
    path = Path(path)
    if (path / "results.db").is_file():
        return [path]
    if not path.is_dir():
        raise MissingFileError(f"{path} is not a directory: pass the --out folder of compare, run or reproduce")
    return sorted(p.parent for p in path.rglob("results.db"))


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value)  # e.g. step_milestones: one cell, comparable and groupable
    else:
        out[prefix] = value


def _run_columns(root: Path, study_dir: Path, run: dict[str, Any], label: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "study": run["study"],
        "dir": str(study_dir.relative_to(root)) if study_dir != root else ".",
        "hash": run["hash"],
        "cell": label,
        "seed": run["seed"],
        "status": run["status"],
    }
    config = run["config"]
    if "function" in config:  # a function study: the function and its parameters
        for key, value in config.items():
            if key not in ("seed", "device", "data_dir"):
                _flat(key, value, row)
        return row
    for key in field_names():
        if key != "seed" and key in config:
            _flat(key, config[key], row)
    return row


def _label(cell: dict[str, Any], order: list[str]) -> str:
    """The cell's label as the study names it (`rectlab.study.Cell.label`: grid order)."""
    keys = [k for k in order if k in cell] + [k for k in cell if k not in order]
    if len(keys) == 1:
        return str(cell[keys[0]])
    return ", ".join(f"{k}={cell[k]}" for k in keys)


def _epoch_values(metrics: dict[str, Any]) -> dict[str, Any]:
    return {_RENAMED.get(k, k): v for k, v in metrics.items()}


def records(path: str | Path, per: str = "run") -> list[dict[str, Any]]:
    """The rows [`to_frame`][rectlab.report.frame.to_frame] builds, as plain dicts (no pandas needed)."""
    if per not in PER:
        raise InputError(f"per must be one of {', '.join(PER)}, got {per!r}")
    root = Path(path)
    dirs = study_dirs(root)
    if not dirs:
        xor = sorted(root.glob("xor*.json"))
        if xor:
            if per == "epoch":
                raise InputError(f"{root} holds xor-prelu trial counts, not epochs of runs; use per='run'")
            return _xor_records(xor)
        raise MissingFileError(f"no results.db in or under {root}: pass the --out folder of compare, run or reproduce")
    rows: list[dict[str, Any]] = []
    for study_dir in dirs:
        store = Store(study_dir / "results.db", readonly=True)
        order = list((store.spec() or {}).get("grid") or {})
        for run in store.runs():
            base = _run_columns(root, study_dir, run, _label(run["cell"], order))
            epochs = run["epochs"]
            if per == "epoch":
                rows.extend({**base, **_epoch_values(e)} for e in epochs)
                continue
            final = _epoch_values(epochs[-1]) if epochs else {}
            final.pop("epoch", None)
            extras = run.get("extras") or {}
            final.update(extras.get("final") or {})  # what a user's training function returned
            diverged = extras.get("diverged") or {}
            rows.append(
                {
                    **base,
                    "epochs_done": len(epochs),
                    **final,
                    "train_seconds": sum(e.get("seconds") or 0.0 for e in epochs),
                    "erased_sites": len(extras.get("erased_sites", [])),
                    "diverged_epoch": diverged.get("epoch"),
                    "device": run.get("device"),
                    "rectlab_version": (run.get("versions") or {}).get("rectlab"),
                    "torch_version": (run.get("versions") or {}).get("torch"),
                    "error": (run.get("error") or "").splitlines()[0] if run.get("error") else None,
                }
            )
    return rows


def _xor_records(files: list[Path]) -> list[dict[str, Any]]:
    """xor-prelu's batched runner stores success counts per (model, learning rate), not runs."""
    rows = []
    for file in files:
        data = json.loads(file.read_text())
        setup = data["setup"]
        for model, successes in data["success"].items():
            for lr, ok, loss in zip(setup["lrs"], successes, data["median_loss"][model]):
                rows.append(
                    {
                        "inputs": setup["inputs"],
                        "model": model,
                        "params": data["n_params"][model],
                        "lr": lr,
                        "trials": setup["trials"],
                        "epochs": setup["epochs"],
                        "successes": ok,
                        "success_rate": ok / setup["trials"],
                        "median_loss": loss,
                    }
                )
    return rows


def to_frame(path: str | Path, per: str = "run") -> Any:
    """A study's (or a reproduction's) results as a pandas DataFrame.

    Args:
        path: the ``--out`` folder of ``rectlab compare``/``run`` (holds ``results.db``) or of ``rectlab
            reproduce`` (every part below it is read; the ``dir`` column says which).
        per: ``"run"``: one row per run with its final epoch's metrics; ``"epoch"``: one row per finished
            epoch of every run (learning curves).

    Returns:
        A DataFrame. Columns: ``study``, ``dir``, ``hash``, ``cell`` (the grid cell's label), ``seed``,
        ``status`` (done / failed / diverged / ...), every config field (``activation``, ``model``, ``lr``,
        ``erase_relu``, ...; ``model_kwargs.depth`` for keyword tables), then the metrics: ``test_error``,
        ``test_loss``, ``train_loss``, ``train_error``, ``test_top5_error``, ``seconds``, ``epoch_lr`` (the
        learning rate the schedule reached) and any probe metrics (``dnr``, ``slope/<layer>``, ...). Per run
        also ``epochs_done``, ``train_seconds``, ``erased_sites``, ``diverged_epoch``, ``device``, versions and
        the first line of ``error``; per epoch, ``epoch``. The xor-prelu reproduction, which trains batched
        trials rather than runs, gives one row per (inputs, model, learning rate) with its success count.

    Raises:
        ImportError: pandas is not installed (the message says how to install it).
        FileNotFoundError: no ``results.db`` in or under ``path``.

    Example:
        >>> df = to_frame("runs/compare")                                          # doctest: +SKIP
        >>> df.groupby("activation")["test_error"].agg(["mean", "std", "count"])    # doctest: +SKIP
    """
    pd = _pandas()
    return pd.DataFrame.from_records(records(path, per))


def export(path: str | Path, out: str | Path, fmt: str | None = None, per: str = "run") -> Path:
    """Write [`to_frame`][rectlab.report.frame.to_frame] of ``path`` to ``out`` as CSV or Parquet (``fmt``, default from
    the suffix)."""
    out = Path(out)
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} for {out}; use one of: {', '.join(FORMATS)}")
    if out.is_dir():
        raise InputError(f"{out} is a folder; pass the file to write, e.g. {out / f'results.{fmt}'}")
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise InputError(f"cannot write {out}: {blocking} is a file, not a folder; pass another path")
    frame = to_frame(path, per)
    with atomic_path(out) as tmp:  # a whole file or none: never a half-written table
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        else:
            try:
                frame.to_parquet(tmp, index=False)
            except ImportError as e:
                raise MissingPackageError(f"Parquet needs pyarrow: pip install 'rectlab[frames]' ({e})") from None
    return out
