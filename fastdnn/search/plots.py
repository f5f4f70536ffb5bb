"""Plots of a search (needs matplotlib): the score against each hyperparameter on the
axis its space is uniform on, and the learning curves of the best trials."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .results import Results
    from .spaces import Space


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("fastdnn.search.plots needs matplotlib: pip install "
                          "fastdnn[plot]") from e
    return plt


def _integer_log_ticks(ax, values):
    """Plain integer tick labels (50, 100, 200) on the log x-axis of an integer
    hyperparameter, when all ``values`` are whole numbers. Matplotlib labels the minor
    ticks of a range under two decades "3x10^1 4x10^1 ...", which run into each other."""
    import math

    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
    if not values or not all(float(v).is_integer() for v in values):
        return
    distinct = sorted({int(v) for v in values})
    low, high = distinct[0], distinct[-1]
    if len(distinct) <= 6:
        ticks = distinct
    else:   # 1, 2, 5 per decade; powers of ten alone when those are too many
        decades = range(int(math.floor(math.log10(low))), int(math.log10(high)) + 1)
        ticks = [m * 10 ** e for e in decades for m in (1, 2, 5) if low <= m * 10 ** e <= high]
        if len(ticks) > 7:
            ticks = [t for t in ticks if str(t).startswith("1")]
        ticks = sorted(set(ticks) | {low, high}) if len(ticks) < 3 else ticks
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda u, _: f"{u:.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_scores(results: Results, space: Mapping[str, Space | Any],
                metric: str = "dev_accuracy") -> Figure:
    """One panel per hyperparameter: ``metric`` of each successful trial against its value.

    A log x-axis for log scales, 1 - value on a reversed log axis for
    OneMinusLogUniform, categories for Choice and Grid.

    Parameters
    ----------
    results : Results
    space : dict name -> Space
        The hyperparameters to plot and their scales (linear for a value without one).
    metric : str
        The column on the y-axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    ok = results.ok
    names = list(space)
    fig, axes = plt.subplots(1, len(names), figsize=(3.5 * len(names), 3), squeeze=False)
    y = np.array(ok.column(metric), dtype=float)
    for ax, name in zip(axes[0], names):
        scale = getattr(space[name], "scale", "linear")
        x = ok.column(name)
        if scale == "one_minus_log":
            ax.scatter(1 - np.asarray(x, float), y, s=12)
            ax.set_xscale("log")
            ax.invert_xaxis()      # larger beta to the right
            ax.set_xlabel(f"1 - {name}")
        elif scale == "choice":
            labels = sorted({str(v) for v in x})
            ax.scatter([labels.index(str(v)) for v in x], y, s=12)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlabel(name)
        else:
            ax.scatter(np.asarray(x, float), y, s=12)
            if scale == "log":
                ax.set_xscale("log")
                _integer_log_ticks(ax, x)
            ax.set_xlabel(name)
        ax.set_ylabel(metric)
    fig.tight_layout()
    return fig


def plot_curves(results: Results, top: int = 5, metric: str = "dev_accuracy",
                curve: str = "val_accuracy") -> Figure:
    """The per-epoch ``curve`` (and its train twin) of the ``top`` best trials.

    Parameters
    ----------
    results : Results
        Rows with a "history" (the default trial function's).
    top : int
        How many trials, best first.
    metric : str
        What "best" ranks by.
    curve : str
        A key of the histories; for a "val_" one the train curve is drawn dashed.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    train = curve[4:] if curve.startswith("val_") else None
    for row in results.top(top, metric):
        h = row.get("history") or {}
        if curve in h:
            line, = ax.plot(range(1, len(h[curve]) + 1), h[curve],
                            label=f"trial {row['trial']}")
            if train and train in h:
                ax.plot(range(1, len(h[train]) + 1), h[train], ls="--",
                        color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(curve + (" (dashed: train)" if train else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
