"""Matplotlib figures of the HTML report, returned as SVG text.

Every function takes plain data (lists and dicts) and returns one SVG document;
nothing is read from disk here.  The SVGs are deterministic (fixed hash salt, no
date), so a report rebuilt from the same runs is byte-identical.  A group keeps
its colour in every figure (``colors``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from graphrec.optional import require

__all__ = [
    "bar_chart",
    "grouped_bars",
    "metric_at_k_figure",
    "noise_figure",
    "search_history_figure",
    "svg",
    "training_curves_figure",
]

PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def _plt():
    require("matplotlib", "the HTML report's plots")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update(
        {
            "svg.hashsalt": "graphrec-report",  # stable element ids -> reproducible files
            "svg.fonttype": "none",  # text stays text: smaller files, selectable labels
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
        }
    )
    return plt


def colors(labels: Sequence[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def svg(fig) -> str:
    """Serialise and close a figure; returns the SVG document text."""
    plt = _plt()
    buffer = io.StringIO()
    # tight_layout is applied by each figure; bbox_inches="tight" would draw everything twice
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def _mean_std(series: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over runs of curves of possibly different lengths (NaN-padded)."""
    length = max(len(s) for s in series)
    arr = np.full((len(series), length), np.nan)
    for i, s in enumerate(series):
        arr[i, : len(s)] = s
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(arr, axis=0)
        std = np.nanstd(arr, axis=0, ddof=1) if len(series) > 1 else np.zeros(length)
    return mean, np.nan_to_num(std)


def training_curves_figure(
    curves: Mapping[str, list[list[dict]]], metric: str, palette: Mapping[str, str]
) -> str:
    """Loss per epoch and validation ``metric`` per check, one line per run (seeds in one colour).

    ``curves`` maps a group label to its runs' histories (lists of epoch records).
    """
    plt = _plt()
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, runs in curves.items():
        color = palette[label]
        for i, history in enumerate(runs):
            losses = [
                (r["epoch"], r["loss"]) for r in history if "loss" in r
            ]  # closed-form models have none
            if losses:
                ax_loss.plot(
                    *zip(*losses), color=color, lw=1.2, alpha=0.85, label=label if i == 0 else None
                )
            checks = [
                (r["epoch"], r["valid"][metric])
                for r in history
                if "valid" in r and metric in r["valid"]
            ]
            if checks:
                ax_metric.plot(
                    *zip(*checks),
                    color=color,
                    lw=1.2,
                    marker="o",
                    ms=2.5,
                    alpha=0.85,
                    label=label if i == 0 else None,
                )
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="loss (log scale)")
    ax_loss.set_yscale("log")
    # plain tick labels: the default log formatter typesets every label with mathtext (slow)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax_loss.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_loss.yaxis.set_minor_formatter(NullFormatter())
    ax_metric.set(title=f"validation {metric}", xlabel="epoch", ylabel=metric)
    ax_metric.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return svg(fig)


def metric_at_k_figure(
    curves: Mapping[str, list[dict]],
    palette: Mapping[str, str],
    metrics: Sequence[str] = ("recall", "ndcg"),
) -> str:
    """Metric@K against K (log axis), mean over seeds with a ±1 std band.

    ``curves`` maps a label to its runs' curve dicts (``{"ks": [...], "recall": [...], ...}``).
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, runs in curves.items():
            ks = runs[0]["ks"]
            mean, std = _mean_std([r[metric] for r in runs])
            ax.plot(ks, mean, color=palette[label], marker="o", ms=3, lw=1.4, label=label)
            if len(runs) > 1:
                ax.fill_between(ks, mean - std, mean + std, color=palette[label], alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set(title=f"{metric}@K", xlabel="K (log scale)", ylabel=f"{metric}@K")
        ax.set_xticks(ks, [str(k) for k in ks], fontsize=7)
        ax.minorticks_off()
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return svg(fig)


def grouped_bars(
    categories: Sequence[str],
    values: Mapping[str, Sequence[float | None]],
    errors: Mapping[str, Sequence[float]] | None,
    palette: Mapping[str, str],
    title: str,
    ylabel: str,
    xlabel: str = "",
    reference: tuple[str, Sequence[float] | np.ndarray] | None = None,
) -> str:
    """Bars per category, one bar per group (error bars = std over seeds).

    ``reference = (label, values)`` draws a dashed black line on the same axis (e.g. the
    share of test interactions per popularity bucket next to the share of recommendations).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    groups = list(values)
    x = np.arange(len(categories))
    width = 0.8 / max(1, len(groups))
    for i, label in enumerate(groups):
        vals = np.array([np.nan if v is None else v for v in values[label]], dtype=float)
        err = None if errors is None else np.asarray(errors[label], dtype=float)
        ax.bar(
            x + (i - (len(groups) - 1) / 2) * width,
            vals,
            width,
            yerr=err,
            color=palette[label],
            label=label,
            capsize=2,
            error_kw={"lw": 0.8},
        )
    if reference is not None:
        ax.plot(x, reference[1], color="black", marker="s", ms=3, lw=1, ls="--", label=reference[0])
    ax.set_xticks(x, categories, fontsize=8)
    ax.set(title=title, ylabel=ylabel, xlabel=xlabel)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return svg(fig)


def bar_chart(
    counts: Mapping[str, float], title: str, xlabel: str, color: str = PALETTE[0], top: int = 25
) -> str:
    """Horizontal bars of a count per category (largest first, at most ``top``)."""
    plt = _plt()
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(items) + 1.2))
    names = [k for k, _ in items][::-1]
    vals = [v for _, v in items][::-1]
    ax.barh(names, vals, color=color)
    for y, v in enumerate(vals):
        ax.text(v, y, f" {v:g}", va="center", fontsize=7)
    ax.set(title=title, xlabel=xlabel)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return svg(fig)


def noise_figure(
    levels: Sequence[float],
    values: Mapping[str, Sequence[float | None]],
    palette: Mapping[str, str],
    metric: str,
) -> str:
    """Metric against noise level, one line per group."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, vals in values.items():
        ys = [np.nan if v is None else v for v in vals]
        ax.plot(levels, ys, marker="o", ms=3, color=palette.get(label, PALETTE[0]), label=label)
    ax.set(title=f"{metric} under noise", xlabel="noise level", ylabel=metric)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return svg(fig)


def search_history_figure(trials: Sequence[dict], metric: str, direction: str) -> str:
    """Trial values in order (complete vs pruned) and the best value so far."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    done = [
        t for t in trials if t.get("value") is not None and t["state"] in ("COMPLETE", "PRUNED")
    ]
    for state, marker, color in (("COMPLETE", "o", PALETTE[0]), ("PRUNED", "x", PALETTE[7])):
        pts = [(t["number"], t["value"]) for t in done if t["state"] == state]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, s=18, color=color, label=state.lower())
    best, xs, ys = None, [], []
    for t in sorted((t for t in done if t["state"] == "COMPLETE"), key=lambda t: t["number"]):
        if best is None or (t["value"] > best if direction == "maximize" else t["value"] < best):
            best = t["value"]
        xs.append(t["number"])
        ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color=PALETTE[1], lw=1.4, label="best so far")
    ax.set(title=f"search history (valid {metric})", xlabel="trial", ylabel=f"valid {metric}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return svg(fig)
