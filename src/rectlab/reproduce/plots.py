"""Plots of the reproduction reports (matplotlib, headless Agg backend): curves with bands over seeds,
per-layer curves over training, and point estimates with 95% CIs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..report.stats import summarize

__all__ = ["curves", "layer_curves", "layer_profile", "points_with_ci", "pyplot", "save_figure", "scatter_ci"]


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
    fig, axes = plt.subplots(1, len(groups), figsize=(min(15, 5 * len(groups) + 1), 4.2), squeeze=False,
                             sharey=True)
    colors = plt.get_cmap("tab10")
    labels = list(series)
    for ax, (panel, members) in zip(axes[0], groups.items()):
        for label in members:
            if label not in series or not np.asarray(series[label]).size:
                continue
            arr = np.atleast_2d(np.asarray(series[label], dtype=float))
            x = np.arange(1, arr.shape[1] + 1)
            color = colors(labels.index(label) % 10)
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
                  ylabel: str, zero_line: bool = False) -> Path:
    """Value per layer (x = site in network order) at the end of training, one line per cell; bars = min–max
    over seeds.

    Args:
        per_cell: ``{cell label: {site: [value per seed]}}``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colors = plt.get_cmap("tab10")
    for i, (label, sites) in enumerate(per_cell.items()):
        vals = [np.asarray(v, dtype=float) for v in sites.values()]
        if not vals:
            continue
        x = np.arange(1, len(vals) + 1)
        mean = np.array([np.nanmean(v) for v in vals])
        lo = mean - np.array([np.nanmin(v) for v in vals])
        hi = np.array([np.nanmax(v) for v in vals]) - mean
        ax.errorbar(x, mean, yerr=[lo, hi], fmt="o-", ms=3, lw=1.4, capsize=2, color=colors(i % 10), label=label)
    if zero_line:
        ax.axhline(0, color="gray", lw=0.8)
    ax.set(title=title, xlabel="activation site (network order)", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def points_with_ci(groups: Mapping[str, Sequence[float]], path: Path, *, title: str, xlabel: str,
                   reference: float | None = None) -> Path:
    """Each group's per-seed values as dots with the mean and its 95% CI (horizontal)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.45 * max(3, len(groups))))
    colors = plt.get_cmap("tab10")
    for i, values in enumerate(groups.values()):
        vals = [v for v in values if v is not None and np.isfinite(v)]
        ax.scatter(vals, [i] * len(vals), color=colors(i % 10), alpha=0.55, s=22, zorder=2)
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
    colors = plt.get_cmap("tab10")
    for i, (label, (xs, ys)) in enumerate(points.items()):
        color = colors(i % 10)
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
