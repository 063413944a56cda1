"""The report's plots: matplotlib (Agg backend, no display) to PNG files, one function per kind."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = ["#3b6ea8", "#e0813a", "#4c9a52", "#c0504d", "#8064a2", "#4bacc6", "#9a8c4c", "#777777"]


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def bars(path: str, labels: list[str], series: dict[str, list[float]], title: str,
         ylabel: str = "", horizontal: bool = False, log: bool = False) -> str:
    """Grouped bars: one group per label, one bar per series."""
    n = max(len(series), 1)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(labels) + 1) if horizontal else 3.6))
    width = 0.8 / n
    for i, (name, vals) in enumerate(series.items()):
        pos = [j + (i - (n - 1) / 2) * width for j in range(len(labels))]
        if horizontal:
            ax.barh(pos, vals, height=width, label=name, color=COLORS[i % len(COLORS)])
        else:
            ax.bar(pos, vals, width=width, label=name, color=COLORS[i % len(COLORS)])
    if horizontal:
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        if log:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def twin_bars(path: str, labels: list[str], left: list[float], right: list[float], title: str,
              left_label: str, right_label: str) -> str:
    """Two quantities of different units per label (documents and bytes through the stages)."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], left, width=0.4, color=COLORS[0], label=left_label)
    ax.set_ylabel(left_label)
    ax2 = ax.twinx()
    ax2.bar([i + 0.2 for i in x], right, width=0.4, color=COLORS[1], label=right_label)
    ax2.set_ylabel(right_label)
    ax.set_xticks(list(x), labels, rotation=20, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def histogram(path: str, edges: list[float], counts: list[int], title: str,
              thresholds: list[tuple[float, str]] = (), xlabel: str = "") -> str:
    """A histogram from precomputed bin edges/counts, with threshold lines."""
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
    ax.bar(edges[:-1], counts, width=widths, align="edge", color=COLORS[0], edgecolor="white",
           linewidth=0.3)
    for t, label in thresholds:
        ax.axvline(t, color=COLORS[3], linestyle="--", linewidth=1.2)
        ax.text(t, ax.get_ylim()[1] * 0.95, f" {label}", color=COLORS[3], fontsize=7, va="top")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    return _save(fig, path)


def lines(path: str, series: dict[str, tuple[list[float], list[float]]], title: str,
          xlabel: str, ylabel: str, vlines: list[tuple[float, str]] = (), logy: bool = False) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for i, (name, (xs, ys)) in enumerate(series.items()):
        ax.plot(xs, ys, label=name, color=COLORS[i % len(COLORS)], linewidth=1.3,
                marker="o" if len(xs) < 30 else None, markersize=3)
    for x, label in vlines:
        ax.axvline(x, color="#999999", linestyle=":", linewidth=1)
        ax.text(x, ax.get_ylim()[1], f" {label}", fontsize=7, va="top", color="#666666")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)
