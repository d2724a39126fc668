"""PNG plots of a study (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .collect import StudyResults

__all__ = ["make_plots"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _integer_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _band(ax, curves: np.ndarray, label: str, color) -> None:
    epochs = np.arange(1, curves.shape[1] + 1)
    mean = np.nanmean(curves, axis=0)
    ax.plot(epochs, mean, label=f"{label} (n={curves.shape[0]})", color=color, lw=1.8)
    if curves.shape[0] > 1:
        ax.fill_between(epochs, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), color=color, alpha=0.18, lw=0)


def make_plots(results: StudyResults, out_dir: str | Path) -> dict[str, Path]:
    """Write the study's plots into ``out_dir`` and return ``{name: path}``.

    Plots: test error vs epoch (mean, band = min..max over seeds), train loss, final error per cell
    (each seed as a point, mean with 95% CI bar), learned slopes per layer (when any), seconds per epoch.
    """
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = [c for c in results.cells if c.curves.get("test_error") is not None and c.curves["test_error"].size]
    colors = plt.get_cmap("tab10" if len(cells) <= 10 else "tab20")
    paths: dict[str, Path] = {}

    for key, title, ylabel, log in (
        ("test_error", "Test error vs epoch", "test error (%)", False),
        ("train_loss", "Training loss vs epoch", "train loss", True),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, c in enumerate(cells):
            _band(ax, c.curves[key], c.label, colors(i))
        ax.set(title=f"{title} (band: min–max over seeds)", xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(_integer_locator())
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths[key] = out_dir / f"{key}.png"
        fig.savefig(paths[key], dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * max(3, len(cells))))
    metric = results.metric.replace("_", " ")
    for i, c in enumerate(cells):
        finals = [r["final"] for r in c.runs]
        ax.scatter(finals, [i] * len(finals), color=colors(i), alpha=0.55, s=22, zorder=2)
        s = c.summary
        if s.n >= 2:
            ax.errorbar([s.mean], [i], xerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]], fmt="D", color="black",
                        ms=5, capsize=4, zorder=3)
        else:
            ax.plot([s.mean], [i], "D", color="black", ms=5, zorder=3)
    ax.set_yticks(range(len(cells)), [c.label + (" (baseline)" if c.is_baseline else "") for c in cells])
    ax.invert_yaxis()
    ax.set(title=f"Final {metric}: seeds (dots), mean and 95% CI (black)", xlabel=f"{metric} (%)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    paths["final"] = out_dir / "final.png"
    fig.savefig(paths["final"], dpi=110)
    plt.close(fig)

    slope_cells = [c for c in cells if c.slopes]
    if slope_cells:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for c in slope_cells:
            vals = [row["mean"] for row in c.slopes]
            kind = "channel-wise mean" if c.slopes[0]["num_parameters"] > 1 else "channel-shared"
            ax.plot(range(1, len(vals) + 1), vals, "o-", ms=3, color=colors(cells.index(c)),
                    label=f"{c.label} ({c.slopes[0]['kind']}, {kind})")
        ax.set(title="Learned activation parameter per layer (mean over seeds)", ylabel="slope a / beta")
        layers = [row["layer"] for row in slope_cells[0].slopes]
        if len(layers) <= 24:  # name the layers when they fit; otherwise number them
            ax.set_xticks(range(1, len(layers) + 1), layers, rotation=45, ha="right", fontsize=7)
        else:
            ax.set_xlabel("layer (activation site, in forward order)")
            ax.xaxis.set_major_locator(_integer_locator())
        ax.axhline(0, color="gray", lw=0.8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths["slopes"] = out_dir / "slopes.png"
        fig.savefig(paths["slopes"], dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * max(3, len(cells))))
    means = [c.seconds_per_epoch.mean for c in cells]
    errs = [0 if np.isnan(c.seconds_per_epoch.std) else c.seconds_per_epoch.std for c in cells]
    ax.barh(range(len(cells)), means, xerr=errs, color=[colors(i) for i in range(len(cells))], alpha=0.8)
    ax.set_yticks(range(len(cells)), [c.label for c in cells])
    ax.invert_yaxis()
    ax.set(title="Training seconds per epoch (mean ± std over seeds)", xlabel="seconds")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    paths["seconds"] = out_dir / "seconds.png"
    fig.savefig(paths["seconds"], dpi=110)
    plt.close(fig)
    return paths
