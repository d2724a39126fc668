"""PNG plots of studies and reproductions (matplotlib, headless Agg backend): one place for figure set-up.

Building blocks: :func:`curves` (a metric over epochs, mean and min–max band over seeds),
:func:`points_with_ci` (per-seed values with the mean and its 95% CI), :func:`layer_curves` and
:func:`layer_profile` (per-layer values), :func:`scatter_ci` (two metrics per group) and
:func:`bars`. :func:`make_plots` draws a study's standard set from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_path
from ..study.spec import METRICS
from .stats import summarize

__all__ = [
    "bars",
    "curves",
    "layer_curves",
    "layer_profile",
    "make_plots",
    "points_with_ci",
    "pyplot",
    "save_figure",
    "scatter_ci",
]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _colors(n: int) -> Any:
    return pyplot().get_cmap("tab10" if n <= 10 else "tab20")


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, write (atomically: a temporary file, then rename) and close ``fig``; returns ``path``."""
    try:
        fig.tight_layout()
        with atomic_path(path, f"the plot {path}") as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        pyplot().close(fig)
    return path


def curves(series: Mapping[str, np.ndarray], path: Path, *, title: str, ylabel: str, xlabel: str = "epoch",
           log: bool = False, hline: float | None = None, hline_label: str = "",
           panels: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Mean curve per label with a min–max band over seeds.

    Args:
        series: ``{label: array (seeds, epochs)}``.
        path: the PNG to write.
        panels: optional ``{panel title: [labels]}`` to draw the labels in side-by-side panels.
        hline: a horizontal reference line (e.g. the chance-level loss).
    """
    plt = pyplot()
    groups = dict(panels) if panels else {"": list(series)}
    fig, axes = plt.subplots(1, len(groups), figsize=(min(15, 5 * len(groups) + 2), 4.2), squeeze=False,
                             sharey=True)
    labels = list(series)
    colors = _colors(len(labels))
    for ax, (panel, members) in zip(axes[0], groups.items()):
        for label in members:
            if label not in series or not np.asarray(series[label]).size:
                continue
            arr = np.atleast_2d(np.asarray(series[label], dtype=float))
            x = np.arange(1, arr.shape[1] + 1)
            color = colors(labels.index(label) % colors.N)
            ax.plot(x, np.nanmean(arr, 0), "o-", ms=3, lw=1.6, color=color, label=f"{label} (n={arr.shape[0]})")
            if arr.shape[0] > 1:
                ax.fill_between(x, np.nanmin(arr, 0), np.nanmax(arr, 0), color=color, alpha=0.18, lw=0)
        if hline is not None:
            ax.axhline(hline, color="gray", ls="--", lw=0.9, label=hline_label or None)
        if log:
            ax.set_yscale("log")
        if xlabel == "epoch":
            _integer_epochs(ax)
        ax.set(title=panel or title, xlabel=xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(ylabel)
    if panels:
        fig.suptitle(title)
    return save_figure(fig, path)


def layer_curves(per_cell: Mapping[str, Mapping[str, np.ndarray]], path: Path, *, title: str, ylabel: str,
                 zero_line: bool = False) -> Path:
    """One panel per cell; in each, one line per activation site over epochs (colour = depth).

    Args:
        per_cell: ``{cell label: {site: array (seeds, epochs)}}``; lines show the mean over seeds.
    """
    plt = pyplot()
    n = max(1, len(per_cell))
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False, sharey=True)
    cmap = plt.get_cmap("viridis")
    for i, (label, sites) in enumerate(per_cell.items()):
        ax = axes[i // cols][i % cols]
        names = list(sites)
        for j, site in enumerate(names):
            arr = np.atleast_2d(np.asarray(sites[site], dtype=float))
            x = np.arange(1, arr.shape[1] + 1)
            ax.plot(x, np.nanmean(arr, 0), "o-", ms=2.5, lw=1.2, color=cmap(j / max(1, len(names) - 1)),
                    label=site if len(names) <= 8 or j in (0, len(names) - 1) else None)
        if zero_line:
            ax.axhline(0, color="gray", lw=0.8)
        _integer_epochs(ax)
        ax.set(title=label, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, title="layer (dark = first)", title_fontsize=6)
    for k in range(len(per_cell), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title)
    return save_figure(fig, path)


def layer_profile(per_cell: Mapping[str, Mapping[str, Sequence[float]]], path: Path, *, title: str,
                  ylabel: str, zero_line: bool = False, xticks: Sequence[str] | None = None) -> Path:
    """Value per layer (x = site in network order) at the end of training, one line per cell; bars = min–max
    over seeds.

    Args:
        per_cell: ``{cell label: {site: [value per seed]}}``.
        xticks: layer names for the x axis (numbered when omitted or when there are more than 24).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colors = _colors(len(per_cell))
    for i, (label, sites) in enumerate(per_cell.items()):
        vals = [np.asarray(v, dtype=float) for v in sites.values()]
        if not vals:
            continue
        x = np.arange(1, len(vals) + 1)
        mean = np.array([np.nanmean(v) for v in vals])
        lo = mean - np.array([np.nanmin(v) for v in vals])
        hi = np.array([np.nanmax(v) for v in vals]) - mean
        ax.errorbar(x, mean, yerr=[lo, hi], fmt="o-", ms=3, lw=1.4, capsize=2, color=colors(i % colors.N),
                    label=label)
    if zero_line:
        ax.axhline(0, color="gray", lw=0.8)
    if xticks is not None and len(xticks) <= 24:
        ax.set_xticks(range(1, len(xticks) + 1), list(xticks), rotation=45, ha="right", fontsize=7)
    else:
        _integer_epochs(ax)
    ax.set(title=title, xlabel="activation site (network order)", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def points_with_ci(groups: Mapping[str, Sequence[float]], path: Path, *, title: str, xlabel: str,
                   reference: float | None = None) -> Path:
    """Each group's per-seed values as dots with the mean and its 95% CI (horizontal)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.45 * max(3, len(groups))))
    colors = _colors(len(groups))
    for i, values in enumerate(groups.values()):
        vals = [v for v in values if v is not None and np.isfinite(v)]
        ax.scatter(vals, [i] * len(vals), color=colors(i % colors.N), alpha=0.55, s=22, zorder=2)
        s = summarize(vals)
        if s.n >= 2:
            ax.errorbar([s.mean], [i], xerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]], fmt="D", color="black",
                        ms=5, capsize=4, zorder=3)
        elif s.n == 1:
            ax.plot([s.mean], [i], "D", color="black", ms=5, zorder=3)
    if reference is not None:
        ax.axvline(reference, color="gray", lw=0.8, ls="--")
    ax.set_yticks(range(len(groups)), list(groups))
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def scatter_ci(points: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: Path, *, title: str,
               xlabel: str, ylabel: str) -> Path:
    """Per group, the mean of x and y with 95% CI bars in both directions (plus the individual values)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    colors = _colors(len(points))
    for i, (label, (xs, ys)) in enumerate(points.items()):
        color = colors(i % colors.N)
        sx, sy = summarize(xs), summarize(ys)
        if len(xs) == len(ys):
            ax.scatter(xs, ys, color=color, alpha=0.35, s=16)
        xerr = [[sx.mean - sx.ci_low], [sx.ci_high - sx.mean]] if sx.n >= 2 else None
        yerr = [[sy.mean - sy.ci_low], [sy.ci_high - sy.mean]] if sy.n >= 2 else None
        ax.errorbar([sx.mean], [sy.mean], xerr=xerr, yerr=yerr, fmt="D", color=color, ms=6, capsize=4,
                    label=f"{label} (n={sx.n}/{sy.n})")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def bars(values: Mapping[str, Sequence[float]], path: Path, *, title: str, xlabel: str) -> Path:
    """Horizontal bars: the mean of each group with its sample std as the error bar."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * max(3, len(values))))
    colors = _colors(len(values))
    stats_ = [summarize(v) for v in values.values()]
    ax.barh(range(len(values)), [s.mean for s in stats_], xerr=[0 if np.isnan(s.std) else s.std for s in stats_],
            color=[colors(i % colors.N) for i in range(len(values))], alpha=0.8)
    ax.set_yticks(range(len(values)), list(values))
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def make_plots(results: Any, out_dir: str | Path) -> dict[str, Path]:
    """Write a study's plots into ``out_dir`` and return ``{name: path}``.

    Plots: test error (or the study's metric, when it is another one) and training loss vs epoch (mean, band =
    min..max over seeds), the final metric per cell (seeds as dots, mean with 95% CI), learned slopes per layer
    (when any), seconds per epoch. Curves that no run logged are left out (results read from a table have none).
    """
    out_dir = Path(out_dir)
    ran = [c for c in results.cells if c.runs]
    metric = results.metric.replace("_", " ")
    paths: dict[str, Path] = {}
    curve_key = "test_error" if results.metric in METRICS else results.metric  # a function study's own metric
    with_curve = [c for c in ran if c.curves.get(curve_key) is not None and c.curves[curve_key].size]
    if with_curve:
        title = "Test error" if curve_key == "test_error" else curve_key.replace("_", " ").capitalize()
        paths["test_error"] = curves({c.label: c.curves[curve_key] for c in with_curve}, out_dir / "test_error.png",
                                     title=f"{title} vs epoch (band: min–max over seeds)",
                                     ylabel="test error (%)" if curve_key == "test_error" else curve_key)
    with_loss = [c for c in ran if c.curves.get("train_loss") is not None and c.curves["train_loss"].size]
    if with_loss:
        paths["train_loss"] = curves({c.label: c.curves["train_loss"] for c in with_loss}, out_dir / "train_loss.png",
                                     title="Training loss vs epoch (band: min–max over seeds)", ylabel="train loss",
                                     log=True)
    if ran:
        finals = {c.label + (" (baseline)" if c.is_baseline else ""): [r["final"] for r in c.runs] for c in ran}
        paths["final"] = points_with_ci(finals, out_dir / "final.png",
                                        title=f"Final {metric}: seeds (dots), mean and 95% CI (black)", xlabel=metric)
    slope_cells = [c for c in ran if c.slopes]
    if slope_cells:
        layers = [row["layer"] for row in slope_cells[0].slopes]
        profile = {f"{c.label} ({c.slopes[0]['kind']})": {row["layer"]: [row["mean"]] for row in c.slopes}
                   for c in slope_cells}
        paths["slopes"] = layer_profile(profile, out_dir / "slopes.png", xticks=layers, zero_line=True,
                                        title="Learned activation parameter per layer (mean over seeds)",
                                        ylabel="slope a / beta")
    timed = [c for c in ran if c.seconds_per_epoch.n]
    if timed:
        paths["seconds"] = bars({c.label: [e for e in (_mean_seconds(r) for r in c.runs) if e == e] for c in timed},
                                out_dir / "seconds.png", title="Training seconds per epoch (mean ± std over seeds)",
                                xlabel="seconds")
    return paths


def _mean_seconds(run: dict[str, Any]) -> float:
    seconds = [e["seconds"] for e in run.get("epochs", []) if e.get("seconds") is not None]
    return float(np.mean(seconds)) if seconds else float("nan")
