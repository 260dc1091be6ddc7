"""Figures of benchmark results (matplotlib, headless): the paper's run-time box plots, the
KFAC-reduce memory scatter, and the summary figure of ``tndiag bench --plot``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Sequence

from tndiag.bench.paper_report import ratio

__all__ = ["plot_runtime", "plot_kfac_memory", "plot_bench"]

_MiB = float(1 << 20)
_COLORS = {"TN": "#d62728", "TN+opt": "#ff7f0e", "tndiag": "#1f77b4", "einconv": "#9467bd"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ticker():
    import matplotlib.ticker

    return matplotlib.ticker


def _finite(values) -> List[float]:
    return [v for v in values if v > 0 and math.isfinite(v)]


def _boxes(ax, groups: Sequence[str], series: Dict[str, List[List[float]]]) -> None:
    """Side-by-side box plots: one box per (group, series), log y, a line at ratio 1."""
    width = 0.8 / max(1, len(series))
    for j, (name, per_group) in enumerate(series.items()):
        pos = [g + (j - (len(series) - 1) / 2) * width for g in range(len(groups))]
        data = [vals or [float("nan")] for vals in per_group]
        bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                        showfliers=True, flierprops={"markersize": 3}, manage_ticks=False,
                        medianprops={"color": "black"})
        for box in bp["boxes"]:
            box.set_facecolor(_COLORS.get(name, "#888888"))
            box.set_alpha(0.75)
        ax.plot([], [], "s", color=_COLORS.get(name, "#888888"), label=name)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(_ticker().LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(_ticker().FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(_ticker().NullFormatter())
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)


def _category_label(category: str, rows: Sequence[Dict]) -> str:
    """``down-\\nsampling\\n(6)``: the name wrapped at its hyphen and the layer count."""
    count = sum(r["category"] == category for r in rows)
    return category.replace("-", "-\n") + f"\n({count})"


def plot_runtime(results: Sequence[Dict], ops: Sequence[str], categories: Sequence[str],
                 path: Path, title: str = "") -> Path:
    """Per op, box plots of the run-time ratio to PT for each category and variant."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(ops), figsize=(3.4 * len(ops), 3.6), squeeze=False)
    for ax, op in zip(axes[0], ops, strict=True):
        rows = [r for r in results if r["op"] == op]
        cats = [c for c in categories if any(r["category"] == c for r in rows)]
        series = {v: [_finite(ratio(r, v) for r in rows if r["category"] == c) for c in cats]
                  for v in ("TN", "TN+opt", "tndiag")}
        _boxes(ax, [_category_label(c, rows) for c in cats], series)
        ax.set_title(op, fontsize=10)
    axes[0][0].set_ylabel("run time / PT")
    axes[0][0].legend(fontsize=7, loc="upper left")
    return _save(fig, path, title)


def _scatter(ax, xs: List[float], ys: List[float], label: str, color: str) -> None:
    ax.scatter(xs, ys, s=14, alpha=0.8, color=color, label=label)


def _diagonal(ax, values: List[float]) -> None:
    lo, hi = min(values), max(values)
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="equal")
    ax.set_xscale("log")
    ax.set_yscale("log")


def plot_kfac_memory(results: Sequence[Dict], path: Path, title: str = "") -> Path:
    """KFAC-reduce auxiliary memory, standard (x) vs TN+opt and tndiag (y), log-log."""
    plt = _pyplot()
    rows = [r for r in results if r["op"] == "kfac-reduce" and "PT" in r.get("memory", {})]
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    floor = 1e-3  # MiB: zero extra memory is drawn on the floor of the log axis
    allv: List[float] = []
    for v in ("TN+opt", "tndiag"):
        pts = [(r["memory"]["PT"] / _MiB, r["memory"][v] / _MiB) for r in rows
               if v in r["memory"]]
        xs = [max(floor, x) for x, _ in pts]
        ys = [max(floor, y) for _, y in pts]
        allv += xs + ys
        _scatter(ax, xs, ys, v, _COLORS[v])
    if allv:
        _diagonal(ax, allv)
    ax.set_xlabel("standard (unfold + mean), MiB")
    ax.set_ylabel("tensor network, MiB")
    ax.set_title(title or "KFAC-reduce auxiliary memory", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _bench_baseline(r: Dict) -> str | None:
    names = [n for n in r["time"] if n not in ("tndiag", "einconv")]
    return min(names, key=lambda n: r["time"][n]) if names else None


def plot_bench(rows: Sequence[Dict], path: Path, title: str = "") -> Path:
    """``tndiag bench --plot``: per-op box plots of tndiag's (and einconv's) ratio to the
    baseline, and a log-log scatter of peak extra memory, tndiag vs baseline."""
    plt = _pyplot()
    ops = list(dict.fromkeys(r["op"] for r in rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2),
                                      gridspec_kw={"width_ratios": [1.6, 1]})
    series: Dict[str, List[List[float]]] = {"tndiag": [], "einconv": []}
    for op in ops:
        for name in series:
            series[name].append(_finite(
                r["time"][name] / r["time"][b] for r in rows if r["op"] == op
                and (b := _bench_baseline(r)) and name in r["time"]))
    series = {k: v for k, v in series.items() if any(v)}
    _boxes(left, ops, series)
    left.set_ylabel("run time / baseline")
    left.legend(fontsize=7, loc="upper left")
    allv: List[float] = []
    for k, op in enumerate(ops):
        pts = [(r["memory"][b] / _MiB, r["memory"]["tndiag"] / _MiB) for r in rows
               if r["op"] == op and (b := _bench_baseline(r)) and
               {b, "tndiag"} <= set(r.get("memory", {}))]
        xs, ys = [max(1e-3, x) for x, _ in pts], [max(1e-3, y) for _, y in pts]
        allv += xs + ys
        _scatter(right, xs, ys, op, plt.get_cmap("tab10")(k))
    if allv:
        _diagonal(right, allv)
    right.set_xlabel("baseline peak extra memory, MiB")
    right.set_ylabel("tndiag peak extra memory, MiB")
    right.legend(fontsize=7)
    return _save(fig, path, title)


def _save(fig, path: Path, title: str | None) -> Path:
    """Title (if any), lay out, write ``path`` and close the figure."""
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path
